/* test_route.c - cmocka tests for request classification (mh_route.h): paths, the standby
 * query, and X-Forwarded-For parsing, repeated lines included. */
#include "mh_route.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

static void test_paths(void **state)
{
    (void)state;
    enum mh_http_path label;
    assert_int_equal(mh_route("/healthcheck", NULL, &label), MH_VIEW_NODE);
    assert_int_equal(label, MH_PATH_NODE);
    assert_int_equal(mh_route("/healthcheck/node", NULL, &label), MH_VIEW_NODE);
    assert_int_equal(mh_route("/healthcheck/live", NULL, &label), MH_VIEW_LIVE);
    assert_int_equal(label, MH_PATH_LIVE);
    assert_int_equal(mh_route("/healthcheck/region", NULL, &label), MH_VIEW_REGION);
    assert_int_equal(label, MH_PATH_REGION);
    assert_int_equal(mh_route("/healthcheck/region/standby", NULL, &label), MH_VIEW_STANDBY);
    assert_int_equal(label, MH_PATH_STANDBY);
    assert_int_equal(mh_route("/metrics", NULL, &label), MH_ROUTE_METRICS);
    assert_int_equal(label, MH_PATH_METRICS);
    static const char *const unknown[] = {
        "",          "/",          "/healthcheck/", "/HEALTHCHECK", "/healthcheck/region/",
        "/metrics/", "healthcheck"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_int_equal(mh_route(unknown[i], NULL, &label), -1);
        assert_int_equal(label, MH_PATH_OTHER);
    }
}

static void test_standby_query(void **state)
{
    (void)state;
    enum mh_http_path label;
    assert_int_equal(mh_route("/healthcheck/region", "standby", &label), MH_VIEW_STANDBY);
    assert_int_equal(label, MH_PATH_STANDBY);
    assert_int_equal(mh_route("/healthcheck/region", "primary", &label), MH_VIEW_REGION);
    assert_int_equal(mh_route("/healthcheck/region", "", &label), MH_VIEW_REGION);
    /* The query only ever selects the standby view of the region endpoint. */
    assert_int_equal(mh_route("/healthcheck", "standby", &label), MH_VIEW_NODE);
}

static void test_forwarded_for(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    assert_true(mh_forwarded_for_last("203.0.113.9", &ss));
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, inet_addr("203.0.113.9"));
    /* The last hop is the one our proxy appended. */
    assert_true(mh_forwarded_for_last("10.1.1.1, 198.51.100.7", &ss));
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, inet_addr("198.51.100.7"));
    assert_true(mh_forwarded_for_last("  2001:db8::1 ", &ss));
    assert_int_equal(ss.ss_family, AF_INET6);
    static const char *const bad[] = {"",      ",",     "garbage",    "1.2.3.4 junk",
                                      "1.2.3", "[::1]", "1.2.3.4:80", "1.2.3.4,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(mh_forwarded_for_last(bad[i], &ss));
}

/* Repeated X-Forwarded-For lines are one list (RFC 9110 5.3). The HTTP layer parses only the
 * last line: check that it names the same client as the whole list joined with ", ". */
static void test_forwarded_for_lines(void **state)
{
    (void)state;
    static const char *const lines[][3] = {
        {"127.0.0.1", "203.0.113.7", NULL}, /* HAProxy appended its own line */
        {"203.0.113.7", "10.0.0.1, 127.0.0.1", NULL},
        {"127.0.0.1", "", NULL}, /* an empty last element: nobody */
        {"127.0.0.1", "  ", NULL},
        {"127.0.0.1, ", "2001:db8::1", NULL},
        {"203.0.113.7", "garbage", NULL},
        {"1.2.3.4", "5.6.7.8", "9.9.9.9"},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char joined[256] = "";
        const char *last = NULL;
        for (size_t j = 0; j < 3 && lines[i][j]; j++) {
            if (j > 0)
                strcat(joined, ", ");
            strcat(joined, lines[i][j]);
            last = lines[i][j];
        }
        struct sockaddr_storage a, b;
        bool ok = mh_forwarded_for_last(joined, &a);
        assert_int_equal(ok, mh_forwarded_for_last(last, &b));
        if (ok)
            assert_memory_equal(&a, &b, sizeof a);
    }
    struct sockaddr_storage ss;
    assert_true(mh_forwarded_for_last("127.0.0.1, 203.0.113.7", &ss));
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, inet_addr("203.0.113.7"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_standby_query),
        cmocka_unit_test(test_forwarded_for),
        cmocka_unit_test(test_forwarded_for_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
