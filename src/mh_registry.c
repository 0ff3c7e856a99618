/* mh_registry.c - check state, hysteresis, staleness and readiness. See mh_registry.h. */
#include "mh_registry.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the per-measurement state machine ---- */

bool mh_meas_apply(struct mh_meas_state *st, const struct mh_observation *obs, unsigned rise,
                   unsigned fall)
{
    enum mh_status before = st->effective;
    bool first = !st->have_result;
    st->last = *obs;
    st->have_result = true;
    st->stale = false;
    if (obs->status == MH_FAIL) {
        st->consecutive_fail++;
        st->consecutive_pass = 0;
        if (first || st->consecutive_fail >= fall)
            st->effective = MH_FAIL;
    } else {
        st->consecutive_pass++;
        st->consecutive_fail = 0;
        /* pass <-> warn changes at once: both keep the target in service. */
        if (first || st->effective != MH_FAIL || st->consecutive_pass >= rise)
            st->effective = obs->status;
    }
    bool changed = first || st->effective != before;
    if (changed && !first)
        st->transitions++;
    return changed;
}

bool mh_meas_mark_stale(struct mh_meas_state *st)
{
    if (st->stale)
        return false;
    bool changed = st->effective != MH_FAIL;
    st->stale = true;
    st->effective = MH_FAIL;
    /* A check that comes back from a hang has to earn `rise` passes again. */
    st->consecutive_pass = 0;
    if (changed)
        st->transitions++;
    return changed;
}

/* ---- readiness ---- */

void mh_readiness_compute(const struct mh_snapshot *snap, unsigned which, struct mh_readiness *out)
{
    memset(out, 0, sizeof *out);
    out->status = MH_PASS;
    bool starting = false;
    for (int i = 0; i < snap->n_checks; i++) {
        const struct mh_check_view *v = &snap->checks[i];
        for (int m = 0; m < v->check->n_meas; m++) {
            if (!(v->check->meas[m].affects & which))
                continue;
            out->total++;
            const struct mh_meas_state *st = &v->m[m];
            if (!st->have_result) {
                starting = true;
                continue;
            }
            if (st->effective != MH_FAIL)
                out->passing++;
            if (st->effective > out->status) { /* the first of the worst names the reason */
                out->status = st->effective;
                snprintf(out->reason, sizeof out->reason, "%s:%s %s: %s", v->check->name,
                         v->check->meas[m].name, mh_status_name(st->effective),
                         st->stale ? "stale" : st->last.output);
            }
        }
    }
    if (starting && out->status != MH_FAIL) {
        out->status = MH_FAIL;
        snprintf(out->reason, sizeof out->reason, "starting");
    }
    if (snap->shutting_down && which == MH_AFFECTS_NODE) {
        out->status = MH_FAIL;
        snprintf(out->reason, sizeof out->reason, "shutting down");
    }
}

/* ---- the registry ---- */

struct check_state {
    struct mh_meas_state m[MH_MEASUREMENTS_MAX];
    bool have_result;
    struct timespec last_mono, last_real;
    double duration_ms;
    uint64_t runs;
    enum mh_role role;
    struct mh_fact facts[MH_FACTS_MAX];
    int n_facts;
};

struct mh_registry {
    struct mh_config *cfg; /* owned; immutable after creation */
    mh_transition_fn on_transition;
    void *ctx;
    /* `change_lock` guards on_change/change_ctx and is held while the callback runs, so once
     * mh_registry_stop() returns no callback is running or will start. Never taken under `lock`. */
    pthread_mutex_t change_lock;
    mh_change_fn on_change;
    void *change_ctx;
    atomic_int refs;
    atomic_int workers; /* worker threads that have not finished yet */

    /* `lock` guards every field below. Hold it only to copy state in or out: no I/O under it. */
    pthread_mutex_t lock;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC: signalled on stop and on every post */
    bool stopping;
    bool shutting_down;
    uint64_t generation;
    struct check_state *states; /* one per cfg->checks[i] */
};

struct mh_registry *mh_registry_new(struct mh_config *cfg, mh_transition_fn on_transition,
                                    void *ctx)
{
    struct mh_registry *reg = calloc(1, sizeof *reg);
    if (reg)
        reg->states = calloc((size_t)cfg->n_checks + 1, sizeof *reg->states);
    if (!reg || !reg->states) {
        free(reg);
        mh_config_free(cfg);
        return NULL;
    }
    reg->cfg = cfg;
    reg->on_transition = on_transition;
    reg->ctx = ctx;
    atomic_init(&reg->refs, 1);
    atomic_init(&reg->workers, 0);
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->change_lock, NULL);
    mh_cond_init_monotonic(&reg->wake);
    return reg;
}

void mh_registry_ref(struct mh_registry *reg)
{
    atomic_fetch_add(&reg->refs, 1);
}

void mh_registry_unref(struct mh_registry *reg)
{
    if (!reg || atomic_fetch_sub(&reg->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->change_lock);
    pthread_cond_destroy(&reg->wake);
    mh_config_free(reg->cfg);
    free(reg->states);
    free(reg);
}

const struct mh_config *mh_registry_config(const struct mh_registry *reg)
{
    return reg->cfg;
}

void mh_registry_set_on_change(struct mh_registry *reg, mh_change_fn on_change, void *ctx)
{
    pthread_mutex_lock(&reg->change_lock);
    reg->on_change = on_change;
    reg->change_ctx = ctx;
    pthread_mutex_unlock(&reg->change_lock);
}

static void notify(struct mh_registry *reg, int idx, int m, enum mh_status from, bool first)
{
    const struct mh_meas_state *st = &reg->states[idx].m[m];
    reg->generation++;
    if (reg->on_transition)
        reg->on_transition(reg->cfg->checks[idx], m, from, st->effective, first,
                           st->stale ? "stale" : st->last.output, reg->ctx);
}

static bool same_shape(const struct mh_check *a, const struct mh_check *b)
{
    if (strcmp(a->name, b->name) != 0 || a->type != b->type || a->n_meas != b->n_meas)
        return false;
    for (int m = 0; m < a->n_meas; m++)
        if (strcmp(a->meas[m].name, b->meas[m].name) != 0)
            return false;
    return true;
}

void mh_registry_adopt(struct mh_registry *reg, struct mh_registry *old)
{
    pthread_mutex_lock(&old->lock);
    for (int i = 0; i < reg->cfg->n_checks; i++)
        for (int j = 0; j < old->cfg->n_checks; j++)
            if (same_shape(reg->cfg->checks[i], old->cfg->checks[j]))
                reg->states[i] = old->states[j];
    reg->generation = old->generation + 1;
    pthread_mutex_unlock(&old->lock);
}

void mh_registry_post(struct mh_registry *reg, int idx, const struct mh_run *run,
                      double duration_ms)
{
    const struct mh_check *c = reg->cfg->checks[idx];
    pthread_mutex_lock(&reg->lock);
    uint64_t generation = reg->generation;
    struct check_state *cs = &reg->states[idx];
    for (int m = 0; m < c->n_meas; m++) {
        enum mh_status from = cs->m[m].effective;
        bool first = !cs->m[m].have_result;
        if (mh_meas_apply(&cs->m[m], &run->obs[m], c->rise, c->fall))
            notify(reg, idx, m, from, first);
    }
    cs->have_result = true;
    mh_now(&cs->last_mono);
    clock_gettime(CLOCK_REALTIME, &cs->last_real);
    cs->duration_ms = duration_ms;
    cs->runs++;
    if (cs->role != run->role)
        reg->generation++;
    cs->role = run->role;
    memcpy(cs->facts, run->facts, sizeof cs->facts);
    cs->n_facts = run->n_facts;
    bool changed = reg->generation != generation;
    pthread_cond_broadcast(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
    if (changed) {
        pthread_mutex_lock(&reg->change_lock);
        if (reg->on_change)
            reg->on_change(reg->change_ctx);
        pthread_mutex_unlock(&reg->change_lock);
    }
}

bool mh_registry_refresh(struct mh_registry *reg)
{
    bool changed = false;
    pthread_mutex_lock(&reg->lock);
    for (int i = 0; i < reg->cfg->n_checks; i++) {
        struct check_state *cs = &reg->states[i];
        const struct mh_check *c = reg->cfg->checks[i];
        if (!cs->have_result || mh_ms_since(&cs->last_mono) <= (double)c->max_age)
            continue;
        for (int m = 0; m < c->n_meas; m++) {
            enum mh_status from = cs->m[m].effective;
            bool was_stale = cs->m[m].stale;
            if (mh_meas_mark_stale(&cs->m[m]) || !was_stale) {
                notify(reg, i, m, from, false);
                changed = true;
            }
        }
    }
    pthread_mutex_unlock(&reg->lock);
    return changed;
}

void mh_registry_set_shutting_down(struct mh_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    reg->shutting_down = true;
    reg->generation++;
    pthread_mutex_unlock(&reg->lock);
}

static bool all_reported_locked(struct mh_registry *reg)
{
    for (int i = 0; i < reg->cfg->n_checks; i++)
        if (!reg->states[i].have_result)
            return false;
    return true;
}

bool mh_registry_all_reported(struct mh_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    bool all = all_reported_locked(reg);
    pthread_mutex_unlock(&reg->lock);
    return all;
}

bool mh_registry_wait_all_reported(struct mh_registry *reg, mh_ms ms)
{
    struct timespec until;
    mh_deadline_in(&until, ms);
    pthread_mutex_lock(&reg->lock);
    while (!all_reported_locked(reg) && !reg->stopping)
        if (pthread_cond_timedwait(&reg->wake, &reg->lock, &until) != 0)
            break;
    bool all = all_reported_locked(reg);
    pthread_mutex_unlock(&reg->lock);
    return all;
}

uint64_t mh_registry_generation(struct mh_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    uint64_t g = reg->generation;
    pthread_mutex_unlock(&reg->lock);
    return g;
}

void mh_registry_snapshot(struct mh_registry *reg, struct mh_snapshot *snap)
{
    pthread_mutex_lock(&reg->lock);
    snap->server = &reg->cfg->server;
    snap->shutting_down = reg->shutting_down;
    snap->generation = reg->generation;
    snap->n_checks = reg->cfg->n_checks;
    for (int i = 0; i < reg->cfg->n_checks; i++) {
        const struct check_state *cs = &reg->states[i];
        struct mh_check_view *v = &snap->checks[i];
        v->check = reg->cfg->checks[i];
        memcpy(v->m, cs->m, sizeof v->m);
        v->have_result = cs->have_result;
        v->last_real = cs->last_real;
        v->age_ms = cs->have_result ? mh_ms_since(&cs->last_mono) : 0;
        v->duration_ms = cs->duration_ms;
        v->runs = cs->runs;
        v->role = cs->role;
        memcpy(v->facts, cs->facts, sizeof v->facts);
        v->n_facts = cs->n_facts;
    }
    pthread_mutex_unlock(&reg->lock);
}

void mh_registry_stop(struct mh_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    reg->stopping = true;
    pthread_cond_broadcast(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
    mh_registry_set_on_change(reg, NULL, NULL);
}

void mh_registry_worker_started(struct mh_registry *reg)
{
    atomic_fetch_add(&reg->workers, 1);
}

void mh_registry_worker_finished(struct mh_registry *reg)
{
    atomic_fetch_sub(&reg->workers, 1);
}

bool mh_registry_wait_workers(struct mh_registry *reg, mh_ms ms)
{
    struct timespec deadline;
    mh_deadline_in(&deadline, ms);
    /* Polling is fine here: it runs at exit and on reload only. */
    while (atomic_load(&reg->workers) > 0) {
        if (mh_deadline_left(&deadline) <= 0)
            return false;
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    }
    return true;
}

bool mh_registry_sleep_until(struct mh_registry *reg, const struct timespec *until)
{
    pthread_mutex_lock(&reg->lock);
    while (!reg->stopping)
        if (pthread_cond_timedwait(&reg->wake, &reg->lock, until) != 0)
            break;
    bool go_on = !reg->stopping;
    pthread_mutex_unlock(&reg->lock);
    return go_on;
}
