/* mh_worker.c - the per-check threads. See mh_worker.h. */
#include "mh_worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
    for (int m = 0; m < check->n_meas; m++)
        mh_observe(run, m, MH_FAIL, "no result (check reported nothing)");
}

/* A run that overran its timeout is a failure even if it finally succeeded: the dependency did
 * not answer in the time the operator allowed. */
static void apply_timeout_rule(const struct mh_check *check, struct mh_run *run, double ms)
{
    if (ms <= (double)check->timeout)
        return;
    for (int m = 0; m < check->n_meas; m++)
        if (run->obs[m].status != MH_FAIL)
            mh_observe(run, m, MH_FAIL, "timed out: took %.0f ms, timeout %lld ms", ms,
                       (long long)check->timeout);
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
    apply_timeout_rule(check, run, *duration_ms);
}

static mh_ms random_below(mh_ms limit)
{
    uint64_t r = 0;
    if (limit <= 0 || getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (uint64_t)rand();
    return limit > 0 ? (mh_ms)(r % (uint64_t)limit) : 0;
}

static void add_ms(struct timespec *t, mh_ms ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

static void *worker_main(void *arg)
{
    struct worker w = *(struct worker *)arg;
    free(arg);
    const struct mh_check *check = mh_registry_config(w.reg)->checks[w.idx];
    struct timespec next;
    mh_now(&next);
    /* keepalived's warm-up: spread first runs so a fleet restarted together does not hit the
     * shared database in lockstep, and keep the spread afterwards. Capped, because readiness
     * (and READY=1 to systemd, whose start timeout is 90 s) waits for every first result. */
    if (w.mode == MH_WORKER_FOREVER) {
        add_ms(&next, random_below(check->interval < MH_WARMUP_MAX_MS ? check->interval
                                                                      : MH_WARMUP_MAX_MS));
        if (!mh_registry_sleep_until(w.reg, &next))
            goto out;
    }
    for (;;) {
        struct mh_run run;
        double ms;
        mh_now(&next);
        add_ms(&next, check->interval);
        mh_worker_run_once(check, &run, &ms);
        mh_registry_post(w.reg, w.idx, &run, ms);
        if (w.mode == MH_WORKER_ONCE || !mh_registry_sleep_until(w.reg, &next))
            break;
    }
out:
    mh_registry_worker_finished(w.reg);
    mh_registry_unref(w.reg);
    return NULL;
}

int mh_workers_start(struct mh_registry *reg, enum mh_worker_mode mode)
{
    const struct mh_config *cfg = mh_registry_config(reg);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024);
    /* Signals belong to the main thread, which waits for them with sigwait-style handling. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = 0;
    for (int i = 0; i < cfg->n_checks && rc == 0; i++) {
        struct worker *w = malloc(sizeof *w);
        if (!w) {
            rc = ENOMEM;
            break;
        }
        *w = (struct worker){.reg = reg, .idx = i, .mode = mode};
        mh_registry_ref(reg);
        mh_registry_worker_started(reg);
        pthread_t tid;
        rc = pthread_create(&tid, &attr, worker_main, w);
        if (rc != 0) {
            mh_registry_worker_finished(reg);
            mh_registry_unref(reg);
            free(w);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return 0;
}
