/* mh_check.h - the one interface every check type implements, and what a run reports.
 *
 * A check type (disk, drain, mysql, redis, fpm) is a struct mh_check_type with three functions:
 *   create()  - parse the type's keys from its [check.NAME] section and declare the
 *               measurements it reports. No network I/O (it also runs for --test-config).
 *   run()     - do the check once and fill in one observation per declared measurement. It must
 *               return by the deadline: every socket and syscall it uses is bounded by it.
 *   destroy() - release what create() and run() built up.
 * The framework (mh_registry.c, mh_worker.c) owns scheduling, timeouts, hysteresis, staleness and
 * aggregation; the HTTP layer only ever sees results. Adding a type means one new file and one
 * line in mh_check_types.c.
 *
 * A check reports one or more measurements. Each is its own entry under "checks" in the
 * health+json body ("NAME:MEASUREMENT") with its own status and its own effect on node and region
 * readiness. The mysql check, for example, reports connectivity (node and region), writable
 * (region) and lag (region). */
#ifndef MH_CHECK_H
#define MH_CHECK_H

#include "mh_config.h"
#include "mh_types.h"

#include <pthread.h>
#include <time.h>

#define MH_NAME_MAX         64
#define MH_MEASUREMENTS_MAX 6
#define MH_OUTPUT_MAX       256
#define MH_FACTS_MAX        8
#define MH_FACT_KEY_MAX     32
#define MH_FACT_VALUE_MAX   96

/* What one measurement found in one run. */
struct mh_observation {
    enum mh_status status;
    char output[MH_OUTPUT_MAX]; /* one line, why it is not pass; may be empty on pass */
    bool has_value;
    double value;
    const char *unit; /* static string: "ms", "%", "s", ...; NULL when has_value is false */
    /* CLOCK_MONOTONIC time the answer behind this observation arrived; {0,0} while unanswered.
     * mh_observe() stamps "now"; a type that judges an answer later re-stamps it with
     * mh_observe_answered_at(). A run that overruns its deadline keeps every observation answered
     * by the deadline (see mh_worker.c). */
    struct timespec answered;
};

/* A key/value shown in the detailed view of the check, e.g. role=writer, version=10.11.6. */
struct mh_fact {
    char key[MH_FACT_KEY_MAX];
    char value[MH_FACT_VALUE_MAX];
};

/* What one run of a check found. Filled by the type's run(); the framework sets the timing. */
struct mh_run {
    struct mh_observation obs[MH_MEASUREMENTS_MAX]; /* indexed as declared */
    enum mh_role role;                              /* for datastores; else UNKNOWN */
    struct mh_fact facts[MH_FACTS_MAX];
    int n_facts;
};

struct mh_check;

struct mh_check_type {
    const char *name;           /* the `type =` value */
    const char *component_type; /* health+json componentType: "system", "datastore", "component" */
    unsigned default_affects;   /* for `affects =`, when the section does not set it */
    /* Returns 0, or -1 after mh_section_error(). May set check->impl. */
    int (*create)(struct mh_check *check, struct mh_section *sec);
    /* `deadline` is on CLOCK_MONOTONIC. Runs on the check's own worker thread only. */
    void (*run)(struct mh_check *check, const struct timespec *deadline, struct mh_run *out);
    /* Frees check->impl. Called once, never concurrently with run(). Also called when create()
     * failed part-way, so it must cope with impl being NULL or half built. May be NULL. */
    void (*destroy)(struct mh_check *check);
};

/* One measurement a check declared. */
struct mh_measurement {
    char name[MH_NAME_MAX]; /* "free", "connectivity", ... */
    unsigned affects;       /* MH_AFFECTS_* bits */
};

/* A configured check. Settings are fixed after create; `impl` belongs to the type and is only
 * touched from create(), run() and destroy(), which the framework never runs concurrently. */
struct mh_check {
    char name[MH_NAME_MAX];
    const struct mh_check_type *type;
    const struct mh_server_conf *server; /* the [server] settings; outlives the check */
    mh_ms interval;
    mh_ms timeout;
    mh_ms max_age;    /* a result older than this counts as fail "stale"; default 3 x interval */
    unsigned rise;    /* consecutive passes before a failing measurement passes again */
    unsigned fall;    /* consecutive failures before a passing measurement fails */
    unsigned affects; /* the section's `affects =`; types apply it to their main measurement */
    bool affects_set; /* true when the section wrote `affects =` itself */
    struct mh_measurement meas[MH_MEASUREMENTS_MAX];
    int n_meas;
    /* Set by the loader over everything that decides what the check does (see
     * mh_check_same_settings()); 0 for a check built by hand. */
    uint64_t settings_hash;
    void *impl;
};

/* True when `a` and `b` (from two loads of the configuration) are the same check with the same
 * settings: name, type, every line of the section in order, the secrets those lines resolved
 * (compared by hash; the file or variable may have changed behind the same name), the effective
 * interval, timeout, max_age, rise, fall and affects, and the [server] node and magento_root. Only
 * then may a reload carry a result over. */
bool mh_check_same_settings(const struct mh_check *a, const struct mh_check *b);

/* Declares a measurement from create(). Returns its index for mh_observe(), or -1 when there
 * are too many (a programming error). A measurement that affects the region also counts for
 * the standby view. */
int mh_check_declare(struct mh_check *check, const char *measurement, unsigned affects);

/* Declares a measurement that proves the dependency accepts writes (a database or session
 * store that is the writer). It counts for region readiness, not for the standby view. */
int mh_check_declare_write(struct mh_check *check, const char *measurement, unsigned affects);

/* Sets measurement `i` of `run` to `status` with a printf-style one-line output. Newlines and
 * control characters become spaces, bytes that are not UTF-8 become U+FFFD (see mh_utf8.h), and
 * long text is cut between characters. */
void mh_observe(struct mh_run *run, int i, enum mh_status status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records that the answer behind measurement `i` arrived at `at` (CLOCK_MONOTONIC), for a type
 * that judges an answer after later steps of the same run. Call it after mh_observe(). */
void mh_observe_answered_at(struct mh_run *run, int i, const struct timespec *at);

/* Attaches an observed value and its unit to measurement `i`. */
void mh_observe_value(struct mh_run *run, int i, double value, const char *unit);

/* Adds a fact for the detailed view, cleaned as mh_observe() cleans output. Silently ignored past
 * MH_FACTS_MAX. */
void mh_run_fact(struct mh_run *run, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Milliseconds left until `deadline` (CLOCK_MONOTONIC), never below 0. */
mh_ms mh_deadline_left(const struct timespec *deadline);

/* Adds `ms` (>= 0) to `t`. */
void mh_timespec_add_ms(struct timespec *t, mh_ms ms);

/* Monotonic now, and a deadline `ms` from now. */
void mh_now(struct timespec *ts);
void mh_deadline_in(struct timespec *deadline, mh_ms ms);
/* Initialises a condition variable whose pthread_cond_timedwait() takes these deadlines. */
void mh_cond_init_monotonic(pthread_cond_t *cond);
/* Milliseconds (fractional) elapsed since `start` (CLOCK_MONOTONIC). */
double mh_ms_since(const struct timespec *start);

/* The registered types, looked up by name. NULL when unknown. */
const struct mh_check_type *mh_check_type_find(const char *name);
/* A comma-separated list of type names, for error messages. */
const char *mh_check_type_names(void);

#endif
