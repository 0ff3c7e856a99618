/* mh_worker.h - runs each check on its own thread, on its own interval, with a random warm-up.
 *
 * One thread per check keeps a hung dependency from delaying any other check: a check whose
 * run() never returns simply stops posting results, and the registry marks it stale. Threads
 * are detached and hold a registry reference, so a reload never waits for a stuck thread. */
#ifndef MH_WORKER_H
#define MH_WORKER_H

#include "mh_registry.h"

/* The first run of a check comes after a random warm-up in [0, min(interval, this)). */
#define MH_WARMUP_MAX_MS 5000

enum mh_worker_mode {
    MH_WORKER_FOREVER, /* random warm-up, then every interval until stopped */
    MH_WORKER_ONCE,    /* one run at once, then exit (for --check) */
};

/* Starts one thread per check of `reg`. Returns 0, or -1 with errno when a thread could not be
 * created (threads already started keep running until mh_registry_stop()). */
int mh_workers_start(struct mh_registry *reg, enum mh_worker_mode mode);

/* Runs one check once, on the calling thread, and returns the run with the framework's timeout
 * rule applied. Exposed for tests. */
void mh_worker_run_once(const struct mh_check *check, struct mh_run *run, double *duration_ms);

#endif
