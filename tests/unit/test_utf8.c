/* test_utf8.c - unit tests for mh_utf8.c (cleaning text for JSON) and for how mh_observe() and
 * mh_run_fact() use it: cuts fall between characters, and every byte that does not start a
 * well-formed character (Latin-1 text, overlong forms, surrogates, stray continuation bytes,
 * 0xFE/0xFF, code points past U+10FFFF) becomes U+FFFD. Whatever goes in, jansson accepts what
 * comes out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mh_check.h"
#include "mh_utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define FFFD "\xef\xbf\xbd"

/* Cleans `src` into a buffer of `size` bytes and compares with `want`. */
static void cleans_to(const char *src, size_t srclen, size_t size, const char *want)
{
    char out[256];
    assert_true(size <= sizeof out);
    memset(out, 'X', sizeof out);
    size_t n = mh_utf8_clean(out, size, src, srclen);
    assert_int_equal(n, strlen(out));
    if (strcmp(out, want) != 0) {
        print_error("cleaned to \"%s\", expected \"%s\"\n", out, want);
        fail();
    }
    assert_true(mh_utf8_valid(out, n));
}

#define CLEANS(src, want) cleans_to(src, sizeof(src) - 1, 256, want)

static void test_valid_text_is_kept(void **state)
{
    (void)state;
    CLEANS("", "");
    CLEANS("plain ascii", "plain ascii");
    CLEANS("caf\xc3\xa9", "caf\xc3\xa9");                             /* U+00E9 */
    CLEANS("\xe2\x82\xac 5", "\xe2\x82\xac 5");                       /* U+20AC */
    CLEANS("\xf0\x9f\x92\xbe disk", "\xf0\x9f\x92\xbe disk");         /* U+1F4BE */
    CLEANS("\xed\x9f\xbf|\xee\x80\x80", "\xed\x9f\xbf|\xee\x80\x80"); /* around surrogates */
    CLEANS("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");                   /* U+10FFFF, the last */
    assert_true(mh_utf8_valid("caf\xc3\xa9", 5));
    assert_false(mh_utf8_valid("caf\xe9", 4));
}

static void test_invalid_bytes_become_fffd(void **state)
{
    (void)state;
    CLEANS("caf\xe9 au lait", "caf" FFFD " au lait"); /* Latin-1 */
    CLEANS("caf\xe9", "caf" FFFD);                    /* a lead byte with nothing after it */
    CLEANS("ab\xc3", "ab" FFFD);                      /* cut before this function saw it */
    CLEANS("\x80", FFFD);                             /* lone continuation bytes */
    CLEANS("a\xbf\xbf b", "a" FFFD FFFD " b");
    CLEANS("\xff\xfe", FFFD FFFD);
    CLEANS("\xf5\x80\x80\x80", FFFD FFFD FFFD FFFD); /* lead bytes past U+10FFFF */
    CLEANS("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* U+110000 */
    /* Overlong forms of '/' and of U+20AC, and the C0/C1 leads. */
    CLEANS("\xc0\xaf", FFFD FFFD);
    CLEANS("\xc1\xbf", FFFD FFFD);
    CLEANS("\xe0\x80\xaf", FFFD FFFD FFFD);
    CLEANS("\xf0\x82\x82\xac", FFFD FFFD FFFD FFFD);
    /* UTF-16 surrogates encoded as UTF-8 (CESU-8). */
    CLEANS("\xed\xa0\x80", FFFD FFFD FFFD);
    CLEANS("\xed\xbf\xbf", FFFD FFFD FFFD);
    /* A broken sequence does not swallow the valid character after it. */
    CLEANS("\xe2\x82\xc3\xa9", FFFD FFFD "\xc3\xa9");
    CLEANS("\xe2\x82"
           "a",
           FFFD FFFD "a");
}

static void test_cut_falls_between_characters(void **state)
{
    (void)state;
    const char *euro = "ab\xe2\x82\xac"; /* "ab€": 5 bytes */
    cleans_to(euro, 5, 6, euro);
    cleans_to(euro, 5, 5, "ab"); /* room for 4 bytes: never "ab\xe2\x82" */
    cleans_to(euro, 5, 4, "ab");
    cleans_to(euro, 5, 3, "ab");
    cleans_to(euro, 5, 2, "a");
    cleans_to(euro, 5, 1, "");
    cleans_to("\xf0\x9f\x92\xbe", 4, 4, "");
    /* A replacement that does not fit is left out whole, too. */
    cleans_to("ab\xff", 3, 5, "ab");
    cleans_to("ab\xff", 3, 6, "ab" FFFD);
    /* srclen bounds the input: a character cut by it is invalid, not read past. */
    cleans_to("ab\xe2\x82\xac", 3, 16, "ab" FFFD);
    /* Cleaning stops at a NUL byte. */
    cleans_to("ab\0cd", 5, 16, "ab");
}

/* Any bytes at all: the result is valid for jansson and never longer than the buffer. */
static void test_random_bytes_always_valid(void **state)
{
    (void)state;
    uint32_t x = 2463534242u;
    for (int round = 0; round < 20000; round++) {
        unsigned char src[64];
        size_t len = 1 + round % sizeof src;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            /* Mostly high bytes, where the interesting cases are; no NUL. */
            src[i] = (unsigned char)(x % 8 == 0 ? 'a' + x % 26 : 0x80 | (x >> 8));
        }
        char out[48];
        size_t size = 1 + (x >> 16) % sizeof out;
        size_t n = mh_utf8_clean(out, size, (const char *)src, len);
        assert_true(n < size);
        assert_int_equal(n, strlen(out));
        json_t *j = json_string(out);
        if (!j) {
            print_error("jansson refused the cleaned text in round %d\n", round);
            fail();
        }
        json_decref(j);
    }
}

/* mh_observe() cuts at MH_OUTPUT_MAX - 1 bytes: on a character boundary, never inside one. */
static void test_observe_output_is_valid_utf8(void **state)
{
    (void)state;
    struct mh_run run;
    for (int shift = 0; shift < 3; shift++) {
        memset(&run, 0, sizeof run);
        char text[1024] = "";
        memset(text, 'x', (size_t)shift);
        for (int i = 0; i < 200; i++)
            strcat(text, "\xe2\x82\xac"); /* 600 bytes of U+20AC */
        mh_observe(&run, 0, MH_FAIL, "%s", text);
        const char *out = run.obs[0].output;
        size_t n = strlen(out);
        assert_true(n < MH_OUTPUT_MAX);
        assert_true(n >= MH_OUTPUT_MAX - 3); /* only the character that did not fit is gone */
        assert_true(mh_utf8_valid(out, n));
        assert_memory_equal(out, text, n);
    }
    /* Latin-1 from a server, and control characters: one printable, valid line. */
    memset(&run, 0, sizeof run);
    mh_observe(&run, 1, MH_WARN, "ERR caf\xe9\r\nnext\tline");
    assert_string_equal(run.obs[1].output, "ERR caf" FFFD "  next line");
    assert_int_equal(run.obs[1].status, MH_WARN);
}

static void test_fact_is_valid_utf8(void **state)
{
    (void)state;
    struct mh_run run;
    memset(&run, 0, sizeof run);
    char value[300] = "";
    for (int i = 0; i < 50; i++)
        strcat(value, "\xc3\xa9"); /* 100 bytes of U+00E9: cut inside the 96-byte buffer */
    mh_run_fact(&run, "version", "%s", value);
    mh_run_fact(&run, "k\xe9y", "Maria\xff\n");
    assert_int_equal(run.n_facts, 2);
    size_t n = strlen(run.facts[0].value);
    assert_true(n < MH_FACT_VALUE_MAX && n >= MH_FACT_VALUE_MAX - 2);
    assert_true(mh_utf8_valid(run.facts[0].value, n));
    assert_string_equal(run.facts[1].key, "k" FFFD "y");
    assert_string_equal(run.facts[1].value, "Maria" FFFD " ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_is_kept),
        cmocka_unit_test(test_invalid_bytes_become_fffd),
        cmocka_unit_test(test_cut_falls_between_characters),
        cmocka_unit_test(test_random_bytes_always_valid),
        cmocka_unit_test(test_observe_output_is_valid_utf8),
        cmocka_unit_test(test_fact_is_valid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
