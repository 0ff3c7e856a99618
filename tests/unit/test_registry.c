/* test_registry.c - unit tests for mh_registry.c: the per-measurement hysteresis and staleness
 * state machine, readiness over hand-built snapshots, and a registry round trip (post, snapshot,
 * refresh to stale, recovery, adopt) on a configuration loaded from a temp file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_check.h"
#include "mh_registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the state machine ---- */

static struct mh_observation obs(enum mh_status s, const char *output)
{
    struct mh_observation o;
    memset(&o, 0, sizeof o);
    o.status = s;
    snprintf(o.output, sizeof o.output, "%s", output);
    return o;
}

/* Applies one observation and checks the return value and the resulting effective status. */
static void apply(struct mh_meas_state *st, enum mh_status s, unsigned rise, unsigned fall,
                  bool want_changed, enum mh_status want_effective)
{
    struct mh_observation o = obs(s, mh_status_name(s));
    bool changed = mh_meas_apply(st, &o, rise, fall);
    if (changed != want_changed || st->effective != want_effective) {
        print_error("apply %s (rise %u fall %u): changed %d effective %s, expected %d %s\n",
                    mh_status_name(s), rise, fall, changed, mh_status_name(st->effective),
                    want_changed, mh_status_name(want_effective));
        fail();
    }
    assert_true(st->have_result);
    assert_false(st->stale);
    assert_string_equal(st->last.output, mh_status_name(s));
}

static void test_first_result_sets_status(void **state)
{
    (void)state;
    /* Whatever rise and fall say, the first result counts at once. */
    struct mh_meas_state st;
    memset(&st, 0, sizeof st);
    apply(&st, MH_FAIL, 5, 5, true, MH_FAIL);
    assert_int_equal(st.transitions, 0);
    assert_int_equal(st.consecutive_fail, 1);

    memset(&st, 0, sizeof st);
    apply(&st, MH_PASS, 5, 5, true, MH_PASS); /* effective was PASS already: still "changed" */
    assert_int_equal(st.transitions, 0);
    assert_int_equal(st.consecutive_pass, 1);

    memset(&st, 0, sizeof st);
    apply(&st, MH_WARN, 5, 5, true, MH_WARN);
    assert_int_equal(st.transitions, 0);
}

static void test_fall(void **state)
{
    (void)state;
    struct mh_meas_state st;
    memset(&st, 0, sizeof st);
    apply(&st, MH_PASS, 1, 3, true, MH_PASS);
    apply(&st, MH_FAIL, 1, 3, false, MH_PASS);
    assert_int_equal(st.consecutive_fail, 1);
    apply(&st, MH_FAIL, 1, 3, false, MH_PASS);
    assert_int_equal(st.consecutive_fail, 2);
    apply(&st, MH_FAIL, 1, 3, true, MH_FAIL);
    assert_int_equal(st.transitions, 1);
    /* Further failures change nothing. */
    apply(&st, MH_FAIL, 1, 3, false, MH_FAIL);
    assert_int_equal(st.transitions, 1);
    assert_int_equal(st.consecutive_fail, 4);
}

static void test_fall_reset_by_pass(void **state)
{
    (void)state;
    struct mh_meas_state st;
    memset(&st, 0, sizeof st);
    apply(&st, MH_PASS, 1, 3, true, MH_PASS);
    apply(&st, MH_FAIL, 1, 3, false, MH_PASS);
    apply(&st, MH_FAIL, 1, 3, false, MH_PASS);
    apply(&st, MH_PASS, 1, 3, false, MH_PASS); /* resets the count */
    assert_int_equal(st.consecutive_fail, 0);
    apply(&st, MH_FAIL, 1, 3, false, MH_PASS);
    apply(&st, MH_FAIL, 1, 3, false, MH_PASS);
    apply(&st, MH_WARN, 1, 3, true, MH_WARN); /* a warn resets it as well, and shows at once */
    apply(&st, MH_FAIL, 1, 3, false, MH_WARN);
    apply(&st, MH_FAIL, 1, 3, false, MH_WARN);
    apply(&st, MH_FAIL, 1, 3, true, MH_FAIL);
    assert_int_equal(st.transitions, 2);
}

static void test_rise(void **state)
{
    (void)state;
    struct mh_meas_state st;
    memset(&st, 0, sizeof st);
    apply(&st, MH_FAIL, 2, 1, true, MH_FAIL);
    apply(&st, MH_PASS, 2, 1, false, MH_FAIL);
    assert_int_equal(st.consecutive_pass, 1);
    apply(&st, MH_FAIL, 2, 1, false, MH_FAIL); /* resets the pass count */
    assert_int_equal(st.consecutive_pass, 0);
    apply(&st, MH_PASS, 2, 1, false, MH_FAIL);
    apply(&st, MH_PASS, 2, 1, true, MH_PASS);
    assert_int_equal(st.transitions, 1);
    /* rise counts warns too: fail -> (warn, warn) -> warn */
    apply(&st, MH_FAIL, 2, 1, true, MH_FAIL);
    apply(&st, MH_WARN, 2, 1, false, MH_FAIL);
    apply(&st, MH_WARN, 2, 1, true, MH_WARN);
    assert_int_equal(st.transitions, 3);
}

static void test_pass_warn_immediate(void **state)
{
    (void)state;
    struct mh_meas_state st;
    memset(&st, 0, sizeof st);
    apply(&st, MH_PASS, 3, 3, true, MH_PASS);
    apply(&st, MH_WARN, 3, 3, true, MH_WARN);
    apply(&st, MH_PASS, 3, 3, true, MH_PASS);
    apply(&st, MH_WARN, 3, 3, true, MH_WARN);
    apply(&st, MH_WARN, 3, 3, false, MH_WARN);
    assert_int_equal(st.transitions, 3);
}

static void test_stale(void **state)
{
    (void)state;
    struct mh_meas_state st;
    memset(&st, 0, sizeof st);
    apply(&st, MH_PASS, 2, 1, true, MH_PASS);
    apply(&st, MH_PASS, 2, 1, false, MH_PASS);
    assert_true(mh_meas_mark_stale(&st));
    assert_true(st.stale);
    assert_int_equal(st.effective, MH_FAIL);
    assert_int_equal(st.transitions, 1);
    assert_int_equal(st.consecutive_pass, 0);
    /* Marking again changes nothing. */
    assert_false(mh_meas_mark_stale(&st));
    assert_int_equal(st.transitions, 1);
    /* Coming back needs `rise` passes. */
    apply(&st, MH_PASS, 2, 1, false, MH_FAIL);
    assert_false(st.stale);
    apply(&st, MH_PASS, 2, 1, true, MH_PASS);
    assert_int_equal(st.transitions, 2);

    /* A failing measurement going stale is still fail: not a change, but stale is set. */
    memset(&st, 0, sizeof st);
    apply(&st, MH_FAIL, 1, 1, true, MH_FAIL);
    assert_false(mh_meas_mark_stale(&st));
    assert_true(st.stale);
    assert_int_equal(st.effective, MH_FAIL);
    assert_int_equal(st.transitions, 0);
    /* With rise 1, one pass recovers. */
    apply(&st, MH_PASS, 1, 1, true, MH_PASS);
    assert_int_equal(st.transitions, 1);
}

/* ---- readiness on hand-built snapshots ---- */

static const struct mh_server_conf server = {.node = "web-1", .region = "eu"};

static void make_check(struct mh_check *c, const char *name, int n, const char *const *meas,
                       const unsigned *affects)
{
    fake_check(c, name, mh_check_type_find("drain"), &server, n, meas, affects);
}

/* Three checks: disk:free (node), db:connectivity (node+region), db:lag (region),
 * cron:queue (none). */
static struct mh_check chk_disk, chk_db, chk_cron;

static void set_meas(struct mh_snapshot *snap, int check, int m, enum mh_status s,
                     const char *output)
{
    struct mh_meas_state *st = &snap->checks[check].m[m];
    st->have_result = true;
    st->stale = false;
    st->effective = s;
    st->last = obs(s, output);
    snap->checks[check].have_result = true;
}

static struct mh_snapshot *new_snapshot(void)
{
    static const char *const disk_m[] = {"free"};
    static const unsigned disk_a[] = {MH_AFFECTS_NODE};
    static const char *const db_m[] = {"connectivity", "lag"};
    static const unsigned db_a[] = {MH_AFFECTS_NODE | MH_AFFECTS_REGION, MH_AFFECTS_REGION};
    static const char *const cron_m[] = {"queue"};
    static const unsigned cron_a[] = {MH_AFFECTS_NONE};
    make_check(&chk_disk, "disk", 1, disk_m, disk_a);
    make_check(&chk_db, "db", 2, db_m, db_a);
    make_check(&chk_cron, "cron", 1, cron_m, cron_a);
    struct mh_snapshot *snap = calloc(1, sizeof *snap);
    assert_non_null(snap);
    snap->server = &server;
    snap->n_checks = 3;
    snap->checks[0].check = &chk_disk;
    snap->checks[1].check = &chk_db;
    snap->checks[2].check = &chk_cron;
    set_meas(snap, 0, 0, MH_PASS, "");
    set_meas(snap, 1, 0, MH_PASS, "");
    set_meas(snap, 1, 1, MH_PASS, "");
    set_meas(snap, 2, 0, MH_PASS, "");
    return snap;
}

static void readiness(const struct mh_snapshot *snap, unsigned which, enum mh_status status,
                      const char *reason, int passing, int total)
{
    struct mh_readiness r;
    memset(&r, 0x55, sizeof r);
    mh_readiness_compute(snap, which, &r);
    if (r.status != status || strcmp(r.reason, reason) != 0 || r.passing != passing ||
        r.total != total) {
        print_error("readiness %s: %s \"%s\" %d/%d, expected %s \"%s\" %d/%d\n",
                    which == MH_AFFECTS_NODE ? "node" : "region", mh_status_name(r.status),
                    r.reason, r.passing, r.total, mh_status_name(status), reason, passing, total);
        fail();
    }
}

static void test_readiness_all_pass(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    readiness(snap, MH_AFFECTS_NODE, MH_PASS, "", 2, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_PASS, "", 2, 2);
    free(snap);
}

static void test_readiness_warn(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 1, 1, MH_WARN, "lag 12 s");
    readiness(snap, MH_AFFECTS_NODE, MH_PASS, "", 2, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_WARN, "db:lag warn: lag 12 s", 2, 2);
    free(snap);
}

static void test_readiness_node_fail(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 0, 0, MH_FAIL, "/: 1.0% free");
    readiness(snap, MH_AFFECTS_NODE, MH_FAIL, "disk:free fail: /: 1.0% free", 1, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_PASS, "", 2, 2);
    /* A warn elsewhere does not take the reason from the failure. */
    set_meas(snap, 1, 0, MH_WARN, "slow");
    readiness(snap, MH_AFFECTS_NODE, MH_FAIL, "disk:free fail: /: 1.0% free", 1, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_WARN, "db:connectivity warn: slow", 2, 2);
    /* With two failures the first one names the reason. */
    set_meas(snap, 1, 0, MH_FAIL, "refused");
    readiness(snap, MH_AFFECTS_NODE, MH_FAIL, "disk:free fail: /: 1.0% free", 0, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_FAIL, "db:connectivity fail: refused", 1, 2);
    free(snap);
}

static void test_readiness_starting(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    memset(&snap->checks[1].m[1], 0, sizeof snap->checks[1].m[1]); /* db:lag: no result */
    readiness(snap, MH_AFFECTS_NODE, MH_PASS, "", 2, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_FAIL, "starting", 1, 2);
    /* A real failure wins over "starting" as the reason. */
    set_meas(snap, 1, 0, MH_FAIL, "refused");
    readiness(snap, MH_AFFECTS_REGION, MH_FAIL, "db:connectivity fail: refused", 0, 2);
    /* A snapshot without any result at all. */
    memset(snap->checks, 0, sizeof snap->checks[0] * 3);
    snap->checks[0].check = &chk_disk;
    snap->checks[1].check = &chk_db;
    snap->checks[2].check = &chk_cron;
    readiness(snap, MH_AFFECTS_NODE, MH_FAIL, "starting", 0, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_FAIL, "starting", 0, 2);
    free(snap);
}

static void test_readiness_shutting_down(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    snap->shutting_down = true;
    readiness(snap, MH_AFFECTS_NODE, MH_FAIL, "shutting down", 2, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_PASS, "", 2, 2);
    free(snap);
}

static void test_readiness_affects_none_ignored(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 2, 0, MH_FAIL, "queue stuck");
    readiness(snap, MH_AFFECTS_NODE, MH_PASS, "", 2, 2);
    readiness(snap, MH_AFFECTS_REGION, MH_PASS, "", 2, 2);
    /* Nor does a measurement without a result make it "starting". */
    memset(&snap->checks[2].m[0], 0, sizeof snap->checks[2].m[0]);
    readiness(snap, MH_AFFECTS_NODE, MH_PASS, "", 2, 2);
    free(snap);
}

static void test_readiness_stale_reason(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 0, 0, MH_PASS, "/: 50% free");
    assert_true(mh_meas_mark_stale(&snap->checks[0].m[0]));
    readiness(snap, MH_AFFECTS_NODE, MH_FAIL, "disk:free fail: stale", 1, 2);
    free(snap);
}

/* ---- the registry ---- */

static char cfg_path[64];

static int remove_cfg(void **state)
{
    (void)state;
    if (cfg_path[0])
        unlink(cfg_path);
    cfg_path[0] = '\0';
    return 0;
}

static struct mh_config *load(const char *text)
{
    remove_cfg(NULL);
    snprintf(cfg_path, sizeof cfg_path, "/tmp/mh-test-registry-XXXXXX");
    int fd = mkstemp(cfg_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char err[MH_CONFIG_ERROR_MAX] = "";
    struct mh_config *cfg = mh_config_load(cfg_path, err, sizeof err);
    if (!cfg)
        print_error("config: %s\n", err);
    assert_non_null(cfg);
    return cfg;
}

#define DRAIN_CHECK                                                                                \
    "[check.drain]\n"                                                                              \
    "type = drain\n"                                                                               \
    "file = /tmp/mh-test-registry-no-such-drain-file\n"                                            \
    "interval = 10ms\n"                                                                            \
    "timeout = 10ms\n"                                                                             \
    "max_age = 50ms\n"                                                                             \
    "rise = 2\n"                                                                                   \
    "affects = node, region\n"

struct transition {
    const struct mh_check *check;
    int meas;
    enum mh_status from, to;
    bool first;
    char output[MH_OUTPUT_MAX];
};

struct recorder {
    int n;
    struct transition t[16];
};

static void on_transition(const struct mh_check *check, int meas, enum mh_status from,
                          enum mh_status to, bool first, const char *output, void *ctx)
{
    struct recorder *r = ctx;
    if (r->n < 16) {
        struct transition *t = &r->t[r->n];
        t->check = check;
        t->meas = meas;
        t->from = from;
        t->to = to;
        t->first = first;
        snprintf(t->output, sizeof t->output, "%s", output);
    }
    r->n++;
}

static void post_status(struct mh_registry *reg, int idx, enum mh_status s, const char *output)
{
    struct mh_run run;
    memset(&run, 0, sizeof run);
    mh_observe(&run, 0, s, "%s", output);
    mh_registry_post(reg, idx, &run, 1.5);
}

/* A first run that never finishes must not leave readiness at "starting" forever: after max_age
 * the check fails with a reason, and the transition is reported. */
static void test_registry_first_run_overdue(void **state)
{
    (void)state;
    struct recorder rec = {0};
    struct mh_registry *reg = mh_registry_new(load(DRAIN_CHECK), on_transition, &rec);
    assert_non_null(reg);
    struct mh_snapshot *snap = calloc(1, sizeof *snap);
    assert_non_null(snap);
    struct timespec give_up;
    mh_deadline_in(&give_up, 5000);
    while (!mh_registry_refresh(reg) && mh_deadline_left(&give_up) > 0)
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    mh_registry_snapshot(reg, snap);
    struct mh_readiness r;
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &r);
    assert_int_equal(r.status, MH_FAIL);
    assert_non_null(strstr(r.reason, "drain:drain fail: no result after "));
    assert_non_null(strstr(r.reason, "(first run still running)"));
    assert_int_equal(rec.n, 1);
    assert_true(rec.t[0].first);
    assert_int_equal(rec.t[0].to, MH_FAIL);
    assert_false(mh_registry_all_reported(reg));
    assert_false(mh_registry_refresh(reg));       /* reported once, not on every tick */
    post_status(reg, 0, MH_PASS, "not draining"); /* the run comes back after all */
    mh_registry_snapshot(reg, snap);
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &r);
    assert_int_equal(r.status, MH_PASS);
    free(snap);
    mh_registry_unref(reg);
}

static void test_registry_round_trip(void **state)
{
    (void)state;
    struct mh_config *cfg = load("[server]\nnode = reg-node\n" DRAIN_CHECK);
    struct recorder rec = {0};
    struct mh_registry *reg = mh_registry_new(cfg, on_transition, &rec);
    assert_non_null(reg);
    assert_ptr_equal(mh_registry_config(reg), cfg);
    const struct mh_check *check = cfg->checks[0];
    assert_int_equal(check->max_age, 50);
    assert_int_equal(check->rise, 2);

    struct mh_snapshot *snap = calloc(1, sizeof *snap);
    assert_non_null(snap);

    /* Before any result: not reported, readiness "starting". */
    assert_false(mh_registry_all_reported(reg));
    assert_false(mh_registry_refresh(reg));
    mh_registry_snapshot(reg, snap);
    assert_ptr_equal(snap->server, &cfg->server);
    assert_string_equal(snap->server->node, "reg-node");
    assert_int_equal(snap->n_checks, 1);
    assert_ptr_equal(snap->checks[0].check, check);
    assert_false(snap->checks[0].have_result);
    assert_false(snap->checks[0].m[0].have_result);
    struct mh_readiness r;
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &r);
    assert_int_equal(r.status, MH_FAIL);
    assert_string_equal(r.reason, "starting");
    uint64_t gen0 = mh_registry_generation(reg);

    /* One real run of the drain check: the file does not exist, so it passes. */
    struct mh_run run;
    memset(&run, 0, sizeof run);
    struct timespec deadline;
    mh_deadline_in(&deadline, check->timeout);
    check->type->run(cfg->checks[0], &deadline, &run);
    assert_int_equal(run.obs[0].status, MH_PASS);
    assert_string_equal(run.obs[0].output, "not draining");
    mh_registry_post(reg, 0, &run, 1.5);

    assert_true(mh_registry_all_reported(reg));
    assert_true(mh_registry_wait_all_reported(reg, 10));
    assert_true(mh_registry_generation(reg) > gen0);
    assert_int_equal(rec.n, 1);
    assert_ptr_equal(rec.t[0].check, check);
    assert_int_equal(rec.t[0].meas, 0);
    assert_true(rec.t[0].first);
    assert_int_equal(rec.t[0].to, MH_PASS);
    assert_string_equal(rec.t[0].output, "not draining");

    mh_registry_snapshot(reg, snap);
    assert_true(snap->checks[0].have_result);
    assert_int_equal(snap->checks[0].runs, 1);
    assert_true(snap->checks[0].duration_ms == 1.5);
    assert_true(snap->checks[0].age_ms >= 0 && snap->checks[0].age_ms < 1000);
    assert_true(snap->checks[0].last_real.tv_sec > 0);
    assert_true(snap->checks[0].m[0].have_result);
    assert_false(snap->checks[0].m[0].stale);
    assert_int_equal(snap->checks[0].m[0].effective, MH_PASS);
    assert_string_equal(snap->checks[0].m[0].last.output, "not draining");
    assert_int_equal(snap->generation, mh_registry_generation(reg));
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &r);
    assert_int_equal(r.status, MH_PASS);
    mh_readiness_compute(snap, MH_AFFECTS_REGION, &r);
    assert_int_equal(r.status, MH_PASS);

    /* A second identical result is no transition. */
    post_status(reg, 0, MH_PASS, "not draining");
    assert_int_equal(rec.n, 1);

    /* Staleness: once max_age (50 ms) has passed without a post, refresh marks it stale. */
    struct timespec start;
    mh_now(&start);
    assert_false(mh_registry_refresh(reg)); /* fresh */
    bool stale = false;
    while (!stale && mh_ms_since(&start) < 2000) {
        stale = mh_registry_refresh(reg);
        if (!stale)
            usleep(5000);
    }
    assert_true(stale);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.t[1].from, MH_PASS);
    assert_int_equal(rec.t[1].to, MH_FAIL);
    assert_false(rec.t[1].first);
    assert_non_null(strstr(rec.t[1].output, "no result for "));
    assert_non_null(strstr(rec.t[1].output, "(max_age 50 ms)"));
    uint64_t gen_stale = mh_registry_generation(reg);
    mh_registry_snapshot(reg, snap);
    assert_true(snap->checks[0].m[0].stale);
    assert_int_equal(snap->checks[0].m[0].effective, MH_FAIL);
    assert_true(snap->checks[0].age_ms > 50);
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &r);
    assert_int_equal(r.status, MH_FAIL);
    assert_non_null(strstr(r.reason, "drain:drain fail: no result for "));
    /* Already stale: refreshing again changes nothing. */
    assert_false(mh_registry_refresh(reg));
    assert_int_equal(mh_registry_generation(reg), gen_stale);
    assert_int_equal(rec.n, 2);

    /* Recovery takes rise = 2 passes. */
    post_status(reg, 0, MH_PASS, "not draining");
    mh_registry_snapshot(reg, snap);
    assert_false(snap->checks[0].m[0].stale);
    assert_int_equal(snap->checks[0].m[0].effective, MH_FAIL);
    assert_int_equal(rec.n, 2);
    post_status(reg, 0, MH_PASS, "not draining");
    mh_registry_snapshot(reg, snap);
    assert_int_equal(snap->checks[0].m[0].effective, MH_PASS);
    assert_int_equal(snap->checks[0].runs, 4);
    assert_int_equal(rec.n, 3);
    assert_int_equal(rec.t[2].from, MH_FAIL);
    assert_int_equal(rec.t[2].to, MH_PASS);

    /* Shutting down fails node readiness only. */
    uint64_t g = mh_registry_generation(reg);
    mh_registry_set_shutting_down(reg);
    assert_true(mh_registry_generation(reg) > g);
    mh_registry_snapshot(reg, snap);
    assert_true(snap->shutting_down);
    mh_readiness_compute(snap, MH_AFFECTS_NODE, &r);
    assert_int_equal(r.status, MH_FAIL);
    assert_string_equal(r.reason, "shutting down");
    mh_readiness_compute(snap, MH_AFFECTS_REGION, &r);
    assert_int_equal(r.status, MH_PASS);

    free(snap);
    mh_registry_unref(reg);
}

static void test_registry_wait_times_out(void **state)
{
    (void)state;
    struct mh_registry *reg = mh_registry_new(load(DRAIN_CHECK), NULL, NULL);
    assert_non_null(reg);
    struct timespec start;
    mh_now(&start);
    assert_false(mh_registry_wait_all_reported(reg, 30));
    double waited = mh_ms_since(&start);
    assert_true(waited >= 25 && waited < 1500);
    post_status(reg, 0, MH_FAIL, "draining: x exists"); /* no callback set: must not crash */
    assert_true(mh_registry_wait_all_reported(reg, 30));
    /* A reference keeps it alive past the first unref. */
    mh_registry_ref(reg);
    mh_registry_unref(reg);
    assert_true(mh_registry_all_reported(reg));
    mh_registry_unref(reg);
}

static void test_registry_adopt(void **state)
{
    (void)state;
    struct mh_registry *old = mh_registry_new(load(DRAIN_CHECK), NULL, NULL);
    assert_non_null(old);
    post_status(old, 0, MH_FAIL, "draining: file exists");
    post_status(old, 0, MH_FAIL, "draining: file exists");
    uint64_t old_gen = mh_registry_generation(old);

    /* The same check plus a new one, and a same-named check of another type. */
    struct mh_registry *reg = mh_registry_new(load(DRAIN_CHECK "[check.fresh]\n"
                                                               "type = drain\n"
                                                               "[check.other]\n"
                                                               "type = disk\n"
                                                               "path = /\n"),
                                              NULL, NULL);
    assert_non_null(reg);
    struct mh_registry *typed = mh_registry_new(load("[check.drain]\n"
                                                     "type = disk\n"
                                                     "path = /\n"),
                                                NULL, NULL);
    assert_non_null(typed);
    mh_registry_adopt(reg, old);
    mh_registry_adopt(typed, old);
    assert_int_equal(mh_registry_generation(reg), old_gen + 1);

    struct mh_snapshot *snap = calloc(1, sizeof *snap);
    assert_non_null(snap);
    mh_registry_snapshot(reg, snap);
    assert_int_equal(snap->n_checks, 3);
    assert_string_equal(snap->checks[0].check->name, "drain");
    assert_true(snap->checks[0].have_result);
    assert_int_equal(snap->checks[0].runs, 2);
    assert_true(snap->checks[0].m[0].have_result);
    assert_int_equal(snap->checks[0].m[0].effective, MH_FAIL);
    assert_int_equal(snap->checks[0].m[0].consecutive_fail, 2);
    assert_string_equal(snap->checks[0].m[0].last.output, "draining: file exists");
    assert_string_equal(snap->checks[1].check->name, "fresh");
    assert_false(snap->checks[1].have_result);
    assert_false(snap->checks[1].m[0].have_result);
    assert_false(snap->checks[2].have_result);
    assert_false(mh_registry_all_reported(reg));

    /* Same name, different type: nothing is carried over. */
    mh_registry_snapshot(typed, snap);
    assert_false(snap->checks[0].have_result);
    assert_false(snap->checks[0].m[0].have_result);

    /* The old registry can go away: the adopted state is a copy, hysteresis included (rise 2). */
    mh_registry_unref(old);
    post_status(reg, 0, MH_PASS, "not draining");
    mh_registry_snapshot(reg, snap);
    assert_int_equal(snap->checks[0].runs, 3);
    assert_int_equal(snap->checks[0].m[0].effective, MH_FAIL);
    post_status(reg, 0, MH_PASS, "not draining");
    mh_registry_snapshot(reg, snap);
    assert_int_equal(snap->checks[0].runs, 4);
    assert_int_equal(snap->checks[0].m[0].effective, MH_PASS);
    free(snap);
    mh_registry_unref(typed);
    mh_registry_unref(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_result_sets_status),
        cmocka_unit_test(test_fall),
        cmocka_unit_test(test_fall_reset_by_pass),
        cmocka_unit_test(test_rise),
        cmocka_unit_test(test_pass_warn_immediate),
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_readiness_all_pass),
        cmocka_unit_test(test_readiness_warn),
        cmocka_unit_test(test_readiness_node_fail),
        cmocka_unit_test(test_readiness_starting),
        cmocka_unit_test(test_readiness_shutting_down),
        cmocka_unit_test(test_readiness_affects_none_ignored),
        cmocka_unit_test(test_readiness_stale_reason),
        cmocka_unit_test_teardown(test_registry_first_run_overdue, remove_cfg),
        cmocka_unit_test_teardown(test_registry_round_trip, remove_cfg),
        cmocka_unit_test_teardown(test_registry_wait_times_out, remove_cfg),
        cmocka_unit_test_teardown(test_registry_adopt, remove_cfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
