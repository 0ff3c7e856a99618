/* test_fcgi.c - unit tests of the FastCGI client (mh_fcgi.c) and of the PHP-FPM status parser
 * and judgement (mh_fpm_status.h).
 *
 * The encode/decode and parse functions are pure and tested byte by byte here. The socket half
 * is tested only for what php-fpm cannot easily be made to do: a peer that never answers, one
 * that drips bytes forever, and a full listen backlog, each of which must end at the deadline. */
#include "mh_fcgi.h"
#include "mh_fpm_status.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- helpers ---- */

/* Appends a record with `pad` padding bytes to buf at *len. */
static void add_record(uint8_t *buf, size_t *len, uint8_t type, uint16_t id, const void *content,
                       size_t clen, uint8_t pad)
{
    struct mh_fcgi_header h = {1, type, id, (uint16_t)clen, pad};
    mh_fcgi_header_encode(buf + *len, &h);
    *len += MH_FCGI_HEADER_LEN;
    if (clen)
        memcpy(buf + *len, content, clen);
    *len += clen;
    memset(buf + *len, 0xee, pad);
    *len += pad;
}

static void add_end(uint8_t *buf, size_t *len, uint16_t id, uint32_t app, uint8_t proto)
{
    uint8_t body[8] = {(uint8_t)(app >> 24),
                       (uint8_t)(app >> 16),
                       (uint8_t)(app >> 8),
                       (uint8_t)app,
                       proto,
                       0,
                       0,
                       0};
    add_record(buf, len, MH_FCGI_END_REQUEST, id, body, sizeof body, 0);
}

static const char PONG_STDOUT[] = "Content-type: text/plain;charset=UTF-8\r\n\r\npong";

/* A reply shaped like php-fpm's: padded STDOUT, STDERR, empty STDOUT, END_REQUEST. */
static size_t sample_reply(uint8_t *buf)
{
    size_t len = 0;
    add_record(buf, &len, MH_FCGI_STDOUT, 1, PONG_STDOUT, strlen(PONG_STDOUT), 5);
    add_record(buf, &len, MH_FCGI_STDERR, 1, "warning", 7, 1);
    add_record(buf, &len, MH_FCGI_STDOUT, 1, NULL, 0, 0);
    add_end(buf, &len, 1, 0x01020304, MH_FCGI_REQUEST_COMPLETE);
    return len;
}

/* ---- encoding ---- */

static void test_header_roundtrip(void **state)
{
    (void)state;
    struct mh_fcgi_header h = {1, MH_FCGI_STDOUT, 0xbeef, 0x1234, 7}, back;
    uint8_t raw[8];
    mh_fcgi_header_encode(raw, &h);
    const uint8_t want[8] = {1, 6, 0xbe, 0xef, 0x12, 0x34, 7, 0};
    assert_memory_equal(raw, want, 8);
    assert_int_equal(mh_fcgi_header_decode(raw, &back), 0);
    assert_int_equal(back.type, MH_FCGI_STDOUT);
    assert_int_equal(back.request_id, 0xbeef);
    assert_int_equal(back.content_length, 0x1234);
    assert_int_equal(back.padding_length, 7);
    raw[0] = 2;
    assert_int_equal(mh_fcgi_header_decode(raw, &back), -1);
}

static void test_nv_short_and_long_lengths(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = mh_fcgi_nv_encode(buf, sizeof buf, "AB", "xyz");
    const uint8_t want[] = {2, 3, 'A', 'B', 'x', 'y', 'z'};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    char value[201];
    memset(value, 'v', 200);
    value[200] = '\0';
    n = mh_fcgi_nv_encode(buf, sizeof buf, "N", value);
    assert_int_equal(n, 1 + 4 + 1 + 200);
    assert_int_equal(buf[0], 1);
    const uint8_t len4[] = {0x80, 0, 0, 200};
    assert_memory_equal(buf + 1, len4, 4);
    assert_int_equal(buf[5], 'N');

    /* 127 is the longest one-byte length; 128 needs four. */
    memset(value, 'v', 128);
    value[127] = '\0';
    assert_int_equal(mh_fcgi_nv_encode(buf, sizeof buf, "N", value), 1 + 1 + 1 + 127);
    value[127] = 'v';
    value[128] = '\0';
    assert_int_equal(mh_fcgi_nv_encode(buf, sizeof buf, "N", value), 1 + 4 + 1 + 128);
}

static void test_nv_does_not_overflow(void **state)
{
    (void)state;
    uint8_t buf[8] = {0};
    assert_int_equal(mh_fcgi_nv_encode(buf, 6, "AB", "xyz"), 0);
    assert_int_equal(mh_fcgi_nv_encode(buf, 7, "AB", "xyz"), 7);
}

static void test_encode_request_layout(void **state)
{
    (void)state;
    const struct mh_fcgi_param params[] = {{"REQUEST_METHOD", "GET"}, {"SCRIPT_NAME", "/ping"}};
    uint8_t buf[256];
    int len = mh_fcgi_encode_request(buf, sizeof buf, 7, params, 2);
    size_t pairs = (2 + 14 + 3) + (2 + 11 + 5);
    assert_int_equal(len, 8 + 8 + 8 + (int)pairs + 8 + 8);

    struct mh_fcgi_header h;
    assert_int_equal(mh_fcgi_header_decode(buf, &h), 0);
    assert_int_equal(h.type, MH_FCGI_BEGIN_REQUEST);
    assert_int_equal(h.request_id, 7);
    assert_int_equal(h.content_length, 8);
    const uint8_t begin[8] = {0, MH_FCGI_RESPONDER, 0, 0, 0, 0, 0, 0}; /* no KEEP_CONN */
    assert_memory_equal(buf + 8, begin, 8);

    mh_fcgi_header_decode(buf + 16, &h);
    assert_int_equal(h.type, MH_FCGI_PARAMS);
    assert_int_equal(h.content_length, pairs);
    assert_int_equal(buf[24], 14);
    assert_int_equal(buf[25], 3);
    assert_memory_equal(buf + 26, "REQUEST_METHODGET", 17);

    mh_fcgi_header_decode(buf + 24 + pairs, &h);
    assert_int_equal(h.type, MH_FCGI_PARAMS);
    assert_int_equal(h.content_length, 0);
    mh_fcgi_header_decode(buf + 32 + pairs, &h);
    assert_int_equal(h.type, MH_FCGI_STDIN);
    assert_int_equal(h.content_length, 0);
}

static void test_encode_request_too_small(void **state)
{
    (void)state;
    const struct mh_fcgi_param params[] = {{"SCRIPT_NAME", "/ping"}};
    uint8_t buf[64];
    int need = mh_fcgi_encode_request(buf, sizeof buf, 1, params, 1);
    assert_true(need > 0);
    for (int cap = 0; cap < need; cap++)
        assert_int_equal(mh_fcgi_encode_request(buf, (size_t)cap, 1, params, 1), -1);
}

/* ---- decoding ---- */

static void test_decode_whole_reply(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = sample_reply(buf);
    buf[len] = 0x42; /* a stray byte after END_REQUEST must not be consumed */
    char out[128];
    struct mh_fcgi_decoder d;
    mh_fcgi_decoder_init(&d, 1, out, sizeof out);
    size_t used = 0;
    assert_int_equal(mh_fcgi_decode(&d, buf, len + 1, &used), 1);
    assert_int_equal(used, len);
    assert_string_equal(out, PONG_STDOUT);
    assert_int_equal(d.out_len, strlen(PONG_STDOUT));
    assert_string_equal(d.err, "warning");
    assert_int_equal(d.app_status, 0x01020304);
    assert_int_equal(d.protocol_status, MH_FCGI_REQUEST_COMPLETE);
    assert_true(d.done);
    /* Once done, more input is not taken. */
    assert_int_equal(mh_fcgi_decode(&d, buf, 4, &used), 1);
    assert_int_equal(used, 0);
}

static void test_decode_byte_by_byte(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = sample_reply(buf);
    char out[128];
    struct mh_fcgi_decoder d;
    mh_fcgi_decoder_init(&d, 1, out, sizeof out);
    for (size_t i = 0; i + 1 < len; i++)
        assert_int_equal(mh_fcgi_decode(&d, buf + i, 1, NULL), 0);
    assert_int_equal(mh_fcgi_decode(&d, buf + len - 1, 1, NULL), 1);
    assert_string_equal(out, PONG_STDOUT);
    assert_string_equal(d.err, "warning");
}

static int decode_all(const uint8_t *buf, size_t len, struct mh_fcgi_decoder *d, char *out,
                      size_t cap)
{
    mh_fcgi_decoder_init(d, 1, out, cap);
    return mh_fcgi_decode(d, buf, len, NULL);
}

static void test_decode_rejects_bad_records(void **state)
{
    (void)state;
    uint8_t buf[64];
    char out[64];
    struct mh_fcgi_decoder d;
    size_t len;

    len = 0;
    add_record(buf, &len, MH_FCGI_STDOUT, 2, "x", 1, 0); /* another request id */
    assert_int_equal(decode_all(buf, len, &d, out, sizeof out), -1);
    assert_non_null(strstr(d.error, "request id"));

    len = 0;
    add_record(buf, &len, 11, 1, "x", 1, 0); /* UNKNOWN_TYPE: we never send management records */
    assert_int_equal(decode_all(buf, len, &d, out, sizeof out), -1);
    assert_non_null(strstr(d.error, "type"));

    len = 0;
    add_record(buf, &len, MH_FCGI_END_REQUEST, 1, "1234", 4, 0);
    assert_int_equal(decode_all(buf, len, &d, out, sizeof out), -1);
    assert_non_null(strstr(d.error, "END_REQUEST"));

    /* An HTTP server answering on the FastCGI port: "HTTP/1.1" is version 'H'. */
    assert_int_equal(decode_all((const uint8_t *)"HTTP/1.1 400", 12, &d, out, sizeof out), -1);
    assert_non_null(strstr(d.error, "version"));
    /* A failed decoder stays failed. */
    assert_int_equal(mh_fcgi_decode(&d, buf, len, NULL), -1);
}

static void test_decode_caps_stdout_to_buffer(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t len = 0;
    add_record(buf, &len, MH_FCGI_STDOUT, 1, "0123456789", 10, 0);
    char out[10]; /* room for 9 bytes and the NUL */
    struct mh_fcgi_decoder d;
    assert_int_equal(decode_all(buf, len, &d, out, sizeof out), -1);
    assert_non_null(strstr(d.error, "STDOUT"));
    char out11[11];
    assert_int_equal(decode_all(buf, len, &d, out11, sizeof out11), 0);
    assert_string_equal(out11, "0123456789");
}

static void test_decode_caps_total_reply(void **state)
{
    (void)state;
    static uint8_t buf[3 * (8 + 65535)];
    static uint8_t chunk[65535];
    static char out[4 * 65536];
    memset(chunk, 'a', sizeof chunk);
    size_t len = 0;
    add_record(buf, &len, MH_FCGI_STDERR, 1, chunk, 60000, 0);
    add_record(buf, &len, MH_FCGI_STDOUT, 1, chunk, 5536, 0); /* exactly 64 KiB so far */
    size_t ok_len = len;
    add_record(buf, &len, MH_FCGI_STDOUT, 1, chunk, 1, 0);
    struct mh_fcgi_decoder d;
    assert_int_equal(decode_all(buf, ok_len, &d, out, sizeof out), 0);
    assert_int_equal(d.err_len, MH_FCGI_STDERR_MAX); /* STDERR kept short, but counted */
    assert_int_equal(decode_all(buf, len, &d, out, sizeof out), -1);
    assert_non_null(strstr(d.error, "64 KiB"));
}

static void test_decode_end_request_statuses(void **state)
{
    (void)state;
    uint8_t buf[32];
    size_t len = 0;
    add_end(buf, &len, 1, 255, MH_FCGI_OVERLOADED);
    char out[4];
    struct mh_fcgi_decoder d;
    assert_int_equal(decode_all(buf, len, &d, out, sizeof out), 1);
    assert_int_equal(d.app_status, 255);
    assert_int_equal(d.protocol_status, MH_FCGI_OVERLOADED);
    assert_int_equal(d.out_len, 0);
}

/* ---- CGI headers ---- */

static void test_cgi_default_status(void **state)
{
    (void)state;
    struct mh_fcgi_cgi c;
    const char *why = NULL;
    const char *s = "X-Powered-By: PHP/8.2\r\ncontent-TYPE:  application/json \r\n\r\n{\"a\":1}";
    assert_int_equal(mh_fcgi_parse_cgi(s, strlen(s), &c, &why), 0);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.content_type, "application/json");
    assert_int_equal(c.body_len, 7);
    assert_memory_equal(c.body, "{\"a\":1}", 7);
}

static void test_cgi_status_header_and_lf_only(void **state)
{
    (void)state;
    struct mh_fcgi_cgi c;
    const char *why = NULL;
    const char *s = "Status: 404 Not Found\nContent-type: text/html\n\nFile not found.\n";
    assert_int_equal(mh_fcgi_parse_cgi(s, strlen(s), &c, &why), 0);
    assert_int_equal(c.status, 404);
    assert_string_equal(c.content_type, "text/html");
    assert_int_equal(c.body_len, strlen("File not found.\n"));

    const char *empty_body = "Status: 503\r\n\r\n";
    assert_int_equal(mh_fcgi_parse_cgi(empty_body, strlen(empty_body), &c, &why), 0);
    assert_int_equal(c.status, 503);
    assert_int_equal(c.body_len, 0);
}

static void test_cgi_rejects_malformed(void **state)
{
    (void)state;
    struct mh_fcgi_cgi c;
    const char *why = NULL;
    const char *no_blank = "Content-type: text/plain\r\npong";
    assert_int_equal(mh_fcgi_parse_cgi(no_blank, strlen(no_blank), &c, &why), -1);
    assert_non_null(strstr(why, "blank line"));
    const char *bad[] = {"Status: abc\r\n\r\n", "Status: 99\r\n\r\n", "Status: 2000\r\n\r\n",
                         "Status: 600 Nope\r\n\r\n", "Status:\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        assert_int_equal(mh_fcgi_parse_cgi(bad[i], strlen(bad[i]), &c, &why), -1);
        assert_non_null(strstr(why, "Status"));
    }
    /* The length bounds the parse, not a NUL. */
    const char *s = "A: b\r\n\r\nbody";
    assert_int_equal(mh_fcgi_parse_cgi(s, 5, &c, &why), -1);
}

/* ---- endpoints ---- */

static void test_endpoint_parse(void **state)
{
    (void)state;
    struct mh_fcgi_endpoint ep;
    const char *why = NULL;
    assert_int_equal(mh_fcgi_endpoint_parse("/run/php/php8.2-fpm.sock", &ep, &why), 0);
    assert_string_equal(ep.host, "/run/php/php8.2-fpm.sock");
    assert_int_equal(ep.port, 0);
    assert_int_equal(mh_fcgi_endpoint_parse("127.0.0.1:9000", &ep, &why), 0);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_int_equal(ep.port, 9000);
    assert_int_equal(mh_fcgi_endpoint_parse("[::1]:9001", &ep, &why), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(mh_fcgi_endpoint_parse("localhost:9000", &ep, &why), 0);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_int_equal(mh_fcgi_endpoint_parse("fpm.internal:9000", &ep, &why), -1);
    assert_non_null(strstr(why, "numeric"));
    assert_int_equal(mh_fcgi_endpoint_parse("127.0.0.1", &ep, &why), -1);
    assert_int_equal(mh_fcgi_endpoint_parse("", &ep, &why), -1);
}

/* ---- the status page ---- */

static const char FPM_JSON[] =
    "{\"pool\":\"www\",\"process manager\":\"static\",\"start time\":1795629517,"
    "\"start since\":12,\"accepted conn\":6,\"listen queue\":2,\"max listen queue\":3,"
    "\"listen queue len\":4096,\"idle processes\":1,\"active processes\":3,"
    "\"total processes\":4,\"max active processes\":4,\"max children reached\":5,"
    "\"slow requests\":7}";

static void test_status_parse_php82(void **state)
{
    (void)state;
    struct mh_fpm_status st;
    char err[128] = "";
    assert_int_equal(mh_fpm_status_parse(FPM_JSON, strlen(FPM_JSON), &st, err, sizeof err), 0);
    assert_string_equal(st.pool, "www");
    assert_string_equal(st.process_manager, "static");
    assert_int_equal(st.accepted_conn, 6);
    assert_int_equal(st.listen_queue, 2);
    assert_int_equal(st.max_listen_queue, 3);
    assert_int_equal(st.listen_queue_len, 4096);
    assert_int_equal(st.idle, 1);
    assert_int_equal(st.active, 3);
    assert_int_equal(st.total, 4);
    assert_int_equal(st.max_active, 4);
    assert_int_equal(st.max_children_reached, 5);
    assert_int_equal(st.slow_requests, 7);
    assert_true(mh_fpm_utilisation(&st) == 75.0);
}

static void test_status_parse_errors(void **state)
{
    (void)state;
    struct mh_fpm_status st;
    char err[128];
    const struct {
        const char *text;
        const char *expect;
    } cases[] = {
        {"File not found.\n", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"{\"accepted conn\":1,\"idle processes\":1,\"active processes\":0,"
         "\"total processes\":1}",
         "lacks \"listen queue\""},
        {"{\"accepted conn\":1,\"listen queue\":-1,\"idle processes\":1,"
         "\"active processes\":0,\"total processes\":1}",
         "\"listen queue\" is not a non-negative integer"},
        {"{\"accepted conn\":1,\"listen queue\":\"0\",\"idle processes\":1,"
         "\"active processes\":0,\"total processes\":1}",
         "\"listen queue\""},
        {"{\"listen queue\":0,\"listen queue\":1}", "not JSON"}, /* duplicate keys */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        assert_int_equal(
            mh_fpm_status_parse(cases[i].text, strlen(cases[i].text), &st, err, sizeof err), -1);
        if (!strstr(err, cases[i].expect))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, cases[i].expect);
    }
}

static void test_status_parse_respects_length(void **state)
{
    (void)state;
    struct mh_fpm_status st;
    char err[128];
    /* Cut one byte short of the closing brace: must fail, not read on. */
    assert_int_equal(mh_fpm_status_parse(FPM_JSON, strlen(FPM_JSON) - 1, &st, err, sizeof err), -1);
}

static struct mh_fpm_status status_of(uint64_t idle, uint64_t active, uint64_t lq)
{
    struct mh_fpm_status st = {
        .idle = idle, .active = active, .total = idle + active, .listen_queue = lq};
    return st;
}

static void test_assess_pass_and_saturation(void **state)
{
    (void)state;
    struct mh_fpm_limits none = {0};
    char why[256];
    struct mh_fpm_status st = status_of(3, 1, 0);
    assert_int_equal(mh_fpm_status_assess(&st, &none, false, why, sizeof why), MH_PASS);
    assert_string_equal(why, "1 of 4 workers busy, listen queue 0");

    st = status_of(0, 4, 2);
    assert_int_equal(mh_fpm_status_assess(&st, &none, false, why, sizeof why), MH_FAIL);
    assert_non_null(strstr(why, "saturated"));
    assert_non_null(strstr(why, "2 waiting"));

    /* A unix socket: php-fpm shows no queue, but our own request waited until the deadline. */
    st = status_of(0, 4, 0);
    assert_int_equal(mh_fpm_status_assess(&st, &none, false, why, sizeof why), MH_PASS);
    assert_int_equal(mh_fpm_status_assess(&st, &none, true, why, sizeof why), MH_FAIL);
    assert_non_null(strstr(why, "saturated"));
    assert_non_null(strstr(why, "ping"));

    /* An idle worker means it is not saturation, whatever the ping did. */
    st = status_of(1, 3, 5);
    assert_int_equal(mh_fpm_status_assess(&st, &none, true, why, sizeof why), MH_PASS);
}

static void test_assess_thresholds(void **state)
{
    (void)state;
    struct mh_fpm_limits lim = {.listen_queue_warn = 1,
                                .listen_queue_fail = 10,
                                .utilisation_warn = 50,
                                .utilisation_fail = 90};
    char why[256];
    struct mh_fpm_status st = status_of(3, 1, 0); /* 25% */
    assert_int_equal(mh_fpm_status_assess(&st, &lim, false, why, sizeof why), MH_PASS);
    st = status_of(2, 2, 0); /* 50% */
    assert_int_equal(mh_fpm_status_assess(&st, &lim, false, why, sizeof why), MH_WARN);
    assert_non_null(strstr(why, "utilisation_warn 50%"));
    st = status_of(1, 9, 0); /* 90% */
    assert_int_equal(mh_fpm_status_assess(&st, &lim, false, why, sizeof why), MH_FAIL);
    assert_non_null(strstr(why, "utilisation 90% (9 of 10 busy) >= utilisation_fail 90%"));
    st = status_of(3, 1, 1);
    assert_int_equal(mh_fpm_status_assess(&st, &lim, false, why, sizeof why), MH_WARN);
    assert_non_null(strstr(why, "listen_queue_warn 1"));
    st = status_of(3, 1, 10);
    assert_int_equal(mh_fpm_status_assess(&st, &lim, false, why, sizeof why), MH_FAIL);
    assert_non_null(strstr(why, "listen queue 10 >= listen_queue_fail 10"));
}

static void test_discount_self_and_empty_pool(void **state)
{
    (void)state;
    struct mh_fpm_status st = status_of(0, 1, 0);
    mh_fpm_status_discount_self(&st);
    assert_int_equal(st.active, 0);
    assert_int_equal(st.idle, 1);
    mh_fpm_status_discount_self(&st); /* never below zero */
    assert_int_equal(st.active, 0);
    st = status_of(0, 0, 0); /* pm = ondemand with no child yet */
    assert_true(mh_fpm_utilisation(&st) == 0.0);
    struct mh_fpm_limits none = {0};
    char why[128];
    assert_int_equal(mh_fpm_status_assess(&st, &none, true, why, sizeof why), MH_PASS);
}

/* ---- the deadline over real sockets ---- */

static void deadline_in_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static double ms_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) * 1e3 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

/* A listening unix socket in a fresh temp dir. */
static int listen_unix(struct mh_fcgi_endpoint *ep, int backlog)
{
    char dir[] = "/tmp/mh-fcgi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(ep->host, sizeof ep->host, "%s/s.sock", dir);
    ep->port = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    strcpy(un.sun_path, ep->host);
    assert_int_equal(bind(fd, (struct sockaddr *)&un, sizeof un), 0);
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

static void unlisten_unix(int fd, const struct mh_fcgi_endpoint *ep)
{
    close(fd);
    unlink(ep->host);
    char dir[sizeof ep->host];
    strcpy(dir, ep->host);
    *strrchr(dir, '/') = '\0';
    rmdir(dir);
}

static struct mh_fcgi_reply reply; /* 64 KiB: not on the stack */

static void test_get_never_answered_times_out(void **state)
{
    (void)state;
    struct mh_fcgi_endpoint ep;
    int lfd = listen_unix(&ep, 16); /* connects succeed into the backlog; nobody accepts */
    struct timespec start, dl;
    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline_in_ms(&dl, 150);
    struct mh_fcgi_error err;
    assert_int_equal(mh_fcgi_get(&ep, "/ping", "", &dl, &reply, &err), -1);
    double took = ms_since(&start);
    assert_true(err.timed_out);
    assert_string_equal(err.stage, "read");
    assert_int_equal(err.errnum, ETIMEDOUT);
    assert_true(took >= 140 && took < 400);
    unlisten_unix(lfd, &ep);
}

static void test_get_full_backlog_times_out(void **state)
{
    (void)state;
    struct mh_fcgi_endpoint ep;
    int lfd = listen_unix(&ep, 0);
    /* Fill the backlog: Linux lets backlog+1 connections wait, then refuses with EAGAIN. */
    int fillers[4], n = 0;
    for (; n < 4; n++) {
        fillers[n] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        struct sockaddr_un un = {.sun_family = AF_UNIX};
        strcpy(un.sun_path, ep.host);
        if (connect(fillers[n], (struct sockaddr *)&un, sizeof un) < 0) {
            close(fillers[n]);
            break;
        }
    }
    assert_true(n < 4);
    struct timespec start, dl;
    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline_in_ms(&dl, 100);
    struct mh_fcgi_error err;
    assert_int_equal(mh_fcgi_get(&ep, "/ping", "", &dl, &reply, &err), -1);
    double took = ms_since(&start);
    assert_true(err.timed_out);
    assert_string_equal(err.stage, "connect");
    assert_non_null(strstr(err.message, "backlog"));
    assert_true(took >= 90 && took < 400);
    for (int i = 0; i < n; i++)
        close(fillers[i]);
    unlisten_unix(lfd, &ep);
}

/* A peer that accepts and then sends one valid STDOUT byte at a time, forever. */
static void *drip_server(void *arg)
{
    int lfd = *(int *)arg;
    int c = accept(lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    uint8_t head[8];
    struct mh_fcgi_header h = {1, MH_FCGI_STDOUT, 1, 60000, 0};
    mh_fcgi_header_encode(head, &h);
    send(c, head, sizeof head, MSG_NOSIGNAL);
    while (send(c, "x", 1, MSG_NOSIGNAL) == 1)
        usleep(5000);
    close(c);
    return NULL;
}

static void test_get_dripping_peer_ends_at_deadline(void **state)
{
    (void)state;
    struct mh_fcgi_endpoint ep;
    int lfd = listen_unix(&ep, 4);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, drip_server, &lfd), 0);
    struct timespec start, dl;
    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline_in_ms(&dl, 200);
    struct mh_fcgi_error err;
    assert_int_equal(mh_fcgi_get(&ep, "/ping", "", &dl, &reply, &err), -1);
    double took = ms_since(&start);
    assert_true(err.timed_out);
    assert_string_equal(err.stage, "read");
    assert_true(took >= 190 && took < 450);
    unlisten_unix(lfd, &ep); /* the server's next send fails with EPIPE and it exits */
    pthread_join(t, NULL);
}

static void test_get_missing_socket(void **state)
{
    (void)state;
    struct mh_fcgi_endpoint ep = {.host = "/nonexistent/mh-fcgi.sock", .port = 0};
    struct timespec dl;
    deadline_in_ms(&dl, 1000);
    struct mh_fcgi_error err;
    assert_int_equal(mh_fcgi_get(&ep, "/ping", "", &dl, &reply, &err), -1);
    assert_false(err.timed_out);
    assert_string_equal(err.stage, "connect");
    assert_int_equal(err.errnum, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_nv_short_and_long_lengths),
        cmocka_unit_test(test_nv_does_not_overflow),
        cmocka_unit_test(test_encode_request_layout),
        cmocka_unit_test(test_encode_request_too_small),
        cmocka_unit_test(test_decode_whole_reply),
        cmocka_unit_test(test_decode_byte_by_byte),
        cmocka_unit_test(test_decode_rejects_bad_records),
        cmocka_unit_test(test_decode_caps_stdout_to_buffer),
        cmocka_unit_test(test_decode_caps_total_reply),
        cmocka_unit_test(test_decode_end_request_statuses),
        cmocka_unit_test(test_cgi_default_status),
        cmocka_unit_test(test_cgi_status_header_and_lf_only),
        cmocka_unit_test(test_cgi_rejects_malformed),
        cmocka_unit_test(test_endpoint_parse),
        cmocka_unit_test(test_status_parse_php82),
        cmocka_unit_test(test_status_parse_errors),
        cmocka_unit_test(test_status_parse_respects_length),
        cmocka_unit_test(test_assess_pass_and_saturation),
        cmocka_unit_test(test_assess_thresholds),
        cmocka_unit_test(test_discount_self_and_empty_pool),
        cmocka_unit_test(test_get_never_answered_times_out),
        cmocka_unit_test(test_get_full_backlog_times_out),
        cmocka_unit_test(test_get_dripping_peer_ends_at_deadline),
        cmocka_unit_test(test_get_missing_socket),
    };
    return cmocka_run_group_tests_name("fcgi", tests, NULL, NULL);
}
