/* test_render.c - unit tests for mh_render.c: health+json bodies rendered from hand-built
 * snapshots, checked both as raw text (the leading bytes a Route 53 string match sees, key order)
 * and parsed back with jansson (structure, public versus detailed content). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fake_check.h"
#include "mh_render.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a hand-built snapshot ----
 *   disk:free          node           (type disk, "system")
 *   db:connectivity    node, region   (a fake "datastore" type, role writer, one fact)
 *   db:lag             region
 *   cron:queue         none
 */

static const struct mh_check_type fake_db_type = {
    .name = "fakedb",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE | MH_AFFECTS_REGION,
};

static struct mh_server_conf server;
static struct mh_check chk_disk, chk_db, chk_cron;

static void make_check(struct mh_check *c, const char *name, const struct mh_check_type *type,
                       int n, const char *const *meas, const unsigned *affects)
{
    fake_check(c, name, type, &server, n, meas, affects);
}

static void set_meas(struct mh_snapshot *snap, int check, int m, enum mh_status s,
                     const char *output)
{
    struct mh_check_view *v = &snap->checks[check];
    struct mh_meas_state *st = &v->m[m];
    memset(st, 0, sizeof *st);
    st->have_result = true;
    st->effective = s;
    st->last.status = s;
    snprintf(st->last.output, sizeof st->last.output, "%s", output);
    v->have_result = true;
}

static struct mh_snapshot *new_snapshot(void)
{
    static const char *const disk_m[] = {"free"};
    static const unsigned disk_a[] = {MH_AFFECTS_NODE};
    static const char *const db_m[] = {"connectivity", "lag"};
    static const unsigned db_a[] = {MH_AFFECTS_NODE | MH_AFFECTS_REGION, MH_AFFECTS_REGION};
    static const char *const cron_m[] = {"queue"};
    static const unsigned cron_a[] = {MH_AFFECTS_NONE};

    memset(&server, 0, sizeof server);
    snprintf(server.node, sizeof server.node, "web-1");
    snprintf(server.region, sizeof server.region, "eu-west-1");
    make_check(&chk_disk, "disk", mh_check_type_find("disk"), 1, disk_m, disk_a);
    make_check(&chk_db, "db", &fake_db_type, 2, db_m, db_a);
    make_check(&chk_cron, "cron", mh_check_type_find("drain"), 1, cron_m, cron_a);
    assert_non_null(chk_disk.type);
    assert_non_null(chk_cron.type);

    struct mh_snapshot *snap = calloc(1, sizeof *snap);
    assert_non_null(snap);
    snap->server = &server;
    snap->generation = 7;
    snap->n_checks = 3;
    struct mh_check *checks[] = {&chk_disk, &chk_db, &chk_cron};
    for (int i = 0; i < 3; i++) {
        struct mh_check_view *v = &snap->checks[i];
        v->check = checks[i];
        v->last_real.tv_sec = 1700000000; /* 2023-11-14T22:13:20Z */
        v->last_real.tv_nsec = 123456789;
        v->age_ms = 1500;
        v->duration_ms = 12.3456789;
        v->runs = 10;
    }
    set_meas(snap, 0, 0, MH_PASS, "/: 50.0% free (10.0 GiB), inodes 90.0% free");
    snap->checks[0].m[0].last.has_value = true;
    snap->checks[0].m[0].last.value = 50.04567;
    snap->checks[0].m[0].last.unit = "%";
    set_meas(snap, 1, 0, MH_PASS, "");
    set_meas(snap, 1, 1, MH_PASS, "lag 0 s");
    snap->checks[1].m[1].last.has_value = true;
    snap->checks[1].m[1].last.value = 0;
    snap->checks[1].m[1].last.unit = "s";
    snap->checks[1].role = MH_ROLE_WRITER;
    snap->checks[1].n_facts = 1;
    snprintf(snap->checks[1].facts[0].key, sizeof snap->checks[1].facts[0].key, "version");
    snprintf(snap->checks[1].facts[0].value, sizeof snap->checks[1].facts[0].value, "10.11.6");
    set_meas(snap, 2, 0, MH_PASS, "");
    return snap;
}

/* ---- helpers ---- */

struct rendered {
    char *body;
    json_t *root;
    enum mh_status status;
};

static struct rendered render(const struct mh_snapshot *snap, enum mh_view view, bool detailed)
{
    struct rendered r;
    r.status = (enum mh_status) - 1;
    r.body = mh_render(snap, view, detailed, &r.status);
    assert_non_null(r.body);
    json_error_t err;
    r.root = json_loads(r.body, 0, &err);
    if (!r.root)
        print_error("invalid JSON (%s): %s\n", err.text, r.body);
    assert_non_null(r.root);
    assert_true(json_is_object(r.root));
    return r;
}

static void done(struct rendered *r)
{
    json_decref(r->root);
    free(r->body);
}

static void starts_with(const char *body, const char *prefix)
{
    if (strncmp(body, prefix, strlen(prefix)) != 0) {
        print_error("body does not start with %s:\n%s\n", prefix, body);
        fail();
    }
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        print_error("\"%s\" is not a string\n", key);
        fail();
    }
    return json_string_value(v);
}

/* The single entry of checks[key] (health+json wraps each in an array). */
static json_t *entry(json_t *root, const char *key)
{
    json_t *checks = json_object_get(root, "checks");
    assert_true(json_is_object(checks));
    json_t *arr = json_object_get(checks, key);
    if (!json_is_array(arr)) {
        print_error("checks has no \"%s\"\n", key);
        fail();
    }
    assert_int_equal(json_array_size(arr), 1);
    json_t *e = json_array_get(arr, 0);
    assert_true(json_is_object(e));
    return e;
}

static double num(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) {
        print_error("\"%s\" is not a number\n", key);
        fail();
    }
    return json_number_value(v);
}

/* Asserts that checks holds exactly the NULL-terminated keys, in that order in the body. */
static void checks_are(struct rendered *r, ...)
{
    json_t *checks = json_object_get(r->root, "checks");
    assert_true(json_is_object(checks));
    va_list ap;
    va_start(ap, r);
    size_t n = 0;
    const char *prev = r->body;
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
        n++;
        if (!json_object_get(checks, k)) {
            print_error("checks lacks \"%s\": %s\n", k, r->body);
            fail();
        }
        char quoted[160];
        snprintf(quoted, sizeof quoted, "\"%s\":", k);
        const char *at = strstr(r->body, quoted);
        assert_non_null(at);
        assert_true(at > prev);
        prev = at;
    }
    va_end(ap);
    if (json_object_size(checks) != n) {
        print_error("checks has %zu keys, expected %zu: %s\n", json_object_size(checks), n,
                    r->body);
        fail();
    }
}

/* ---- tests ---- */

static void test_http_code(void **state)
{
    (void)state;
    assert_int_equal(mh_render_http_code(MH_PASS), 200);
    assert_int_equal(mh_render_http_code(MH_WARN), 200);
    assert_int_equal(mh_render_http_code(MH_FAIL), 503);
}

static void test_public_node_pass(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    struct rendered r = render(snap, MH_VIEW_NODE, false);
    starts_with(r.body, "{\"status\":\"pass\",\"node\":\"web-1\",\"region\":\"eu-west-1\",");
    assert_int_equal(r.status, MH_PASS);
    /* Statuses only: nothing an outsider could learn from. */
    assert_null(strstr(r.body, "output"));
    assert_null(strstr(r.body, "observedValue"));
    assert_null(strstr(r.body, "observedUnit"));
    assert_null(strstr(r.body, "details"));
    assert_null(strstr(r.body, "affects"));
    assert_null(strstr(r.body, "serviceId"));
    assert_null(strstr(r.body, "writer"));
    assert_null(strstr(r.body, "GiB"));
    assert_int_equal(json_object_size(r.root), 4); /* status, node, region, checks */
    /* Only what affects the node. */
    checks_are(&r, "disk:free", "db:connectivity", NULL);
    json_t *e = entry(r.root, "disk:free");
    assert_int_equal(json_object_size(e), 1);
    assert_string_equal(str(e, "status"), "pass");
    done(&r);
    free(snap);
}

static void test_public_region(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 0, 0, MH_FAIL, "/: 1.0% free"); /* node only: no effect on the region */
    set_meas(snap, 1, 1, MH_WARN, "lag 12 s");
    struct rendered r = render(snap, MH_VIEW_REGION, false);
    starts_with(
        r.body,
        "{\"status\":\"warn\",\"region\":\"eu-west-1\",\"role\":\"unknown\",\"node\":\"web-1\",");
    assert_int_equal(r.status, MH_WARN);
    assert_int_equal(mh_render_http_code(r.status), 200);
    checks_are(&r, "db:connectivity", "db:lag", NULL);
    assert_string_equal(str(entry(r.root, "db:lag"), "status"), "warn");
    assert_string_equal(str(entry(r.root, "db:connectivity"), "status"), "pass");
    assert_null(strstr(r.body, "output"));
    assert_null(strstr(r.body, "lag 12 s"));
    assert_null(strstr(r.body, "observedValue"));
    done(&r);

    /* The same snapshot fails the node. */
    r = render(snap, MH_VIEW_NODE, false);
    starts_with(r.body, "{\"status\":\"fail\",\"node\":\"web-1\",\"region\":\"eu-west-1\",");
    assert_int_equal(r.status, MH_FAIL);
    assert_int_equal(mh_render_http_code(r.status), 503);
    assert_string_equal(str(entry(r.root, "disk:free"), "status"), "fail");
    assert_null(strstr(r.body, "1.0% free"));
    assert_null(strstr(r.body, "output"));
    done(&r);
    free(snap);
}

static void test_public_starting_and_shutdown(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    memset(&snap->checks[1].m[1], 0, sizeof snap->checks[1].m[1]); /* db:lag: no result yet */
    struct rendered r = render(snap, MH_VIEW_REGION, false);
    starts_with(r.body, "{\"status\":\"fail\",");
    assert_int_equal(r.status, MH_FAIL);
    assert_string_equal(str(entry(r.root, "db:lag"), "status"), "fail");
    assert_null(strstr(r.body, "starting"));
    done(&r);

    free(snap);
    snap = new_snapshot();
    snap->shutting_down = true;
    r = render(snap, MH_VIEW_NODE, false);
    starts_with(r.body, "{\"status\":\"fail\",");
    assert_int_equal(r.status, MH_FAIL);
    done(&r);
    r = render(snap, MH_VIEW_REGION, false);
    starts_with(r.body, "{\"status\":\"pass\",");
    assert_int_equal(r.status, MH_PASS);
    done(&r);
    free(snap);
}

static void test_detailed_node(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 2, 0, MH_FAIL, "queue stuck"); /* affects nothing */
    struct rendered r = render(snap, MH_VIEW_NODE, true);
    starts_with(r.body, "{\"status\":\"pass\",\"node\":\"web-1\",\"region\":\"eu-west-1\",");
    assert_int_equal(r.status, MH_PASS);
    assert_string_equal(str(r.root, "serviceId"), "magento-healthd");
    assert_string_equal(str(r.root, "version"), MH_VERSION);
    assert_null(json_object_get(r.root, "output")); /* nothing to explain on pass */
    /* The detailed view lists every measurement, whatever it affects. */
    checks_are(&r, "disk:free", "db:connectivity", "db:lag", "cron:queue", NULL);

    json_t *e = entry(r.root, "disk:free");
    assert_string_equal(str(e, "componentId"), "disk");
    assert_string_equal(str(e, "componentType"), "system");
    assert_string_equal(str(e, "status"), "pass");
    assert_true(fabs(num(e, "observedValue") - 50.046) < 1e-9); /* rounded to 3 places */
    assert_string_equal(str(e, "observedUnit"), "%");
    assert_string_equal(str(e, "output"), "/: 50.0% free (10.0 GiB), inodes 90.0% free");
    assert_string_equal(str(e, "time"), "2023-11-14T22:13:20.123Z");
    assert_true(fabs(num(e, "duration") - 0.012346) < 1e-9);
    assert_true(fabs(num(e, "age") - 1.5) < 1e-9);
    json_t *aff = json_object_get(e, "affects");
    assert_true(json_is_array(aff));
    assert_int_equal(json_array_size(aff), 1);
    assert_string_equal(json_string_value(json_array_get(aff, 0)), "node");
    assert_null(json_object_get(e, "details")); /* no role, no facts */

    e = entry(r.root, "db:connectivity");
    assert_string_equal(str(e, "componentId"), "db");
    assert_string_equal(str(e, "componentType"), "datastore");
    assert_null(json_object_get(e, "observedValue")); /* no value reported */
    assert_null(json_object_get(e, "observedUnit"));
    assert_null(json_object_get(e, "output")); /* empty output on pass is left out */
    aff = json_object_get(e, "affects");
    assert_int_equal(json_array_size(aff), 2);
    assert_string_equal(json_string_value(json_array_get(aff, 0)), "node");
    assert_string_equal(json_string_value(json_array_get(aff, 1)), "region");
    json_t *details = json_object_get(e, "details");
    assert_true(json_is_object(details));
    assert_string_equal(str(details, "role"), "writer");
    assert_string_equal(str(details, "version"), "10.11.6");
    assert_int_equal(json_object_size(details), 2);

    e = entry(r.root, "db:lag");
    assert_true(num(e, "observedValue") == 0);
    assert_string_equal(str(e, "observedUnit"), "s");
    assert_int_equal(json_array_size(json_object_get(e, "affects")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(e, "affects"), 0)),
                        "region");

    e = entry(r.root, "cron:queue");
    assert_string_equal(str(e, "status"), "fail");
    assert_string_equal(str(e, "output"), "queue stuck");
    assert_int_equal(json_array_size(json_object_get(e, "affects")), 0);
    done(&r);
    free(snap);
}

static void test_detailed_reasons(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 1, 0, MH_FAIL, "connection refused");
    struct rendered r = render(snap, MH_VIEW_REGION, true);
    starts_with(
        r.body,
        "{\"status\":\"fail\",\"region\":\"eu-west-1\",\"role\":\"unknown\",\"node\":\"web-1\",");
    assert_string_equal(str(r.root, "output"), "db:connectivity fail: connection refused");
    assert_string_equal(str(entry(r.root, "db:connectivity"), "output"), "connection refused");
    done(&r);

    /* No result yet, and stale. */
    memset(&snap->checks[1].m[1], 0, sizeof snap->checks[1].m[1]);
    set_meas(snap, 0, 0, MH_PASS, "was fine");
    assert_true(mh_meas_mark_stale(&snap->checks[0].m[0]));
    snap->checks[0].age_ms = 9000;
    r = render(snap, MH_VIEW_NODE, true);
    starts_with(r.body, "{\"status\":\"fail\",");
    json_t *e = entry(r.root, "db:lag");
    assert_string_equal(str(e, "status"), "fail");
    assert_string_equal(str(e, "output"), "starting: no result yet");
    assert_null(json_object_get(e, "observedValue"));
    e = entry(r.root, "disk:free");
    assert_string_equal(str(e, "status"), "fail");
    assert_string_equal(str(e, "output"),
                        "stale: last result 9.0 s ago (max_age 6.0 s); last: was fine");
    assert_string_equal(str(r.root, "output"), "disk:free fail: stale");
    done(&r);
    free(snap);
}

static void test_live(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    set_meas(snap, 0, 0, MH_FAIL, "disk full");
    set_meas(snap, 1, 0, MH_FAIL, "refused");
    snap->shutting_down = true;
    for (int detailed = 0; detailed < 2; detailed++) {
        struct rendered r = render(snap, MH_VIEW_LIVE, detailed);
        starts_with(r.body, "{\"status\":\"pass\",\"node\":\"web-1\",\"region\":\"eu-west-1\"");
        assert_int_equal(r.status, MH_PASS);
        assert_int_equal(mh_render_http_code(r.status), 200);
        assert_null(json_object_get(r.root, "checks"));
        assert_null(strstr(r.body, "checks"));
        assert_null(strstr(r.body, "disk"));
        assert_int_equal(json_object_size(r.root), detailed ? 5 : 3);
        done(&r);
    }
    free(snap);
}

static void test_report(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    struct rendered r = render(snap, MH_VIEW_REPORT, true);
    starts_with(r.body, "{\"status\":\"pass\",\"node\":\"web-1\",\"region\":\"eu-west-1\",");
    assert_string_equal(str(json_object_get(r.root, "node_readiness"), "status"), "pass");
    assert_string_equal(str(json_object_get(r.root, "region_readiness"), "status"), "pass");
    checks_are(&r, "disk:free", "db:connectivity", "db:lag", "cron:queue", NULL);
    done(&r);

    /* The report's status is the worst measurement, even one that affects nothing. */
    set_meas(snap, 2, 0, MH_FAIL, "queue stuck");
    set_meas(snap, 1, 1, MH_WARN, "lag 12 s");
    r = render(snap, MH_VIEW_REPORT, true);
    starts_with(r.body, "{\"status\":\"fail\",");
    assert_int_equal(r.status, MH_FAIL);
    json_t *node = json_object_get(r.root, "node_readiness");
    assert_string_equal(str(node, "status"), "pass");
    assert_null(json_object_get(node, "output"));
    json_t *region = json_object_get(r.root, "region_readiness");
    assert_string_equal(str(region, "status"), "warn");
    assert_string_equal(str(region, "output"), "db:lag warn: lag 12 s");
    done(&r);
    free(snap);
}

static void test_escaping(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    snprintf(server.node, sizeof server.node, "we\"b\\1");
    set_meas(snap, 0, 0, MH_FAIL, "quote \" and backslash \\");
    struct rendered r = render(snap, MH_VIEW_NODE, true);
    starts_with(r.body, "{\"status\":\"fail\",\"node\":\"we\\\"b\\\\1\",");
    assert_string_equal(str(r.root, "node"), "we\"b\\1");
    assert_string_equal(str(entry(r.root, "disk:free"), "output"), "quote \" and backslash \\");
    done(&r);
    free(snap);
}

/* Text from outside (a server's reply, a path, a cut made by byte count) may not be UTF-8, which
 * jansson refuses: the key must still be there, with the bad bytes shown as U+FFFD. */
static void test_invalid_utf8_keeps_every_key(void **state)
{
    (void)state;
    struct mh_snapshot *snap = new_snapshot();
    snprintf(server.node, sizeof server.node, "n\xe9ud");
    snprintf(server.region, sizeof server.region, "r\xff");
    set_meas(snap, 0, 0, MH_FAIL, "/srv/caf\xe9: 1.0% free");
    /* Cut by byte count in the middle of U+20AC. */
    set_meas(snap, 2, 0, MH_WARN, "queue \xe2\x82");
    struct mh_check_view *db = &snap->checks[1];
    snprintf(db->facts[0].value, sizeof db->facts[0].value, "10.11\xc0\xaf");
    snprintf(db->facts[1].key, sizeof db->facts[1].key, "k\xed\xa0\x80");
    snprintf(db->facts[1].value, sizeof db->facts[1].value, "v");
    db->n_facts = 2;
    struct rendered r = render(snap, MH_VIEW_REPORT, true);
    assert_string_equal(str(r.root, "node"), "n\xef\xbf\xbdud");
    assert_string_equal(str(r.root, "region"), "r\xef\xbf\xbd");
    assert_string_equal(str(entry(r.root, "disk:free"), "output"),
                        "/srv/caf\xef\xbf\xbd: 1.0% free");
    assert_string_equal(str(entry(r.root, "cron:queue"), "output"),
                        "queue \xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(str(json_object_get(r.root, "node_readiness"), "output"),
                        "disk:free fail: /srv/caf\xef\xbf\xbd: 1.0% free");
    json_t *details = json_object_get(entry(r.root, "db:connectivity"), "details");
    assert_string_equal(str(details, "version"), "10.11\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(str(details, "k\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), "v");
    done(&r);

    r = render(snap, MH_VIEW_NODE, true);
    assert_string_equal(str(r.root, "output"), "disk:free fail: /srv/caf\xef\xbf\xbd: 1.0% free");
    assert_string_equal(str(r.root, "node"), "n\xef\xbf\xbdud");
    done(&r);

    /* Stale: the last output is quoted inside a longer text. */
    mh_meas_mark_stale(&snap->checks[0].m[0]);
    assert_true(snap->checks[0].m[0].stale);
    r = render(snap, MH_VIEW_NODE, true);
    assert_non_null(
        strstr(str(entry(r.root, "disk:free"), "output"), "last: /srv/caf\xef\xbf\xbd: 1.0% free"));
    done(&r);
    free(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_code),     cmocka_unit_test(test_public_node_pass),
        cmocka_unit_test(test_public_region), cmocka_unit_test(test_public_starting_and_shutdown),
        cmocka_unit_test(test_detailed_node), cmocka_unit_test(test_detailed_reasons),
        cmocka_unit_test(test_live),          cmocka_unit_test(test_report),
        cmocka_unit_test(test_escaping),      cmocka_unit_test(test_invalid_utf8_keeps_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
