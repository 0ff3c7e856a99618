/* mh_registry.c - check state, hysteresis, staleness and readiness. See mh_registry.h. */
#include "mh_registry.h"

#include "mh_thread.h"

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
    snprintf(st->stale_reason, sizeof st->stale_reason, "stale"); /* the caller may say more */
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
            if (!st->have_result && !st->stale) {
                starting = true;
                continue;
            }
            if (st->effective != MH_FAIL)
                out->passing++;
            if (st->effective > out->status) { /* the first of the worst names the reason */
                out->status = st->effective;
                snprintf(out->reason, sizeof out->reason, "%s:%s %s: %s", v->check->name,
                         v->check->meas[m].name, mh_status_name(st->effective),
                         st->stale ? st->stale_reason : st->last.output);
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
    bool worker_running;     /* its worker thread has started and not finished */
    struct timespec started; /* monotonic: when the registry was made, for "no result after" */
    struct timespec last_mono, last_real;
    double duration_ms;
    uint64_t runs;
    enum mh_role role;
    struct mh_fact facts[MH_FACTS_MAX];
    int n_facts;
};

/* The check of an old registry that a check of this one replaces on reload. */
struct predecessor {
    struct mh_registry *reg; /* one reference, dropped by mh_registry_take_over() */
    int idx;
};

struct mh_registry {
    struct mh_config *cfg; /* owned; immutable after creation */
    /* Set by mh_registry_succeed() before workers start; each entry is then read and cleared by
     * its own check's worker only. */
    struct predecessor *pred;
    mh_transition_fn on_transition;
    void *ctx;
    struct mh_history *history; /* not owned; set before workers start; has its own lock */
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
    if (reg) {
        reg->states = calloc((size_t)cfg->n_checks + 1, sizeof *reg->states);
        reg->pred = calloc((size_t)cfg->n_checks + 1, sizeof *reg->pred);
    }
    if (!reg || !reg->states || !reg->pred) {
        if (reg) {
            free(reg->states);
            free(reg->pred);
        }
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
    struct timespec now;
    mh_now(&now);
    for (int i = 0; i < cfg->n_checks; i++)
        reg->states[i].started = now;
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
    for (int i = 0; i < reg->cfg->n_checks; i++)
        if (reg->pred[i].reg) /* a worker that never started: drop what it would have */
            mh_registry_release(reg->pred[i].reg);
    mh_config_free(reg->cfg);
    free(reg->states);
    free(reg->pred);
    free(reg);
}

static void *reaper_main(void *arg)
{
    pthread_setname_np(pthread_self(), "mh-reaper");
    mh_registry_unref(arg);
    return NULL;
}

void mh_registry_release(struct mh_registry *reg)
{
    if (!reg)
        return;
    /* Not the last reference: dropping it is all there is to do. */
    int refs = atomic_load(&reg->refs);
    while (refs > 1)
        if (atomic_compare_exchange_weak(&reg->refs, &refs, refs - 1))
            return;
    if (mh_thread_spawn(reaper_main, reg, 256 * 1024) != 0)
        mh_registry_unref(reg); /* no thread to be had: free it here rather than leak it */
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

void mh_registry_set_history(struct mh_registry *reg, struct mh_history *history)
{
    reg->history = history;
}

/* Every change of an effective status goes through here, under the lock. */
static void notify(struct mh_registry *reg, int idx, int m, enum mh_status from, bool first)
{
    struct mh_meas_state *st = &reg->states[idx].m[m];
    const struct mh_check *c = reg->cfg->checks[idx];
    reg->generation++;
    clock_gettime(CLOCK_REALTIME, &st->since);
    mh_history_add(reg->history, c->name, c->meas[m].name, from, st->effective, first,
                   st->stale ? st->stale_reason : st->last.output);
    if (reg->on_transition)
        reg->on_transition(reg->cfg->checks[idx], m, from, st->effective, first,
                           st->stale ? st->stale_reason : st->last.output, reg->ctx);
}

/* A result carries over a reload only to the same check with unchanged settings: a check whose
 * host, file or thresholds changed must earn its verdict afresh. */
static bool same_check(const struct mh_check *a, const struct mh_check *b)
{
    return strcmp(a->name, b->name) == 0 && mh_check_same_settings(a, b);
}

static int find_check(const struct mh_config *cfg, const char *name)
{
    for (int j = 0; j < cfg->n_checks; j++)
        if (strcmp(cfg->checks[j]->name, name) == 0)
            return j;
    return -1;
}

/* Copies the state of old check `j` into check `i`, keeping `i`'s own bookkeeping. Caller holds
 * neither lock; each is taken on its own, never nested. */
static void adopt_one(struct mh_registry *reg, int i, struct mh_registry *old, int j)
{
    struct check_state taken;
    pthread_mutex_lock(&old->lock);
    taken = old->states[j];
    pthread_mutex_unlock(&old->lock);
    pthread_mutex_lock(&reg->lock);
    struct check_state *cs = &reg->states[i];
    taken.worker_running = cs->worker_running;
    taken.started = cs->started;
    if (taken.runs != cs->runs || !cs->have_result) {
        *cs = taken;
        reg->generation++;
    }
    pthread_mutex_unlock(&reg->lock);
}

void mh_registry_adopt(struct mh_registry *reg, struct mh_registry *old)
{
    for (int i = 0; i < reg->cfg->n_checks; i++) {
        int j = find_check(old->cfg, reg->cfg->checks[i]->name);
        if (j >= 0 && same_check(reg->cfg->checks[i], old->cfg->checks[j]))
            adopt_one(reg, i, old, j);
    }
    pthread_mutex_lock(&old->lock);
    uint64_t generation = old->generation;
    pthread_mutex_unlock(&old->lock);
    pthread_mutex_lock(&reg->lock);
    reg->generation = generation + 1;
    pthread_mutex_unlock(&reg->lock);
}

void mh_registry_succeed(struct mh_registry *reg, struct mh_registry *old)
{
    mh_registry_adopt(reg, old);
    for (int i = 0; i < reg->cfg->n_checks; i++) {
        int j = find_check(old->cfg, reg->cfg->checks[i]->name);
        if (j < 0)
            continue;
        mh_registry_ref(old);
        reg->pred[i] = (struct predecessor){.reg = old, .idx = j};
    }
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

/* Marks every measurement of check `i` stale with `reason`. Caller holds the lock. */
static bool mark_check_stale(struct mh_registry *reg, int i, const char *reason)
{
    struct check_state *cs = &reg->states[i];
    const struct mh_check *c = reg->cfg->checks[i];
    bool changed = false;
    for (int m = 0; m < c->n_meas; m++) {
        struct mh_meas_state *st = &cs->m[m];
        enum mh_status from = st->effective;
        bool was_stale = st->stale, first = !st->have_result;
        bool flipped = mh_meas_mark_stale(st);
        snprintf(st->stale_reason, sizeof st->stale_reason, "%s", reason);
        if (flipped || !was_stale) {
            notify(reg, i, m, from, first);
            changed = true;
        }
    }
    return changed;
}

/* "850 ms" or "3.2 s", for reasons people read. */
static void format_duration(char *out, size_t outlen, double ms)
{
    if (ms < 1000)
        snprintf(out, outlen, "%.0f ms", ms);
    else
        snprintf(out, outlen, "%.1f s", ms / 1000);
}

bool mh_registry_refresh(struct mh_registry *reg)
{
    bool changed = false;
    pthread_mutex_lock(&reg->lock);
    for (int i = 0; i < reg->cfg->n_checks; i++) {
        struct check_state *cs = &reg->states[i];
        const struct mh_check *c = reg->cfg->checks[i];
        double age = mh_ms_since(cs->have_result ? &cs->last_mono : &cs->started);
        if (age <= (double)c->max_age)
            continue;
        char reason[96], age_s[24], max_s[24];
        format_duration(age_s, sizeof age_s, age);
        format_duration(max_s, sizeof max_s, (double)c->max_age);
        if (cs->have_result)
            snprintf(reason, sizeof reason, "no result for %s (max_age %s)", age_s, max_s);
        else
            snprintf(reason, sizeof reason, "no result after %s (first run still running)", max_s);
        if (!cs->m[0].stale || cs->have_result)
            changed |= mark_check_stale(reg, i, reason);
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
    snap->n_history = mh_history_copy(reg->history, snap->history, &snap->history_total);
}

void mh_registry_stop(struct mh_registry *reg)
{
    pthread_mutex_lock(&reg->lock);
    reg->stopping = true;
    pthread_cond_broadcast(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
    mh_registry_set_on_change(reg, NULL, NULL);
}

void mh_registry_worker_started(struct mh_registry *reg, int idx)
{
    atomic_fetch_add(&reg->workers, 1);
    pthread_mutex_lock(&reg->lock);
    reg->states[idx].worker_running = true;
    pthread_mutex_unlock(&reg->lock);
}

void mh_registry_worker_finished(struct mh_registry *reg, int idx)
{
    pthread_mutex_lock(&reg->lock);
    reg->states[idx].worker_running = false;
    pthread_cond_broadcast(&reg->wake);
    pthread_mutex_unlock(&reg->lock);
    atomic_fetch_sub(&reg->workers, 1);
}

bool mh_registry_wait_workers(struct mh_registry *reg, mh_ms ms)
{
    struct timespec deadline;
    mh_deadline_in(&deadline, ms);
    pthread_mutex_lock(&reg->lock);
    while (atomic_load(&reg->workers) > 0)
        if (pthread_cond_timedwait(&reg->wake, &reg->lock, &deadline) != 0)
            break;
    bool all = atomic_load(&reg->workers) == 0;
    pthread_mutex_unlock(&reg->lock);
    return all;
}

/* Waits until worker `idx` of (stopped) `reg` has finished, or `deadline`. */
static bool wait_worker(struct mh_registry *reg, int idx, const struct timespec *deadline)
{
    pthread_mutex_lock(&reg->lock);
    while (reg->states[idx].worker_running)
        if (pthread_cond_timedwait(&reg->wake, &reg->lock, deadline) != 0)
            break;
    bool done = !reg->states[idx].worker_running;
    pthread_mutex_unlock(&reg->lock);
    return done;
}

bool mh_registry_take_over(struct mh_registry *reg, int idx, struct timespec *next_run)
{
    struct predecessor p = reg->pred[idx];
    if (!p.reg)
        return false;
    reg->pred[idx].reg = NULL;
    const struct mh_check *mine = reg->cfg->checks[idx], *theirs = p.reg->cfg->checks[p.idx];
    struct timespec until;
    mh_deadline_in(&until, theirs->timeout + MH_HANDOVER_GRACE_MS);
    wait_worker(p.reg, p.idx, &until);
    bool same = same_check(mine, theirs);
    if (same)
        adopt_one(reg, idx, p.reg, p.idx);
    mh_registry_release(p.reg);
    mh_now(next_run);
    pthread_mutex_lock(&reg->lock);
    if (same && reg->states[idx].have_result) { /* keep the cadence: run when the old one would */
        struct timespec due = reg->states[idx].last_mono;
        mh_timespec_add_ms(&due, mine->interval);
        if (due.tv_sec > next_run->tv_sec ||
            (due.tv_sec == next_run->tv_sec && due.tv_nsec > next_run->tv_nsec))
            *next_run = due;
    }
    pthread_mutex_unlock(&reg->lock);
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
