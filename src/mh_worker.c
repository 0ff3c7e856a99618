/* mh_worker.c - the per-check threads. See mh_worker.h. */
#include "mh_worker.h"

#include "mh_thread.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct worker {
    struct mh_registry *reg; /* one reference, dropped when the thread ends */
    int idx;
    enum mh_worker_mode mode;
};

static void run_init(struct mh_run *run, const struct mh_check *check)
{
    memset(run, 0, sizeof *run);
    for (int m = 0; m < check->n_meas; m++) {
        mh_observe(run, m, MH_FAIL, "no result (check reported nothing)");
        run->obs[m].answered = (struct timespec){0, 0}; /* nothing answered yet */
    }
}

static bool after(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/* A measurement whose answer arrived by the deadline keeps it, even when the run as a whole took
 * longer: a Redis that answered PING at once is reachable though its write then stalled. Only
 * what was still unanswered at the deadline becomes a failure. */
static void apply_timeout_rule(const struct mh_check *check, struct mh_run *run,
                               const struct timespec *deadline, double ms)
{
    if (ms <= (double)check->timeout)
        return;
    for (int m = 0; m < check->n_meas; m++) {
        struct mh_observation *o = &run->obs[m];
        bool unanswered = o->answered.tv_sec == 0 && o->answered.tv_nsec == 0;
        if (unanswered)
            mh_observe(run, m, MH_FAIL, "timed out: no answer within the timeout of %lld ms",
                       (long long)check->timeout);
        else if (o->status != MH_FAIL && after(&o->answered, deadline))
            mh_observe(run, m, MH_FAIL, "timed out: answered after %.0f ms, timeout %lld ms", ms,
                       (long long)check->timeout);
    }
}

void mh_worker_run_once(const struct mh_check *check, struct mh_run *run, double *duration_ms)
{
    struct timespec start, deadline;
    run_init(run, check);
    mh_now(&start);
    mh_deadline_in(&deadline, check->timeout);
    /* run() may only touch impl: the cast documents that the worker is its single user. */
    check->type->run((struct mh_check *)check, &deadline, run);
    *duration_ms = mh_ms_since(&start);
    apply_timeout_rule(check, run, &deadline, *duration_ms);
}

static mh_ms random_below(mh_ms limit)
{
    uint64_t r = 0;
    if (limit <= 0 || getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)rand();
    return limit > 0 ? (mh_ms)(r % (uint64_t)limit) : 0;
}

/* When the first run is due. After a reload the check takes over from its predecessor (waiting
 * here, never on the main thread, for the old worker to let go of the dependency) and keeps its
 * cadence. On a start, keepalived's warm-up spreads first runs so that a fleet restarted together
 * does not hit the shared database in lockstep; capped, because READY=1 waits for first
 * results. */
static void first_run_time(struct worker *w, const struct mh_check *check, struct timespec *next)
{
    if (mh_registry_take_over(w->reg, w->idx, next))
        return;
    mh_now(next);
    mh_timespec_add_ms(next, random_below(check->interval < MH_WARMUP_MAX_MS ? check->interval
                                                                             : MH_WARMUP_MAX_MS));
}

static void *worker_main(void *arg)
{
    struct worker w = *(struct worker *)arg;
    free(arg);
    const struct mh_check *check = mh_registry_config(w.reg)->checks[w.idx];
    struct timespec next;
    if (w.mode == MH_WORKER_FOREVER) {
        first_run_time(&w, check, &next);
        if (!mh_registry_sleep_until(w.reg, &next))
            goto out;
    }
    for (;;) {
        struct mh_run run;
        double ms;
        mh_now(&next);
        mh_timespec_add_ms(&next, check->interval);
        mh_worker_run_once(check, &run, &ms);
        mh_registry_post(w.reg, w.idx, &run, ms);
        if (w.mode == MH_WORKER_ONCE || !mh_registry_sleep_until(w.reg, &next))
            break;
    }
out:
    mh_registry_worker_finished(w.reg, w.idx);
    mh_registry_unref(w.reg); /* a worker may wait: the last one frees right here */
    return NULL;
}

int mh_workers_start(struct mh_registry *reg, enum mh_worker_mode mode)
{
    const struct mh_config *cfg = mh_registry_config(reg);
    int rc = 0;
    for (int i = 0; i < cfg->n_checks && rc == 0; i++) {
        struct worker *w = malloc(sizeof *w);
        if (!w) {
            rc = ENOMEM;
            break;
        }
        *w = (struct worker){.reg = reg, .idx = i, .mode = mode};
        mh_registry_ref(reg);
        mh_registry_worker_started(reg, i);
        rc = mh_thread_spawn(worker_main, w, 512 * 1024);
        if (rc != 0) {
            mh_registry_worker_finished(reg, i);
            mh_registry_unref(reg);
            free(w);
        }
    }
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}
