/* check_fpm.c - the `fpm` check: is PHP-FPM accepting work on this node?
 *
 * Talks FastCGI to the pool directly (mh_fcgi.c), with no web server in between, and reports two
 * measurements, both node readiness by default:
 *   status - pm.status_path?json, asked on pm.status_listen when configured (that socket answers
 *            even when every worker is busy). Observed value: utilisation (active / total, %).
 *            Fails when the pool is saturated (no idle worker while requests wait) or past the
 *            fail thresholds; warns past the warn thresholds.
 *   ping   - ping.path on the main socket: the end-to-end proof that a worker picks up a new
 *            request. Observed value: the round trip in ms.
 * The status request runs first, with at most half the time left, so that a saturated main socket
 * (where ping waits until the deadline) cannot starve it. A timeout is reported as "saturated or
 * unreachable", since that is what an unanswered FastCGI socket usually means.
 * The JSON status parser and the judgement are pure (mh_fpm_status.h) for unit tests and fuzzing.
 */
#include "mh_check.h"
#include "mh_fcgi.h"
#include "mh_fpm_status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN     256
#define RESPONSE_MAX_LEN 128
#define SHOWN_MAX        40 /* bytes of an unexpected body quoted in an output line */

/* ---------------------------------------------------------------------------------------------
 * The status page: parsing and judging (pure) */

static int count_field(json_t *root, const char *key, bool required, uint64_t *out, char *err,
                       size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        if (required) {
            snprintf(err, errlen, "status reply lacks \"%s\"", key);
            return -1;
        }
        *out = 0;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "status reply: \"%s\" is not a non-negative integer", key);
        return -1;
    }
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static void string_field(json_t *root, const char *key, char *out, size_t outlen)
{
    const char *s = json_string_value(json_object_get(root, key));
    snprintf(out, outlen, "%s", s ? s : "");
}

int mh_fpm_status_parse(const char *text, size_t len, struct mh_fpm_status *st, char *err,
                        size_t errlen)
{
    memset(st, 0, sizeof *st);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "status reply is not JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "status reply is not a JSON object");
        goto out;
    }
    const struct {
        const char *key;
        bool required;
        uint64_t *out;
    } fields[] = {
        {"accepted conn", true, &st->accepted_conn},
        {"listen queue", true, &st->listen_queue},
        {"idle processes", true, &st->idle},
        {"active processes", true, &st->active},
        {"total processes", true, &st->total},
        {"max listen queue", false, &st->max_listen_queue},
        {"listen queue len", false, &st->listen_queue_len},
        {"max active processes", false, &st->max_active},
        {"max children reached", false, &st->max_children_reached},
        {"slow requests", false, &st->slow_requests},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (count_field(root, fields[i].key, fields[i].required, fields[i].out, err, errlen) < 0)
            goto out;
    string_field(root, "pool", st->pool, sizeof st->pool);
    string_field(root, "process manager", st->process_manager, sizeof st->process_manager);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void mh_fpm_status_discount_self(struct mh_fpm_status *st)
{
    if (st->active > 0) {
        st->active--;
        st->idle++;
    }
}

double mh_fpm_utilisation(const struct mh_fpm_status *st)
{
    return st->total > 0 ? (double)st->active * 100.0 / (double)st->total : 0.0;
}

static bool reached(unsigned long limit, double value)
{
    return limit > 0 && value >= (double)limit;
}

enum mh_status mh_fpm_status_assess(const struct mh_fpm_status *st, const struct mh_fpm_limits *lim,
                                    bool request_waited, char *why, size_t whylen)
{
    double util = mh_fpm_utilisation(st);
    unsigned long long lq = st->listen_queue, busy = st->active, total = st->total;
    if (st->idle == 0 && busy > 0 && lq > 0) {
        snprintf(why, whylen,
                 "saturated: no idle worker (%llu of %llu busy), %llu waiting in the listen queue",
                 busy, total, lq);
        return MH_FAIL;
    }
    if (st->idle == 0 && busy > 0 && request_waited) {
        snprintf(why, whylen,
                 "saturated: no idle worker (%llu of %llu busy) and the ping request waited "
                 "unanswered until the deadline",
                 busy, total);
        return MH_FAIL;
    }
    if (reached(lim->listen_queue_fail, (double)lq)) {
        snprintf(why, whylen, "listen queue %llu >= listen_queue_fail %lu", lq,
                 lim->listen_queue_fail);
        return MH_FAIL;
    }
    if (reached(lim->utilisation_fail, util)) {
        snprintf(why, whylen, "utilisation %.0f%% (%llu of %llu busy) >= utilisation_fail %lu%%",
                 util, busy, total, lim->utilisation_fail);
        return MH_FAIL;
    }
    if (reached(lim->listen_queue_warn, (double)lq)) {
        snprintf(why, whylen, "listen queue %llu >= listen_queue_warn %lu", lq,
                 lim->listen_queue_warn);
        return MH_WARN;
    }
    if (reached(lim->utilisation_warn, util)) {
        snprintf(why, whylen, "utilisation %.0f%% (%llu of %llu busy) >= utilisation_warn %lu%%",
                 util, busy, total, lim->utilisation_warn);
        return MH_WARN;
    }
    snprintf(why, whylen, "%llu of %llu workers busy, listen queue %llu", busy, total, lq);
    return MH_PASS;
}

/* ---------------------------------------------------------------------------------------------
 * Configuration */

struct fpm_check {
    struct mh_fcgi_endpoint socket;
    struct mh_fcgi_endpoint status_socket;
    bool has_status_socket;
    char ping_path[PATH_MAX_LEN]; /* empty: no ping measurement */
    char ping_response[RESPONSE_MAX_LEN];
    char status_path[PATH_MAX_LEN]; /* empty: no status measurement */
    struct mh_fpm_limits limits;
    int m_ping; /* measurement indexes, -1 when not reported */
    int m_status;
    struct mh_fcgi_reply reply; /* 64 KiB: kept here rather than on the worker's stack */
};

static int endpoint_key(struct mh_section *sec, const char *key, struct mh_fcgi_endpoint *ep,
                        bool *present)
{
    const char *v = mh_section_get(sec, key);
    *present = v != NULL;
    if (!v)
        return 0;
    const char *why = NULL;
    if (mh_fcgi_endpoint_parse(v, ep, &why) < 0)
        return mh_section_error(sec, key, "%s", why);
    return 0;
}

static int path_key(struct mh_section *sec, const char *key, char *out, size_t outlen)
{
    if (mh_section_string(sec, key, out, outlen) < 0)
        return -1;
    if (out[0] && out[0] != '/')
        return mh_section_error(sec, key, "must start with / (as the pool's setting does)");
    if (strpbrk(out, "?# \t"))
        return mh_section_error(sec, key, "a bare path, without query string or blanks");
    return 0;
}

/* "90" or "90%", 0..100. */
static int percent_key(struct mh_section *sec, const char *key, unsigned long *out)
{
    const char *v = mh_section_get(sec, key);
    if (!v)
        return 0;
    char buf[16];
    size_t n = strlen(v);
    if (n > 0 && v[n - 1] == '%')
        n--;
    if (n == 0 || n >= sizeof buf)
        return mh_section_error(sec, key, "expected a percentage from 0%% to 100%%");
    memcpy(buf, v, n);
    buf[n] = '\0';
    const char *why = NULL;
    if (mh_parse_uint(buf, 0, 100, out, &why) < 0)
        return mh_section_error(sec, key, "expected a percentage from 0%% to 100%%");
    return 0;
}

static int check_order(struct mh_section *sec, const char *fail_key, unsigned long warn,
                       unsigned long fail)
{
    if (warn > 0 && fail > 0 && warn > fail)
        return mh_section_error(sec, fail_key, "is below the matching _warn threshold");
    return 0;
}

static int parse_keys(struct fpm_check *f, struct mh_section *sec)
{
    bool present;
    if (endpoint_key(sec, "socket", &f->socket, &present) < 0)
        return -1;
    if (!present)
        return mh_section_error(sec, "socket",
                                "required: the pool's listen address, e.g. "
                                "/run/php/php8.2-fpm.sock or 127.0.0.1:9000");
    if (endpoint_key(sec, "status_socket", &f->status_socket, &f->has_status_socket) < 0)
        return -1;
    if (path_key(sec, "ping_path", f->ping_path, sizeof f->ping_path) < 0 ||
        mh_section_string(sec, "ping_response", f->ping_response, sizeof f->ping_response) < 0 ||
        path_key(sec, "status_path", f->status_path, sizeof f->status_path) < 0)
        return -1;
    if (mh_section_uint(sec, "listen_queue_warn", 0, 1000000, &f->limits.listen_queue_warn) < 0 ||
        mh_section_uint(sec, "listen_queue_fail", 0, 1000000, &f->limits.listen_queue_fail) < 0 ||
        percent_key(sec, "utilisation_warn", &f->limits.utilisation_warn) < 0 ||
        percent_key(sec, "utilisation_fail", &f->limits.utilisation_fail) < 0)
        return -1;
    if (check_order(sec, "listen_queue_fail", f->limits.listen_queue_warn,
                    f->limits.listen_queue_fail) < 0 ||
        check_order(sec, "utilisation_fail", f->limits.utilisation_warn,
                    f->limits.utilisation_fail) < 0)
        return -1;
    if (!f->ping_path[0] && !f->status_path[0])
        return mh_section_error(sec, "status_path",
                                "ping_path and status_path are both empty: nothing to check");
    if (f->has_status_socket && !f->status_path[0])
        return mh_section_error(sec, "status_socket", "needs a status_path");
    return 0;
}

static void set_defaults(struct fpm_check *f)
{
    /* The values Debian's www.conf suggests in its comments for ping.path and pm.status_path. */
    strcpy(f->ping_path, "/ping");
    strcpy(f->ping_response, "pong");
    strcpy(f->status_path, "/status");
    f->limits.listen_queue_warn = 1;
    f->limits.utilisation_warn = 90;
    f->m_ping = f->m_status = -1;
}

static int fpm_create(struct mh_check *check, struct mh_section *sec)
{
    struct fpm_check *f = calloc(1, sizeof *f);
    if (!f)
        return mh_section_error(sec, "type", "out of memory");
    set_defaults(f);
    if (parse_keys(f, sec) < 0) {
        free(f);
        return -1;
    }
    /* Both measurements are about this node's PHP-FPM: the section's `affects` applies to both. */
    if (f->status_path[0])
        f->m_status = mh_check_declare(check, "status", check->affects);
    if (f->ping_path[0])
        f->m_ping = mh_check_declare(check, "ping", check->affects);
    if ((f->status_path[0] && f->m_status < 0) || (f->ping_path[0] && f->m_ping < 0)) {
        free(f);
        return mh_section_error(sec, "type", "too many measurements");
    }
    check->impl = f;
    return 0;
}

static void fpm_destroy(struct mh_check *check)
{
    free(check->impl);
    check->impl = NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Running */

/* Reports a failed exchange as the stage that failed; a timeout as saturation. */
static void observe_error(struct mh_run *out, int m, const struct mh_fcgi_error *err,
                          const char *sock)
{
    if (err->timed_out)
        mh_observe(out, m, MH_FAIL, "saturated or unreachable: %s: %s (%s)", err->stage,
                   err->message, sock);
    else if (err->errnum)
        mh_observe(out, m, MH_FAIL, "%s: %s (%s)", err->stage, err->message, sock);
    else
        mh_observe(out, m, MH_FAIL, "%s: %s", err->stage, err->message);
}

/* php-fpm's own reason for an error page, from STDERR ("Primary script unknown", ...). */
static const char *fpm_reason(struct mh_fcgi_reply *r)
{
    char *e = r->dec.err;
    size_t n = strlen(e);
    while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == '\r' || e[n - 1] == ' '))
        e[--n] = '\0';
    return n ? e : "no reason given";
}

/* 404 and 403 (security.limit_extensions) mean php-fpm took the path for a script: the pool's
 * setting differs from ours. Anything else is php-fpm's own failure. */
static void observe_http_error(struct mh_run *out, int m, const char *what, const char *path,
                               const char *pool_key, struct mh_fcgi_reply *r)
{
    int code = r->cgi.status;
    if (code == 404 || code == 403)
        mh_observe(out, m, MH_FAIL,
                   "%s: HTTP %d for %s: the pool does not serve this path, check %s "
                   "(php-fpm: %s)",
                   what, code, path, pool_key, fpm_reason(r));
    else
        mh_observe(out, m, MH_FAIL, "%s: HTTP %d for %s (php-fpm: %s)", what, code, path,
                   fpm_reason(r));
}

/* Quotes at most SHOWN_MAX bytes of a body; mh_observe() replaces control characters. */
static void quote_body(const char *body, size_t len, char *buf, size_t buflen)
{
    size_t n = len < SHOWN_MAX ? len : SHOWN_MAX;
    snprintf(buf, buflen, "\"%.*s\"%s", (int)n, body, len > n ? "..." : "");
}

struct status_result {
    bool ok;
    struct mh_fpm_status st;
    struct timespec answered; /* when the status page arrived; it is judged after the ping */
};

static void fetch_status(struct fpm_check *f, const struct timespec *deadline, struct mh_run *out,
                         struct status_result *res)
{
    const struct mh_fcgi_endpoint *ep = f->has_status_socket ? &f->status_socket : &f->socket;
    struct mh_fcgi_reply *r = &f->reply;
    struct mh_fcgi_error err;
    res->ok = false;
    if (mh_fcgi_get(ep, f->status_path, "json", deadline, r, &err) < 0) {
        observe_error(out, f->m_status, &err, ep->host);
        return;
    }
    if (r->cgi.status != 200) {
        observe_http_error(out, f->m_status, "status", f->status_path, "pm.status_path", r);
        return;
    }
    if (strncmp(r->cgi.content_type, "application/json", 16) != 0) {
        mh_observe(out, f->m_status, MH_FAIL,
                   "status: %s answered with Content-Type \"%s\", not php-fpm's JSON status: "
                   "is it the pool's pm.status_path?",
                   f->status_path, r->cgi.content_type);
        return;
    }
    char why[MH_OUTPUT_MAX];
    if (mh_fpm_status_parse(r->cgi.body, r->cgi.body_len, &res->st, why, sizeof why) < 0) {
        mh_observe(out, f->m_status, MH_FAIL, "status: %s", why);
        return;
    }
    if (!f->has_status_socket)
        mh_fpm_status_discount_self(&res->st);
    res->ok = true;
    mh_now(&res->answered);
}

static void status_facts(struct mh_run *out, const struct mh_fpm_status *st)
{
    mh_run_fact(out, "pool", "%s", st->pool);
    mh_run_fact(out, "listen_queue", "%llu", (unsigned long long)st->listen_queue);
    mh_run_fact(out, "active_processes", "%llu", (unsigned long long)st->active);
    mh_run_fact(out, "idle_processes", "%llu", (unsigned long long)st->idle);
    mh_run_fact(out, "total_processes", "%llu", (unsigned long long)st->total);
    mh_run_fact(out, "max_children_reached", "%llu", (unsigned long long)st->max_children_reached);
    mh_run_fact(out, "slow_requests", "%llu", (unsigned long long)st->slow_requests);
    mh_run_fact(out, "accepted_conn", "%llu", (unsigned long long)st->accepted_conn);
}

static void judge_status(struct fpm_check *f, const struct status_result *res, bool ping_timed_out,
                         struct mh_run *out)
{
    char why[MH_OUTPUT_MAX];
    enum mh_status s = mh_fpm_status_assess(&res->st, &f->limits, ping_timed_out, why, sizeof why);
    mh_observe(out, f->m_status, s, "%s", why);
    mh_observe_value(out, f->m_status, mh_fpm_utilisation(&res->st), "%");
    status_facts(out, &res->st);
}

/* Returns true when the ping timed out: the request waited in the queue until the deadline. */
static bool run_ping(struct fpm_check *f, const struct timespec *deadline, struct mh_run *out)
{
    struct mh_fcgi_reply *r = &f->reply;
    struct mh_fcgi_error err;
    struct timespec start;
    mh_now(&start);
    if (mh_fcgi_get(&f->socket, f->ping_path, "", deadline, r, &err) < 0) {
        observe_error(out, f->m_ping, &err, f->socket.host);
        return err.timed_out;
    }
    double ms = mh_ms_since(&start);
    if (r->cgi.status != 200) {
        observe_http_error(out, f->m_ping, "ping", f->ping_path, "ping.path", r);
        return false;
    }
    size_t want = strlen(f->ping_response);
    if (r->cgi.body_len != want || memcmp(r->cgi.body, f->ping_response, want) != 0) {
        char got[SHOWN_MAX + 8];
        quote_body(r->cgi.body, r->cgi.body_len, got, sizeof got);
        mh_observe(out, f->m_ping, MH_FAIL, "ping: expected \"%s\", received %s", f->ping_response,
                   got);
        return false;
    }
    mh_observe(out, f->m_ping, MH_PASS, "%s", f->ping_response);
    mh_observe_value(out, f->m_ping, ms, "ms");
    return false;
}

/* The status request gets at most half the time left when a ping follows, so that a ping stuck
 * in a saturated queue cannot leave status without time, nor the other way round. */
static void status_deadline(const struct fpm_check *f, const struct timespec *deadline,
                            struct timespec *out)
{
    *out = *deadline;
    if (f->m_ping < 0)
        return;
    mh_ms half = mh_deadline_left(deadline) / 2;
    struct timespec mid;
    mh_deadline_in(&mid, half);
    if (mid.tv_sec < out->tv_sec || (mid.tv_sec == out->tv_sec && mid.tv_nsec < out->tv_nsec))
        *out = mid;
}

static void fpm_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    struct fpm_check *f = check->impl;
    struct status_result res = {0};
    if (f->m_status >= 0) {
        struct timespec status_dl;
        status_deadline(f, deadline, &status_dl);
        fetch_status(f, &status_dl, out, &res);
    }
    bool ping_waited = false;
    if (f->m_ping >= 0)
        ping_waited = run_ping(f, deadline, out);
    /* Judged after the ping: on a unix socket php-fpm reports no listen queue, and a ping that
     * waited until the deadline is the evidence that requests queue. */
    if (res.ok) {
        judge_status(f, &res, ping_waited, out);
        /* The page answered in time even if the ping then ran to the deadline. */
        mh_observe_answered_at(out, f->m_status, &res.answered);
    }
}

const struct mh_check_type mh_check_fpm = {
    .name = "fpm",
    .component_type = "component",
    .default_affects = MH_AFFECTS_NODE,
    .create = fpm_create,
    .run = fpm_run,
    .destroy = fpm_destroy,
};
