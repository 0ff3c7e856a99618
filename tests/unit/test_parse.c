/* test_parse.c - unit tests for the pure value parsers in mh_parse.c: durations, sizes, booleans,
 * integers, affects lists, CIDRs and address matching, listen addresses, endpoints and lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mh_parse.h"

#include <arpa/inet.h>
#include <string.h>

/* ---- helpers ---- */

static mh_ms dur_ok(const char *s)
{
    mh_ms v = -12345;
    const char *why = NULL;
    int rc = mh_parse_duration(s, &v, &why);
    if (rc != 0)
        print_error("duration \"%s\" rejected: %s\n", s, why ? why : "(null)");
    assert_int_equal(rc, 0);
    return v;
}

/* Asserts rejection, that *out is untouched, and that `why` was set (and contains `word` when
 * given). */
static void dur_bad(const char *s, const char *word)
{
    mh_ms v = -777;
    const char *why = NULL;
    assert_int_equal(mh_parse_duration(s, &v, &why), -1);
    assert_int_equal(v, -777);
    assert_non_null(why);
    if (word && !strstr(why, word)) {
        print_error("duration \"%s\": why \"%s\" lacks \"%s\"\n", s, why, word);
        fail();
    }
}

static struct mh_size size_ok(const char *s)
{
    struct mh_size sz = {.percent = true, .value = -1};
    const char *why = NULL;
    int rc = mh_parse_size(s, &sz, &why);
    if (rc != 0)
        print_error("size \"%s\" rejected: %s\n", s, why ? why : "(null)");
    assert_int_equal(rc, 0);
    return sz;
}

static void size_bad(const char *s)
{
    struct mh_size sz = {.percent = true, .value = -1};
    const char *why = NULL;
    assert_int_equal(mh_parse_size(s, &sz, &why), -1);
    assert_non_null(why);
    assert_true(sz.percent);
    assert_true(sz.value == -1);
}

static struct sockaddr_in sin4(const char *addr)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, addr, &in.sin_addr), 1);
    return in;
}

static struct sockaddr_in6 sin6(const char *addr)
{
    struct sockaddr_in6 in;
    memset(&in, 0, sizeof in);
    in.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, addr, &in.sin6_addr), 1);
    return in;
}

static struct mh_cidr cidr_ok(const char *s)
{
    struct mh_cidr c;
    const char *why = NULL;
    int rc = mh_parse_cidr(s, &c, &why);
    if (rc != 0)
        print_error("cidr \"%s\" rejected: %s\n", s, why ? why : "(null)");
    assert_int_equal(rc, 0);
    return c;
}

static bool contains4(const char *net, const char *addr)
{
    struct mh_cidr c = cidr_ok(net);
    struct sockaddr_in in = sin4(addr);
    return mh_cidr_contains(&c, (const struct sockaddr *)&in);
}

static bool contains6(const char *net, const char *addr)
{
    struct mh_cidr c = cidr_ok(net);
    struct sockaddr_in6 in = sin6(addr);
    return mh_cidr_contains(&c, (const struct sockaddr *)&in);
}

/* ---- durations ---- */

static void test_duration_units(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("250ms"), 250);
    assert_int_equal(dur_ok("0ms"), 0);
    assert_int_equal(dur_ok("2s"), 2000);
    assert_int_equal(dur_ok("1m"), 60000);
    assert_int_equal(dur_ok("90m"), 5400000);
}

static void test_duration_fractions(void **state)
{
    (void)state;
    assert_int_equal(dur_ok("1.5s"), 1500);
    assert_int_equal(dur_ok("0.25s"), 250);
    assert_int_equal(dur_ok("0.5m"), 30000);
    assert_int_equal(dur_ok(".5s"), 500);
    assert_int_equal(dur_ok("2.5ms"), 3); /* rounded to whole milliseconds */
    assert_int_equal(dur_ok("0.001s"), 1);
}

static void test_duration_limits(void **state)
{
    (void)state;
    /* Exactly 24h is accepted, anything beyond is not. */
    assert_int_equal(dur_ok("1440m"), 86400000);
    assert_int_equal(dur_ok("86400s"), 86400000);
    assert_int_equal(dur_ok("86400000ms"), 86400000);
    dur_bad("1441m", "24h");
    dur_bad("86400.5s", "24h");
    dur_bad("86400001ms", "24h");
    /* 16 digits parse as a number (and are then too long); 17+ are rejected outright. */
    dur_bad("9999999999999999ms", "24h");
    dur_bad("99999999999999999ms", NULL);
    dur_bad("99999999999999999999999999999999999999999999999999999999999999999s", NULL);
    /* Long fractions are fine: extra digits are ignored, not accumulated into overflow. */
    assert_int_equal(dur_ok("1.000000000000000000000000000000001s"), 1000);
}

static void test_duration_rejects(void **state)
{
    (void)state;
    dur_bad("5", "unit");   /* the unit is always written */
    dur_bad("1.5", "unit"); /* also with a fraction */
    dur_bad("5h", "unknown duration unit");
    dur_bad("5 s", "unknown duration unit");
    dur_bad("5sec", "unknown duration unit");
    dur_bad("5S", "unknown duration unit");
    dur_bad("-1s", NULL);
    dur_bad("+1s", NULL);
    dur_bad("", NULL);
    dur_bad(" 1s", NULL);
    dur_bad("s", NULL);
    dur_bad("ms", NULL);
    dur_bad(".s", NULL);
    dur_bad("abc", NULL);
    dur_bad("0x10ms", NULL);
    dur_bad("1e3ms", NULL);
    dur_bad("inf s", NULL);
    dur_bad("nan", NULL);
    /* NULL input and NULL why are both tolerated. */
    mh_ms v = 7;
    assert_int_equal(mh_parse_duration(NULL, &v, NULL), -1);
    assert_int_equal(mh_parse_duration("bad", &v, NULL), -1);
    assert_int_equal(v, 7);
}

/* ---- sizes ---- */

static void test_size_units(void **state)
{
    (void)state;
    struct mh_size s = size_ok("512");
    assert_false(s.percent);
    assert_true(s.value == 512.0);
    s = size_ok("64K");
    assert_false(s.percent);
    assert_true(s.value == 64.0 * 1024);
    s = size_ok("64k");
    assert_true(s.value == 64.0 * 1024);
    s = size_ok("512M");
    assert_true(s.value == 512.0 * 1024 * 1024);
    s = size_ok("1.5G");
    assert_false(s.percent);
    assert_true(s.value == 1.5 * 1024 * 1024 * 1024);
    s = size_ok("2T");
    assert_true(s.value == 2.0 * 1024 * 1024 * 1024 * 1024);
    s = size_ok("3GiB");
    assert_true(s.value == 3.0 * 1024 * 1024 * 1024);
    s = size_ok("3GB");
    assert_true(s.value == 3.0 * 1024 * 1024 * 1024);
    s = size_ok("0");
    assert_false(s.percent);
    assert_true(s.value == 0.0);
}

static void test_size_percent(void **state)
{
    (void)state;
    struct mh_size s = size_ok("10%");
    assert_true(s.percent);
    assert_true(s.value == 10.0);
    s = size_ok("0%");
    assert_true(s.percent);
    assert_true(s.value == 0.0);
    s = size_ok("100%");
    assert_true(s.value == 100.0);
    s = size_ok("2.5%");
    assert_true(s.value == 2.5);
    size_bad("101%");
    size_bad("100.1%");
    size_bad("-5%");
}

static void test_size_rejects(void **state)
{
    (void)state;
    size_bad("10X");
    size_bad("10 M");
    size_bad("10MBs");
    size_bad("10P");
    size_bad("");
    size_bad("G");
    size_bad("%");
    size_bad("abc");
    size_bad("-1G");
    size_bad("99999999999999999K");
    struct mh_size s;
    assert_int_equal(mh_parse_size(NULL, &s, NULL), -1);
}

static void test_size_below(void **state)
{
    (void)state;
    struct mh_size bytes = {.percent = false, .value = 1024};
    assert_true(mh_size_below(&bytes, 1023, 1e12));
    assert_false(mh_size_below(&bytes, 1024, 1e12)); /* "below" is strict */
    assert_false(mh_size_below(&bytes, 4096, 0));    /* total is irrelevant for bytes */
    assert_true(mh_size_below(&bytes, 0, 0));

    struct mh_size pct = {.percent = true, .value = 10};
    assert_true(mh_size_below(&pct, 9, 100));
    assert_false(mh_size_below(&pct, 10, 100));
    assert_false(mh_size_below(&pct, 11, 100));
    assert_true(mh_size_below(&pct, 99, 1000));   /* 9.9% */
    assert_false(mh_size_below(&pct, 100, 1000)); /* 10% */
    assert_false(mh_size_below(&pct, 0, 0));      /* no total: nothing to be below */

    struct mh_size parsed = size_ok("5%");
    assert_true(mh_size_below(&parsed, 4.9, 100));
    assert_false(mh_size_below(&parsed, 5.1, 100));
    parsed = size_ok("1G");
    assert_true(mh_size_below(&parsed, 1024.0 * 1024 * 1024 - 1, 0));
    assert_false(mh_size_below(&parsed, 1024.0 * 1024 * 1024, 0));
}

/* ---- bools and numbers ---- */

static void test_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {"yes", "true", "on", "1", "YES", "True", "ON"};
    static const char *const no[] = {"no", "false", "off", "0", "NO", "False", "Off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        assert_int_equal(mh_parse_bool(yes[i], &b, NULL), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool b = true;
        assert_int_equal(mh_parse_bool(no[i], &b, NULL), 0);
        assert_false(b);
    }
    static const char *const bad[] = {"", "y", "n", "2", "yes ", " no", "enable", "nope"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = true;
        const char *why = NULL;
        assert_int_equal(mh_parse_bool(bad[i], &b, &why), -1);
        assert_true(b);
        assert_string_equal(why, "expected yes or no");
    }
    bool b;
    assert_int_equal(mh_parse_bool(NULL, &b, NULL), -1);
}

static void test_uint(void **state)
{
    (void)state;
    unsigned long v = 0;
    const char *why = NULL;
    assert_int_equal(mh_parse_uint("42", 1, 100, &v, &why), 0);
    assert_int_equal(v, 42);
    assert_int_equal(mh_parse_uint("1", 1, 100, &v, &why), 0);
    assert_int_equal(v, 1);
    assert_int_equal(mh_parse_uint("100", 1, 100, &v, &why), 0);
    assert_int_equal(v, 100);
    assert_int_equal(mh_parse_uint("007", 0, 10, &v, &why), 0);
    assert_int_equal(v, 7);

    v = 99;
    assert_int_equal(mh_parse_uint("0", 1, 100, &v, &why), -1);
    assert_string_equal(why, "number out of range");
    assert_int_equal(mh_parse_uint("101", 1, 100, &v, &why), -1);
    assert_string_equal(why, "number out of range");
    assert_int_equal(mh_parse_uint("99999999999999999999999999", 0, ~0UL, &v, &why), -1);
    assert_string_equal(why, "number out of range");
    assert_int_equal(v, 99);

    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1.0", "0x10", "abc", "1k"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(mh_parse_uint(bad[i], 0, 1000, &v, &why), -1);
        assert_string_equal(why, "expected a whole number");
    }
    assert_int_equal(v, 99);
    assert_int_equal(mh_parse_uint(NULL, 0, 10, &v, NULL), -1);
}

/* ---- affects ---- */

static void test_affects(void **state)
{
    (void)state;
    unsigned a = 99;
    assert_int_equal(mh_parse_affects("node", &a, NULL), 0);
    assert_int_equal(a, MH_AFFECTS_NODE);
    assert_int_equal(mh_parse_affects("region", &a, NULL), 0);
    assert_int_equal(a, MH_AFFECTS_REGION);
    assert_int_equal(mh_parse_affects("node, region", &a, NULL), 0);
    assert_int_equal(a, MH_AFFECTS_NODE | MH_AFFECTS_REGION);
    assert_int_equal(mh_parse_affects("region,node", &a, NULL), 0);
    assert_int_equal(a, MH_AFFECTS_NODE | MH_AFFECTS_REGION);
    assert_int_equal(mh_parse_affects("  node  ", &a, NULL), 0);
    assert_int_equal(a, MH_AFFECTS_NODE);
    assert_int_equal(mh_parse_affects("none", &a, NULL), 0);
    assert_int_equal(a, MH_AFFECTS_NONE);

    static const char *const bad[] = {"",
                                      "nodes",
                                      "NODE",
                                      "none, node",
                                      "node, none",
                                      ",",
                                      "node region",
                                      "everything",
                                      "node,region,node,region,node"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        a = 99;
        if (mh_parse_affects(bad[i], &a, &why) != -1) {
            print_error("affects \"%s\" accepted\n", bad[i]);
            fail();
        }
        assert_int_equal(a, 99);
        assert_non_null(why);
    }
    char longv[200];
    memset(longv, 'n', sizeof longv - 1);
    longv[sizeof longv - 1] = '\0';
    assert_int_equal(mh_parse_affects(longv, &a, NULL), -1);
    assert_int_equal(mh_parse_affects(NULL, &a, NULL), -1);
}

/* ---- CIDRs ---- */

static void test_cidr_parse(void **state)
{
    (void)state;
    struct mh_cidr c = cidr_ok("10.0.0.0/8");
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.addr[0], 10);
    assert_int_equal(c.addr[1], 0);

    c = cidr_ok("192.168.1.7");
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 32);
    static const uint8_t a4[4] = {192, 168, 1, 7};
    assert_memory_equal(c.addr, a4, 4);

    c = cidr_ok("0.0.0.0/0");
    assert_int_equal(c.family, AF_INET);
    assert_int_equal(c.prefix, 0);

    c = cidr_ok("::1");
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 128);
    static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_memory_equal(c.addr, loop6, 16);

    c = cidr_ok("fd00::/8");
    assert_int_equal(c.family, AF_INET6);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.addr[0], 0xfd);

    c = cidr_ok("2001:db8::/128");
    assert_int_equal(c.prefix, 128);
}

static void test_cidr_rejects(void **state)
{
    (void)state;
    struct cases {
        const char *s;
        const char *why;
    } bad[] = {
        {"10.0.0.0/33", "bad prefix length after '/'"},
        {"10.0.0.0/", "bad prefix length after '/'"},
        {"10.0.0.0/-1", "bad prefix length after '/'"},
        {"10.0.0.0/8x", "bad prefix length after '/'"},
        {"10.0.0.0/8/8", "bad prefix length after '/'"},
        {"::/129", "bad prefix length after '/'"},
        {"", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"garbage", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"10.0.0/8", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"256.0.0.0/8", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"localhost", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"/8", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"1.2.3.4 /8", "expected an address or network such as 10.0.0.0/8 or ::1"},
        {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc/128",
         "expected an address or network such as 10.0.0.0/8 or ::1"}, /* too long */
        {"1111:2222:3333:4444:5555:6666:7777:8888/128x", "bad prefix length after '/'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mh_cidr c;
        const char *why = NULL;
        if (mh_parse_cidr(bad[i].s, &c, &why) != -1) {
            print_error("cidr \"%s\" accepted\n", bad[i].s);
            fail();
        }
        assert_string_equal(why, bad[i].why);
    }
    struct mh_cidr c;
    assert_int_equal(mh_parse_cidr(NULL, &c, NULL), -1);
}

static void test_cidr_contains_v4(void **state)
{
    (void)state;
    assert_true(contains4("10.0.0.0/8", "10.1.2.3"));
    assert_true(contains4("10.0.0.0/8", "10.255.255.255"));
    assert_false(contains4("10.0.0.0/8", "11.0.0.0"));
    assert_false(contains4("10.0.0.0/8", "9.255.255.255"));
    assert_true(contains4("192.168.1.0/25", "192.168.1.127"));
    assert_false(contains4("192.168.1.0/25", "192.168.1.128"));
    assert_true(contains4("127.0.0.1", "127.0.0.1"));
    assert_false(contains4("127.0.0.1", "127.0.0.2"));
    /* Host bits in the network are ignored by the comparison. */
    assert_true(contains4("10.9.9.9/8", "10.0.0.1"));
    /* /0 contains every IPv4 address. */
    assert_true(contains4("0.0.0.0/0", "203.0.113.9"));
    assert_true(contains4("0.0.0.0/0", "0.0.0.0"));
}

static void test_cidr_contains_v6(void **state)
{
    (void)state;
    assert_true(contains6("::1", "::1"));
    assert_false(contains6("::1", "::2"));
    assert_true(contains6("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(contains6("2001:db8::/32", "2001:db9::1"));
    assert_true(contains6("fd00::/7", "fdff::1"));
    assert_true(contains6("fc00::/7", "fd12::1"));
    assert_false(contains6("fc00::/7", "fe00::1"));
    assert_true(contains6("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(contains6("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(contains6("::/0", "2001:db8::1"));
    assert_true(contains6("::/0", "::ffff:10.0.0.1"));
}

static void test_cidr_contains_mapped_and_mismatch(void **state)
{
    (void)state;
    /* An IPv4-mapped IPv6 peer (dual-stack socket) is matched by IPv4 networks. */
    assert_true(contains6("127.0.0.0/8", "::ffff:127.0.0.1"));
    assert_true(contains6("10.0.0.0/8", "::ffff:10.20.30.40"));
    assert_false(contains6("10.0.0.0/8", "::ffff:11.0.0.1"));
    assert_true(contains6("0.0.0.0/0", "::ffff:1.2.3.4"));
    /* Family mismatch: a plain IPv6 address is never in an IPv4 net, and vice versa. */
    assert_false(contains6("0.0.0.0/0", "2001:db8::1"));
    assert_false(contains6("127.0.0.1", "::1"));
    assert_false(contains4("::1", "127.0.0.1"));
    assert_false(contains4("::/0", "127.0.0.1"));
    /* A v4-compatible-looking (not mapped) address does not count as IPv4. */
    assert_false(contains6("10.0.0.0/8", "::10.0.0.1"));
    /* Not an IP socket at all, or NULL. */
    struct mh_cidr c = cidr_ok("0.0.0.0/0");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_family = AF_UNIX;
    assert_false(mh_cidr_contains(&c, (const struct sockaddr *)&ss));
    assert_false(mh_cidr_contains(&c, NULL));
}

/* ---- listen addresses ---- */

static void test_listen_ok(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    const char *why = NULL;

    assert_int_equal(mh_parse_listen("127.0.0.1:8642", &ss, &len, &why), 0);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&ss;
    assert_int_equal(in4->sin_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(in4->sin_port), 8642);
    assert_int_equal(ntohl(in4->sin_addr.s_addr), 0x7f000001);

    assert_int_equal(mh_parse_listen("*:80", &ss, &len, &why), 0);
    assert_int_equal(in4->sin_family, AF_INET);
    assert_int_equal(ntohs(in4->sin_port), 80);
    assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_ANY));

    assert_int_equal(mh_parse_listen("[::1]:8642", &ss, &len, &why), 0);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(in6->sin6_port), 8642);
    assert_memory_equal(&in6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback);

    assert_int_equal(mh_parse_listen("[::]:65535", &ss, &len, &why), 0);
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 65535);
    assert_memory_equal(&in6->sin6_addr, &in6addr_any, sizeof in6addr_any);

    assert_int_equal(mh_parse_listen("0.0.0.0:1", &ss, &len, &why), 0);
    assert_int_equal(ntohs(in4->sin_port), 1);
}

static void test_listen_rejects(void **state)
{
    (void)state;
    struct cases {
        const char *s;
        const char *why;
    } bad[] = {
        {"127.0.0.1", "a port is required (host:port)"},
        {"8642", "a port is required (host:port)"},
        {"127.0.0.1:", "port must be a number from 1 to 65535"},
        {"127.0.0.1:0", "port must be a number from 1 to 65535"},
        {"127.0.0.1:65536", "port must be a number from 1 to 65535"},
        {"127.0.0.1:-1", "port must be a number from 1 to 65535"},
        {"127.0.0.1:http", "port must be a number from 1 to 65535"},
        {"::1:8642", "write IPv6 addresses in brackets: [::1]:port"},
        {"::1", "write IPv6 addresses in brackets: [::1]:port"},
        {"[::1]8642", "expected [IPv6]:port"},
        {"[::1]", "expected [IPv6]:port"},
        {"[::1:8642", "expected [IPv6]:port"},
        {":8642", "missing or over-long host"},
        {"[]:8642", "missing or over-long host"},
        {"localhost:8642", "listen needs a numeric address such as 127.0.0.1:8642 or [::1]:8642"},
        {"[zz::1]:8642", "listen needs a numeric address such as 127.0.0.1:8642 or [::1]:8642"},
        {"", "a port is required (host:port)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sockaddr_storage ss;
        socklen_t len = 0;
        const char *why = NULL;
        if (mh_parse_listen(bad[i].s, &ss, &len, &why) != -1) {
            print_error("listen \"%s\" accepted\n", bad[i].s);
            fail();
        }
        if (!why || strcmp(why, bad[i].why) != 0) {
            print_error("listen \"%s\": why \"%s\", expected \"%s\"\n", bad[i].s,
                        why ? why : "(null)", bad[i].why);
            fail();
        }
    }
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(mh_parse_listen(NULL, &ss, &len, NULL), -1);
}

/* ---- endpoints ---- */

static void test_endpoint(void **state)
{
    (void)state;
    char host[256];
    unsigned port = 99;
    const char *why = NULL;

    assert_int_equal(mh_parse_endpoint("db.internal:3306", host, sizeof host, &port, &why), 0);
    assert_string_equal(host, "db.internal");
    assert_int_equal(port, 3306);

    assert_int_equal(mh_parse_endpoint("10.0.0.5:6379", host, sizeof host, &port, &why), 0);
    assert_string_equal(host, "10.0.0.5");
    assert_int_equal(port, 6379);

    assert_int_equal(mh_parse_endpoint("[2001:db8::5]:6379", host, sizeof host, &port, &why), 0);
    assert_string_equal(host, "2001:db8::5");
    assert_int_equal(port, 6379);

    port = 99;
    assert_int_equal(mh_parse_endpoint("/run/mysqld/mysqld.sock", host, sizeof host, &port, &why),
                     0);
    assert_string_equal(host, "/run/mysqld/mysqld.sock");
    assert_int_equal(port, 0);

    static const char *const bad[] = {"",         "db",    "db:",   "db:0",      "db:65536",
                                      "::1:3306", "[::1]", ":3306", "[::1]3306", "db:33a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (mh_parse_endpoint(bad[i], host, sizeof host, &port, &why) != -1) {
            print_error("endpoint \"%s\" accepted\n", bad[i]);
            fail();
        }
        assert_non_null(why);
    }
    assert_int_equal(mh_parse_endpoint(NULL, host, sizeof host, &port, &why), -1);

    /* A unix path that does not fit sockaddr_un (108 bytes with its NUL) is refused. */
    char path[120];
    memset(path, 'a', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    assert_int_equal(mh_parse_endpoint(path, host, sizeof host, &port, &why), -1);
    assert_string_equal(why, "unix socket path too long");
    path[107] = '\0'; /* 107 characters + NUL fits */
    assert_int_equal(mh_parse_endpoint(path, host, sizeof host, &port, &why), 0);
    assert_int_equal(strlen(host), 107);

    /* The caller's buffer is respected. */
    char small[8];
    assert_int_equal(mh_parse_endpoint("database.example:3306", small, sizeof small, &port, &why),
                     -1);
    assert_string_equal(why, "missing or over-long host");
    assert_int_equal(mh_parse_endpoint("/run/x/y.sock", small, sizeof small, &port, &why), -1);
    assert_int_equal(mh_parse_endpoint("abcdefg:1", small, sizeof small, &port, &why), 0);
    assert_string_equal(small, "abcdefg");
}

/* ---- lists ---- */

static void test_split_list(void **state)
{
    (void)state;
    char buf[128];
    char *items[4];

    strcpy(buf, " a ,b,, c\t,  ");
    assert_int_equal(mh_split_list(buf, items, 4), 3);
    assert_string_equal(items[0], "a");
    assert_string_equal(items[1], "b");
    assert_string_equal(items[2], "c");

    strcpy(buf, "single");
    assert_int_equal(mh_split_list(buf, items, 4), 1);
    assert_string_equal(items[0], "single");

    strcpy(buf, "one two, three");
    assert_int_equal(mh_split_list(buf, items, 4), 2);
    assert_string_equal(items[0], "one two");
    assert_string_equal(items[1], "three");

    strcpy(buf, "");
    assert_int_equal(mh_split_list(buf, items, 4), 0);
    strcpy(buf, " , ,, ");
    assert_int_equal(mh_split_list(buf, items, 4), 0);

    strcpy(buf, "1,2,3,4");
    assert_int_equal(mh_split_list(buf, items, 4), 4);
    assert_string_equal(items[3], "4");
    strcpy(buf, "1,2,3,4,5");
    assert_int_equal(mh_split_list(buf, items, 4), -1);
    /* Empty items do not count towards the limit. */
    strcpy(buf, "1,,2,,3,,4,,");
    assert_int_equal(mh_split_list(buf, items, 4), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration_units),
        cmocka_unit_test(test_duration_fractions),
        cmocka_unit_test(test_duration_limits),
        cmocka_unit_test(test_duration_rejects),
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_size_percent),
        cmocka_unit_test(test_size_rejects),
        cmocka_unit_test(test_size_below),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_uint),
        cmocka_unit_test(test_affects),
        cmocka_unit_test(test_cidr_parse),
        cmocka_unit_test(test_cidr_rejects),
        cmocka_unit_test(test_cidr_contains_v4),
        cmocka_unit_test(test_cidr_contains_v6),
        cmocka_unit_test(test_cidr_contains_mapped_and_mismatch),
        cmocka_unit_test(test_listen_ok),
        cmocka_unit_test(test_listen_rejects),
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_split_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
