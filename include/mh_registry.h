/* mh_registry.h - the live state of every configured check, and node and region readiness.
 *
 * Worker threads post each run's result here; the main loop applies staleness; the HTTP layer
 * takes snapshots. Everything mutable lives behind the one registry lock (see struct mh_registry
 * in mh_registry.c); a snapshot is a plain copy that needs no lock, so rendering is pure.
 *
 * Ownership: mh_registry_new() takes the config. The registry is reference counted because worker
 * threads of a replaced configuration may still be finishing a run (or stuck in one) after a
 * reload: each worker holds a reference, and the last unref frees config and checks. Threads that
 * must never wait (the main loop, HTTP handlers) drop theirs with mh_registry_release(), which
 * leaves the freeing - closing connections, giving up DNS lookups - to a reaper thread.
 */
#ifndef MH_REGISTRY_H
#define MH_REGISTRY_H

#include "mh_check.h"
#include "mh_config.h"
#include "mh_history.h"

#include <pthread.h>

/* The per-measurement state machine (hysteresis and staleness). Pure; unit-tested. */
struct mh_meas_state {
    bool have_result;
    bool stale;
    enum mh_status effective; /* what readiness uses: after rise/fall, fail while stale */
    unsigned consecutive_fail;
    unsigned consecutive_pass;
    uint64_t transitions;
    struct mh_observation last; /* the latest run's observation */
    /* While `stale`: why, e.g. "no result for 7.0 s (max_age 6.0 s)" or, with no result at all,
     * "no result after 3 s (first run still running)". */
    char stale_reason[96];
    /* CLOCK_REALTIME of the last change of `effective` (or of the first result): "fail for
     * 3m12s". Kept with the state, so it survives the history ring overflowing. */
    struct timespec since;
};

/* Feeds one raw observation. Returns true when `effective` changed. */
bool mh_meas_apply(struct mh_meas_state *st, const struct mh_observation *obs, unsigned rise,
                   unsigned fall);
/* Marks the measurement stale (fail). Returns true when `effective` changed. */
bool mh_meas_mark_stale(struct mh_meas_state *st);

/* A copy of one check's state, as of the snapshot. */
struct mh_check_view {
    const struct mh_check *check; /* settings; valid while the registry is referenced */
    struct mh_meas_state m[MH_MEASUREMENTS_MAX];
    bool have_result;
    struct timespec last_real; /* wall clock of the last completed run */
    double age_ms;             /* since the last completed run */
    double duration_ms;        /* of the last run */
    uint64_t runs;
    enum mh_role role;
    struct mh_fact facts[MH_FACTS_MAX];
    int n_facts;
};

struct mh_snapshot {
    const struct mh_server_conf *server;
    bool shutting_down;
    uint64_t generation; /* changes whenever any effective status changes */
    int n_checks;
    struct mh_check_view checks[MH_MAX_CHECKS];
    /* The recent transitions, oldest first (mh_history.h), and how many there ever were. */
    int n_history;
    uint64_t history_total;
    struct mh_transition history[MH_HISTORY_MAX];
};

/* One readiness verdict: the worst status among the measurements that affect `which`. */
struct mh_readiness {
    enum mh_status status;
    char reason[MH_OUTPUT_MAX + MH_NAME_MAX * 2]; /* plain words; empty on pass */
    int passing, total; /* measurements that affect it, and how many pass or warn */
};

/* Computes readiness for MH_AFFECTS_NODE or MH_AFFECTS_REGION from a snapshot. Pure. */
void mh_readiness_compute(const struct mh_snapshot *snap, unsigned which, struct mh_readiness *out);

/* Called (under the registry lock, from a worker or the main thread) for each change of an
 * effective status. It must not call back into the registry. */
typedef void (*mh_transition_fn)(const struct mh_check *check, int meas, enum mh_status from,
                                 enum mh_status to, bool first, const char *output, void *ctx);

struct mh_registry;

/* Takes ownership of `cfg`. Returns NULL on out of memory (cfg is then freed). */
struct mh_registry *mh_registry_new(struct mh_config *cfg, mh_transition_fn on_transition,
                                    void *ctx);
void mh_registry_ref(struct mh_registry *reg);
/* Drops a reference; the last one frees here, which may wait (closing connections). */
void mh_registry_unref(struct mh_registry *reg);
/* Drops a reference without ever waiting: the last one is freed on a reaper thread. */
void mh_registry_release(struct mh_registry *reg);

const struct mh_config *mh_registry_config(const struct mh_registry *reg);

/* Records every transition in `history` too (NULL: none), which outlives the registry. Set it
 * before workers start. */
void mh_registry_set_history(struct mh_registry *reg, struct mh_history *history);

/* Called from a worker thread, outside the registry lock, after a post changed an effective
 * status or a role: the HTTP layer re-renders its public bodies right away instead of on the
 * main loop's next tick. Set it before workers start. */
typedef void (*mh_change_fn)(void *ctx);
void mh_registry_set_on_change(struct mh_registry *reg, mh_change_fn on_change, void *ctx);

/* Carries results over from `old` for every check of `reg` with the same name and the same
 * settings (mh_check_same_settings), so a reload does not send readiness back to "starting"
 * while a changed check starts afresh. Call before workers start on `reg`. */
void mh_registry_adopt(struct mh_registry *reg, struct mh_registry *old);

/* For a reload: adopts results from `old` and makes each check of `reg` the successor of the
 * check of `old` with the same name, whose worker must finish before the new one runs (so a check
 * never holds two connections to its dependency). Nothing here waits; `old` must be stopped. */
void mh_registry_succeed(struct mh_registry *reg, struct mh_registry *old);

/* Records the result of one run of check `idx`. */
void mh_registry_post(struct mh_registry *reg, int idx, const struct mh_run *run,
                      double duration_ms);

/* Marks results older than their max_age stale, and a check with no result at all `max_age`
 * after it started as failed ("first run still running"). Returns true when anything changed. */
bool mh_registry_refresh(struct mh_registry *reg);

/* Readiness fails with "shutting down" from now on. */
void mh_registry_set_shutting_down(struct mh_registry *reg);

/* True once every check has a first result. */
bool mh_registry_all_reported(struct mh_registry *reg);

/* Waits until every check has a first result or `ms` passes. Returns true if all reported. */
bool mh_registry_wait_all_reported(struct mh_registry *reg, mh_ms ms);

/* The current generation, cheap: compare to decide whether to re-render. */
uint64_t mh_registry_generation(struct mh_registry *reg);

/* Copies the state. `snap` is large (tens of KiB): heap-allocate it. */
void mh_registry_snapshot(struct mh_registry *reg, struct mh_snapshot *snap);

/* ---- for mh_worker.c ---- */
/* Asks every worker to stop and wakes them. On return the on_change callback is cleared and not
 * running. Never waits for a run. */
void mh_registry_stop(struct mh_registry *reg);
/* Worker threads announce themselves (with a reference held) so that stopping can wait for them.
 * Called by mh_worker.c only. */
void mh_registry_worker_started(struct mh_registry *reg, int idx);
void mh_registry_worker_finished(struct mh_registry *reg, int idx);

/* After mh_registry_stop(): waits up to `ms` for worker threads to finish, so that a clean exit
 * frees everything. Returns false if some worker is still in a run. */
bool mh_registry_wait_workers(struct mh_registry *reg, mh_ms ms);

/* Called by the worker of check `idx` before its first run. When the check succeeds one of an
 * old registry (mh_registry_succeed), waits - on this worker thread, bounded by the old check's
 * timeout plus MH_HANDOVER_GRACE_MS - for the old worker to finish, takes over its latest result
 * if the settings are unchanged, and sets `*next_run` to keep the old cadence. Returns false when
 * there was no predecessor (the worker then warms up as on a start). */
bool mh_registry_take_over(struct mh_registry *reg, int idx, struct timespec *next_run);

#define MH_HANDOVER_GRACE_MS 1000

/* Sleeps until `until` (CLOCK_MONOTONIC) or a stop. Returns false when asked to stop. */
bool mh_registry_sleep_until(struct mh_registry *reg, const struct timespec *until);

#endif
