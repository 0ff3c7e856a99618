/* Unit tests for mh_history.c: the ring keeps the newest MH_HISTORY_MAX transitions, oldest
 * first, and counts every one. */
#include "mh_history.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static struct mh_transition out[MH_HISTORY_MAX];

static void test_empty_and_null(void **state)
{
    (void)state;
    uint64_t total = 99;
    assert_int_equal(mh_history_copy(NULL, out, &total), 0);
    assert_int_equal(total, 0);
    mh_history_add(NULL, "c", "m", MH_PASS, MH_FAIL, false, "ignored"); /* no history: fine */
    struct mh_history *h = mh_history_new();
    assert_int_equal(mh_history_copy(h, out, &total), 0);
    mh_history_free(h);
}

static void test_order_and_overflow(void **state)
{
    (void)state;
    struct mh_history *h = mh_history_new();
    char name[16];
    for (int i = 0; i < MH_HISTORY_MAX + 37; i++) {
        snprintf(name, sizeof name, "c%d", i);
        mh_history_add(h, name, "m", MH_PASS, MH_FAIL, i == 0, "why");
    }
    uint64_t total;
    int n = mh_history_copy(h, out, &total);
    assert_int_equal(n, MH_HISTORY_MAX);
    assert_int_equal(total, MH_HISTORY_MAX + 37);
    assert_string_equal(out[0].check, "c37"); /* the oldest kept */
    snprintf(name, sizeof name, "c%d", MH_HISTORY_MAX + 36);
    assert_string_equal(out[n - 1].check, name); /* the newest */
    for (int i = 1; i < n; i++)
        assert_true(out[i].when.tv_sec >= out[i - 1].when.tv_sec);
    assert_false(out[0].first);
    mh_history_free(h);
}

static void test_long_reason_is_kept_whole(void **state)
{
    (void)state;
    struct mh_history *h = mh_history_new();
    char reason[MH_OUTPUT_MAX];
    memset(reason, 'x', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    mh_history_add(h, "c", "m", MH_FAIL, MH_PASS, false, reason);
    uint64_t total;
    assert_int_equal(mh_history_copy(h, out, &total), 1);
    assert_string_equal(out[0].reason, reason);
    assert_int_equal(out[0].from, MH_FAIL);
    assert_int_equal(out[0].to, MH_PASS);
    mh_history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_null),
        cmocka_unit_test(test_order_and_overflow),
        cmocka_unit_test(test_long_reason_is_kept_whole),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
