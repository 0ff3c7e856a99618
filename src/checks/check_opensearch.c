/* check_opensearch.c - the `type = opensearch` check: Magento 2.4's catalog search engine.
 *
 * Since Magento 2.4 OpenSearch (or Elasticsearch 7/8) is mandatory: without it category pages and
 * search fail while the home page still loads. Each [check.NAME] of this type watches one cluster
 * over HTTP(S) with libcurl, through ONE easy handle kept for the life of the check, so that its
 * connection stays alive between runs and never more than one is open (CURLOPT_MAXCONNECTS 1).
 * It reports three measurements:
 *   connectivity  the round trip of GET /_cluster/health; value: its time in ms (connection set-up
 *                 included when a new connection was needed). Fails when no HTTP answer came, or
 *                 the answer was 401/403. affects = `affects` (default node, region).
 *   cluster       that health: green passes, yellow is `yellow` (default warn), red fails, and a
 *                 request that timed out on the server ("timed_out": true, HTTP 408) fails.
 *                 Value: active_shards_percent_as_number. affects = `cluster_affects` (region).
 *   index         HEAD /{index_prefix}_product_{store} for every store in `stores`: Magento
 *                 searches through that alias; 404 is "catalog index magento2_product_1 missing".
 *                 affects = `index_affects` (default node, region).
 * Failures name the stage: connect (DNS included), tls, auth (401, 403), http (no complete answer,
 * or "http NNN" for another status), parse (a body that is not the JSON expected, or over 64 KiB).
 *
 * Bounds: each request gets what is left of the run (CURLOPT_TIMEOUT_MS,
 * CURLOPT_CONNECTTIMEOUT_MS); bodies and headers are capped at 64 KiB by the write callbacks. Host
 * names are NOT resolved by libcurl: the check looks the name up with mh_resolve (getaddrinfo_a,
 * waited on until the deadline, one lookup per check however long the resolver hangs) and pins the
 * addresses in the handle (CURLOPT_RESOLVE), so the TLS certificate is still verified against the
 * name. A name is looked up again after any failed transfer, so a cluster whose addresses change (a
 * blue/green deployment of Amazon OpenSearch Service) is followed on the next run.
 *
 * Auth: basic (`username`, password_file/password_env) or AWS SigV4 (`aws_sigv4 = es:REGION`) with
 * keys from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or from
 * `aws_credentials_file` (re-read every run, so refreshed temporary keys are picked up). No secret
 * appears in an output or fact: server text is scrubbed of them too. */
#include "mh_aws_credentials.h"
#include "mh_check.h"
#include "mh_check_text.h"
#include "mh_opensearch_health.h"
#include "mh_resolve.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define BODY_MAX     (64 * 1024)
#define HEADERS_MAX  (64 * 1024)
#define STORES_MAX   16
#define HOST_MAX     256
#define PATH_MAX_LEN 4096
#define URL_MAX      1024
/* Texts are composed and scrubbed of secrets at this size, then cut to MH_OUTPUT_MAX by
 * mh_observe(): a cut before the scrub could leave the first part of a secret visible. */
#define ERR_MAX       1024
#define REASON_MAX    768
#define MARGIN_MAX_MS 25 /* kept free before the run's deadline for reporting */
#define PIN_ADDRS_MAX 8
#define DEFAULT_PORT  9200

struct os_conf {
    bool https;
    char host[HOST_MAX]; /* a name or a numeric address, without brackets */
    unsigned long port;
    char base_path[512]; /* "" or "/prefix", without a trailing slash */
    char username[128];
    char *password; /* secret; NULL without basic auth */
    char tls_ca[PATH_MAX_LEN];
    bool tls_verify;
    char aws_region[64];              /* non-empty: sign requests with SigV4 */
    char aws_file[PATH_MAX_LEN];      /* credentials file; empty: the environment */
    char aws_profile[128];            /* profile in that file */
    char index_prefix[64];            /* Magento's index_prefix */
    unsigned long stores[STORES_MAX]; /* store ids whose product alias must exist */
    int n_stores;
    enum mh_status yellow; /* what a yellow cluster counts as */
    mh_ms connect_timeout; /* 0: whatever is left of the run */
};

/* Owned by the check; touched only from create(), run() and destroy(), which never overlap. */
struct os_impl {
    struct os_conf conf;
    int i_conn, i_cluster, i_index; /* measurement indexes */
    CURL *curl;                     /* the one handle; its cache holds the one connection */
    char base_url[URL_MAX];         /* scheme://host:port/base, no credentials */
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *headers;    /* Accept, and x-amz-security-token with a session token */
    struct curl_slist *pin;        /* the CURLOPT_RESOLVE entry in use */
    bool need_lookup;              /* look the name up before the next request */
    struct mh_lookup *lookup;      /* a lookup an earlier run left running */
    struct mh_aws_credentials aws; /* the keys in use (SigV4 only) */
    unsigned long connects;        /* connections opened so far */
    /* The reply being received; reset before each request. */
    char body[BODY_MAX];
    size_t body_len;
    bool body_over;
    size_t header_bytes;
    bool headers_over;
    bool tls_started; /* a TLS handshake began: the TCP connection was up */
};

/* What came back from one request that got an HTTP answer. */
struct reply {
    long code;
    double ms;
    bool new_connection;
};

/* ---------- small helpers ---------- */

/* mh_observe() with every secret scrubbed from the text. */
static void observe(struct os_impl *im, struct mh_run *out, int i, enum mh_status st,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void observe(struct os_impl *im, struct mh_run *out, int i, enum mh_status st,
                    const char *fmt, ...)
{
    char text[2 * ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    mh_scrub(text, im->conf.password);
    mh_scrub(text, im->aws.secret_access_key);
    mh_scrub(text, im->aws.session_token);
    mh_observe(out, i, st, "%s", text);
}

/* mh_run_fact() for text a server chose (the cluster's name), scrubbed like an output. */
static void server_fact(struct os_impl *im, struct mh_run *out, const char *key, const char *value)
{
    char text[ERR_MAX];
    snprintf(text, sizeof text, "%s", value);
    mh_scrub(text, im->conf.password);
    mh_scrub(text, im->aws.secret_access_key);
    mh_scrub(text, im->aws.session_token);
    mh_run_fact(out, key, "%s", text);
}

static void fail_all(struct os_impl *im, struct mh_run *out, const char *why)
{
    observe(im, out, im->i_conn, MH_FAIL, "%s", why);
    observe(im, out, im->i_cluster, MH_FAIL, "%s", why);
    observe(im, out, im->i_index, MH_FAIL, "%s", why);
}

/* The deadline the requests work to: a little before the framework's, so that reporting fits. */
static void inner_deadline(struct timespec *out, const struct timespec *deadline, mh_ms timeout)
{
    mh_ms margin = timeout / 20 < MARGIN_MAX_MS ? timeout / 20 : MARGIN_MAX_MS;
    *out = *deadline;
    out->tv_nsec -= (long)(margin % 1000) * 1000000L;
    out->tv_sec -= (time_t)(margin / 1000);
    if (out->tv_nsec < 0) {
        out->tv_nsec += 1000000000L;
        out->tv_sec--;
    }
}

/* Wipes each entry before freeing: a list may hold the session token. */
static void free_list(struct curl_slist *list)
{
    for (struct curl_slist *l = list; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(list);
}

/* ---------- receiving ---------- */

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    struct os_impl *im = user;
    size_t len = size * n;
    if (len > BODY_MAX - im->body_len) {
        im->body_over = true;
        return 0; /* anything but len aborts the transfer (len > 0 here) */
    }
    memcpy(im->body + im->body_len, data, len);
    im->body_len += len;
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    struct os_impl *im = user;
    size_t len = size * n;
    im->header_bytes += len;
    if (im->header_bytes > HEADERS_MAX) {
        im->headers_over = true;
        return 0; /* len > 0 here */
    }
    return len;
}

/* libcurl calls this when a TLS handshake starts, i.e. once the TCP connection is up. */
static CURLcode on_tls_start(CURL *curl, void *ssl_ctx, void *user)
{
    (void)curl;
    (void)ssl_ctx;
    ((struct os_impl *)user)->tls_started = true;
    return CURLE_OK;
}

/* ---------- name resolution ---------- */

/* Appends "addr" (IPv6 in brackets) to the pin entry at `*n`. */
static void add_address(const struct addrinfo *ai, char *entry, size_t cap, size_t *n, int *count)
{
    char addr[INET6_ADDRSTRLEN];
    const void *a = ai->ai_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        !inet_ntop(ai->ai_family, a, addr, sizeof addr))
        return;
    char item[INET6_ADDRSTRLEN + 4];
    snprintf(item, sizeof item, ai->ai_family == AF_INET6 ? "[%s]" : "%s", addr);
    if (strstr(entry, item)) /* getaddrinfo lists an address once per socket type at times */
        return;
    int k = snprintf(entry + *n, cap - *n, "%s%s", *count ? "," : "", item);
    if (k > 0 && (size_t)k < cap - *n) {
        *n += (size_t)k;
        (*count)++;
    }
}

/* Makes "HOST:PORT:ADDR[,ADDR...]" from a lookup and hands it to libcurl. */
static int pin_addresses(struct os_impl *im, const struct addrinfo *res, char *err)
{
    char entry[HOST_MAX + 16 + PIN_ADDRS_MAX * (INET6_ADDRSTRLEN + 3)];
    int count = 0;
    size_t n = (size_t)snprintf(entry, sizeof entry, "%s:%lu:", im->conf.host, im->conf.port);
    for (const struct addrinfo *ai = res; ai && count < PIN_ADDRS_MAX; ai = ai->ai_next)
        add_address(ai, entry, sizeof entry, &n, &count);
    struct curl_slist *pin = count ? curl_slist_append(NULL, entry) : NULL;
    if (!pin || curl_easy_setopt(im->curl, CURLOPT_RESOLVE, pin) != CURLE_OK) {
        mh_say(err, ERR_MAX, "connect: %s: %s", im->conf.host,
               count ? "out of memory" : "no usable address");
        curl_slist_free_all(pin);
        return -1;
    }
    curl_slist_free_all(im->pin); /* libcurl is done with the old list once a new one is set */
    im->pin = pin;
    return 0;
}

/* Looks the host name up when needed, bounded by the deadline. */
static int resolve(struct os_impl *im, const struct timespec *deadline, char *err)
{
    if (!im->need_lookup)
        return 0;
    struct addrinfo *res;
    char why[ERR_MAX];
    enum mh_lookup_result r =
        mh_lookup_host(&im->lookup, im->conf.host, deadline, &res, why, sizeof why);
    if (r == MH_LOOKUP_TIMEOUT) {
        mh_say(err, ERR_MAX, "connect: timed out resolving %s (no answer from DNS in time)",
               im->conf.host);
        return -1;
    }
    if (r != MH_LOOKUP_OK) {
        mh_say(err, ERR_MAX, "connect: cannot resolve %s", why);
        return -1;
    }
    int rc = pin_addresses(im, res, err);
    freeaddrinfo(res);
    if (rc == 0)
        im->need_lookup = false;
    return rc;
}

/* ---------- one request ---------- */

static bool is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_ENGINE_INITFAILED:
        return true;
    default:
        return false;
    }
}

/* Names the stage a failed transfer stopped in: "connect:", "tls:", "http:" or "parse:". The
 * request went out once PRETRANSFER is stamped (on a reused connection the only stamp: libcurl
 * reports CONNECT as 0 there, and on a new one it stamps CONNECT only after the TLS handshake). */
static void describe_failure(struct os_impl *im, CURLcode rc, const char *req, double ms, char *err)
{
    const char *detail = im->errbuf[0] ? im->errbuf : curl_easy_strerror(rc);
    curl_off_t sent = 0;
    curl_easy_getinfo(im->curl, CURLINFO_PRETRANSFER_TIME_T, &sent);
    bool timed_out = rc == CURLE_OPERATION_TIMEDOUT && sent == 0;
    const char *fmt = strchr(im->conf.host, ':') ? "[%s]:%lu" : "%s:%lu";
    char where[HOST_MAX + 16];
    snprintf(where, sizeof where, fmt, im->conf.host, im->conf.port);
    if (im->body_over)
        mh_say(err, ERR_MAX, "parse: body over %d KiB (%s)", BODY_MAX / 1024, req);
    else if (im->headers_over)
        mh_say(err, ERR_MAX, "http: headers over %d KiB (%s)", HEADERS_MAX / 1024, req);
    else if (timed_out && im->tls_started)
        mh_say(err, ERR_MAX, "tls: no TLS handshake with %s within %.0f ms", where, ms);
    else if (timed_out)
        mh_say(err, ERR_MAX, "connect: no connection to %s within %.0f ms", where, ms);
    else if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
        mh_say(err, ERR_MAX, "connect: %s", detail);
    else if (is_tls_error(rc))
        mh_say(err, ERR_MAX, "tls: %s", detail);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        mh_say(err, ERR_MAX, "http: timed out after %.0f ms without a complete answer (%s)", ms,
               req);
    else
        mh_say(err, ERR_MAX, "http: %s (%s)", detail, req);
}

/* Sends one GET (or HEAD) for `path` below the base URL, bounded by `deadline`. Returns 0 when an
 * HTTP answer arrived, whatever its status; -1 with the stage and reason in `err` otherwise. */
static int request(struct os_impl *im, bool head, const char *path, const struct timespec *deadline,
                   struct reply *rep, char *err)
{
    char url[URL_MAX + 256], req[300];
    snprintf(req, sizeof req, "%s %s%s", head ? "HEAD" : "GET", im->conf.base_path, path);
    mh_ms left = mh_deadline_left(deadline);
    if (left <= 0) {
        mh_say(err, ERR_MAX, "http: no time left before the check's timeout (%s)", req);
        return -1;
    }
    mh_ms connect = im->conf.connect_timeout > 0 && im->conf.connect_timeout < left
                        ? im->conf.connect_timeout
                        : left;
    snprintf(url, sizeof url, "%s%s", im->base_url, path);
    im->errbuf[0] = '\0';
    im->body_len = im->header_bytes = 0;
    im->body_over = im->headers_over = im->tls_started = false;
    curl_easy_setopt(im->curl, CURLOPT_URL, url);
    if (head)
        curl_easy_setopt(im->curl, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(im->curl, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(im->curl, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(im->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)connect);
    CURLcode rc = curl_easy_perform(im->curl);
    long connects = 0;
    curl_off_t total = 0;
    curl_easy_getinfo(im->curl, CURLINFO_NUM_CONNECTS, &connects);
    curl_easy_getinfo(im->curl, CURLINFO_TOTAL_TIME_T, &total);
    im->connects += connects > 0 ? (unsigned long)connects : 0;
    if (rc != CURLE_OK) {
        describe_failure(im, rc, req, (double)total / 1000.0, err);
        im->need_lookup = !mh_is_numeric_host(im->conf.host);
        return -1;
    }
    curl_easy_getinfo(im->curl, CURLINFO_RESPONSE_CODE, &rep->code);
    rep->ms = (double)total / 1000.0;
    rep->new_connection = connects > 0;
    return 0;
}

/* ---------- AWS keys ---------- */

/* Hands the keys to libcurl: SigV4 signs with the key pair, a session token goes in a header
 * that libcurl also signs (x-amz-*). */
static int apply_aws(struct os_impl *im, const struct mh_aws_credentials *keys)
{
    struct curl_slist *headers = curl_slist_append(NULL, "Accept: application/json");
    if (headers && keys->session_token[0]) {
        char line[MH_AWS_TOKEN_MAX + 32];
        snprintf(line, sizeof line, "x-amz-security-token: %s", keys->session_token);
        struct curl_slist *more = curl_slist_append(headers, line);
        explicit_bzero(line, sizeof line);
        if (!more)
            free_list(headers);
        headers = more;
    }
    /* The header list last: once curl holds it, it must not be freed here. */
    if (!headers || curl_easy_setopt(im->curl, CURLOPT_USERNAME, keys->access_key_id) != CURLE_OK ||
        curl_easy_setopt(im->curl, CURLOPT_PASSWORD, keys->secret_access_key) != CURLE_OK ||
        curl_easy_setopt(im->curl, CURLOPT_HTTPHEADER, headers) != CURLE_OK) {
        free_list(headers);
        return -1;
    }
    free_list(im->headers);
    im->headers = headers;
    if (&im->aws != keys)
        im->aws = *keys;
    return 0;
}

/* Re-reads aws_credentials_file, so that keys a refresher rotates there are used. An unreadable
 * file leaves the last good keys in use and says so in the details. */
static void refresh_aws(struct os_impl *im, struct mh_run *out)
{
    if (!im->conf.aws_region[0] || !im->conf.aws_file[0])
        return;
    const char *why;
    char err[ERR_MAX];
    char *text = mh_secret_read_file(im->conf.aws_file, &why);
    struct mh_aws_credentials keys;
    if (!text) {
        mh_run_fact(out, "aws_credentials", "%s: %s; using the last keys read", im->conf.aws_file,
                    why);
        return;
    }
    int rc =
        mh_aws_credentials_parse(text, strlen(text), im->conf.aws_profile, &keys, err, sizeof err);
    mh_secret_free(text);
    if (rc < 0)
        mh_run_fact(out, "aws_credentials", "%s: %s; using the last keys read", im->conf.aws_file,
                    err);
    else if (!mh_aws_credentials_equal(&keys, &im->aws) && apply_aws(im, &keys) < 0)
        mh_run_fact(out, "aws_credentials", "out of memory; using the last keys read");
    mh_aws_credentials_wipe(&keys);
}

/* ---------- the measurements ---------- */

static void report_health_facts(struct os_impl *im, struct mh_run *out,
                                const struct mh_os_health *h)
{
    if (h->cluster_name[0])
        server_fact(im, out, "cluster_name", h->cluster_name);
    if (h->nodes >= 0)
        mh_run_fact(out, "number_of_nodes", "%lld", (long long)h->nodes);
    if (h->data_nodes >= 0)
        mh_run_fact(out, "number_of_data_nodes", "%lld", (long long)h->data_nodes);
    if (h->unassigned_shards >= 0)
        mh_run_fact(out, "unassigned_shards", "%lld", (long long)h->unassigned_shards);
}

/* The reason in an error body, or "(no body)". */
static void reason_of(struct os_impl *im, char *out, size_t outlen)
{
    mh_os_error_reason(im->body, im->body_len, out, outlen);
    if (!out[0])
        snprintf(out, outlen, "(no body)");
}

/* Judges the _cluster/health answer. 408 carries the same body with "timed_out": true. */
static void judge_cluster(struct os_impl *im, const struct reply *rep, struct mh_run *out)
{
    char why[ERR_MAX], reason[REASON_MAX], req[600];
    snprintf(req, sizeof req, "GET %s/_cluster/health", im->conf.base_path);
    if (rep->code != 200 && rep->code != 408) {
        reason_of(im, reason, sizeof reason);
        observe(im, out, im->i_cluster, MH_FAIL, "http %ld: %s: %s", rep->code, req, reason);
        return;
    }
    struct mh_os_health h;
    if (mh_os_health_parse(im->body, im->body_len, &h, why, sizeof why) < 0) {
        observe(im, out, im->i_cluster, MH_FAIL, "parse: %s (%s)", why, req);
        return;
    }
    report_health_facts(im, out, &h);
    enum mh_status st = mh_os_health_assess(&h, im->conf.yellow, why, sizeof why);
    observe(im, out, im->i_cluster, st, "%s", why);
    if (h.has_active_percent)
        mh_observe_value(out, im->i_cluster, h.active_percent, "%");
}

/* Appends `name` to a comma-separated list. */
static void list_add(char *list, size_t cap, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, cap - n, "%s%s", n ? ", " : "", name);
}

/* HEAD /{prefix}_product_{store} for each store; 200 is there, 404 is missing. Returns false
 * with the reason in `err` when a look-up could not be judged. */
static bool find_aliases(struct os_impl *im, const struct timespec *deadline, char *present,
                         char *missing, size_t cap, int *n_missing, char *err)
{
    for (int i = 0; i < im->conf.n_stores; i++) {
        char alias[96], path[100];
        snprintf(alias, sizeof alias, "%s_product_%lu", im->conf.index_prefix, im->conf.stores[i]);
        snprintf(path, sizeof path, "/%s", alias);
        struct reply rep;
        if (request(im, true, path, deadline, &rep, err) < 0)
            return false;
        if (rep.code == 200) {
            list_add(present, cap, alias);
        } else if (rep.code == 404) {
            list_add(missing, cap, alias);
            (*n_missing)++;
        } else {
            mh_say(err, ERR_MAX, "%s%ld: HEAD %s%s",
                   rep.code == 401 || rep.code == 403 ? "auth: http " : "http ", rep.code,
                   im->conf.base_path, path);
            return false;
        }
    }
    return true;
}

static void check_indexes(struct os_impl *im, const struct timespec *deadline, struct mh_run *out)
{
    char present[ERR_MAX] = "", missing[ERR_MAX] = "", err[ERR_MAX];
    int n_missing = 0;
    if (!find_aliases(im, deadline, present, missing, sizeof present, &n_missing, err))
        observe(im, out, im->i_index, MH_FAIL, "%s", err);
    else if (n_missing)
        observe(im, out, im->i_index, MH_FAIL, "catalog index%s %s missing",
                n_missing > 1 ? "es" : "", missing);
    else
        observe(im, out, im->i_index, MH_PASS, "catalog index%s %s present",
                im->conf.n_stores > 1 ? "es" : "", present);
}

static void os_run(struct mh_check *check, const struct timespec *run_deadline, struct mh_run *out)
{
    struct os_impl *im = check->impl;
    struct timespec deadline;
    inner_deadline(&deadline, run_deadline, check->timeout);
    char err[ERR_MAX], reason[REASON_MAX];
    mh_run_fact(out, "endpoint", "%s", im->base_url);
    refresh_aws(im, out);
    struct reply rep;
    if (resolve(im, &deadline, err) < 0 ||
        request(im, false, "/_cluster/health", &deadline, &rep, err) < 0) {
        fail_all(im, out, err);
        mh_run_fact(out, "connects", "%lu", im->connects);
        return;
    }
    mh_run_fact(out, "connects", "%lu", im->connects);
    if (rep.code == 401 || rep.code == 403) {
        reason_of(im, reason, sizeof reason);
        mh_say(err, ERR_MAX, "auth: http %ld: GET %s/_cluster/health: %s", rep.code,
               im->conf.base_path, reason);
        fail_all(im, out, err);
        return;
    }
    observe(im, out, im->i_conn, MH_PASS, "HTTP %ld in %.2f ms (%s connection)", rep.code, rep.ms,
            rep.new_connection ? "new" : "reused");
    mh_observe_value(out, im->i_conn, rep.ms, "ms");
    judge_cluster(im, &rep, out);
    check_indexes(im, &deadline, out);
}

/* ---------- configuration ---------- */

/* Letters, digits, '.' and '-': a DNS name, safe in a URL and in a CURLOPT_RESOLVE entry. */
static bool valid_host_name(const char *h)
{
    if (!*h)
        return false;
    for (; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '.' || *h == '-'))
            return false;
    return true;
}

static int set_host(struct mh_section *sec, const char *key, struct os_conf *c, const char *host)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* an IPv6 literal from a URL */
        host++;
        n -= 2;
    }
    if (n >= sizeof c->host)
        return mh_section_error(sec, key, "host name too long");
    memcpy(c->host, host, n);
    c->host[n] = '\0';
    if (!mh_is_numeric_host(c->host) && !valid_host_name(c->host))
        return mh_section_error(sec, key, "\"%.100s\" is not a host name or address", c->host);
    return 0;
}

/* Reads one part of a parsed URL; NULL when absent. The caller frees it with curl_free(). */
static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
    char *v = NULL;
    return curl_url_get(u, part, &v, flags) == CURLUE_OK ? v : NULL;
}

static int check_url_parts(struct mh_section *sec, CURLU *u, struct os_conf *c)
{
    static const struct {
        CURLUPart part;
        const char *what;
    } refused[] = {
        {CURLUPART_USER, "credentials in the URL; use username and password_file"},
        {CURLUPART_QUERY, "a query string"},
        {CURLUPART_FRAGMENT, "a fragment"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *v = url_part(u, refused[i].part, 0);
        curl_free(v);
        if (v)
            return mh_section_error(sec, "url", "%s is not accepted", refused[i].what);
    }
    char *scheme = url_part(u, CURLUPART_SCHEME, 0);
    bool http = scheme && strcmp(scheme, "http") == 0, https = scheme && !strcmp(scheme, "https");
    curl_free(scheme);
    if (!http && !https)
        return mh_section_error(sec, "url", "the scheme must be http or https");
    c->https = https;
    return 0;
}

/* url = http(s)://host[:port][/base] */
static int parse_url(struct mh_section *sec, const char *url, struct os_conf *c)
{
    CURLU *u = curl_url();
    if (!u)
        return mh_section_error(sec, "url", "out of memory");
    int rc = -1;
    char *host = NULL, *port = NULL, *path = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        mh_section_error(sec, "url", "\"%.200s\" is not a valid URL", url);
    else if (check_url_parts(sec, u, c) == 0 && (host = url_part(u, CURLUPART_HOST, 0)) &&
             (port = url_part(u, CURLUPART_PORT, CURLU_DEFAULT_PORT)) &&
             (path = url_part(u, CURLUPART_PATH, 0)) && set_host(sec, "url", c, host) == 0) {
        c->port = strtoul(port, NULL, 10);
        size_t n = strlen(path);
        while (n > 0 && path[n - 1] == '/')
            n--;
        if (n >= sizeof c->base_path)
            mh_section_error(sec, "url", "path too long");
        else {
            memcpy(c->base_path, path, n);
            c->base_path[n] = '\0';
            rc = 0;
        }
    }
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_url_cleanup(u);
    return rc;
}

/* host = [http(s)://]name and port = N, as Magento's opensearch_server_hostname and _port. */
static int parse_host_port(struct mh_section *sec, const char *host, struct os_conf *c)
{
    c->port = DEFAULT_PORT;
    if (mh_section_uint(sec, "port", 1, 65535, &c->port) < 0)
        return -1;
    if (strncasecmp(host, "https://", 8) == 0) {
        c->https = true;
        host += 8;
    } else if (strncasecmp(host, "http://", 7) == 0) {
        host += 7;
    }
    return set_host(sec, "host", c, host);
}

static int parse_endpoint(struct mh_section *sec, struct os_conf *c)
{
    const char *url = mh_section_get(sec, "url"), *host = mh_section_get(sec, "host");
    if (url && (host || mh_section_get(sec, "port")))
        return mh_section_error(sec, "url", "set either url or host (and port), not both");
    if (url)
        return parse_url(sec, url, c);
    return parse_host_port(sec, host ? host : "localhost", c); /* Magento's default */
}

static int parse_tls(struct mh_section *sec, struct os_conf *c)
{
    c->tls_verify = true;
    if (mh_section_string(sec, "tls_ca", c->tls_ca, sizeof c->tls_ca) < 0 ||
        mh_section_bool(sec, "tls_verify", &c->tls_verify) < 0)
        return -1;
    if (!c->https && (c->tls_ca[0] || mh_section_get(sec, "tls_verify")))
        return mh_section_error(sec, c->tls_ca[0] ? "tls_ca" : "tls_verify",
                                "needs an https url (or host = https://...)");
    return 0;
}

/* aws_sigv4 = es:REGION, with keys from aws_credentials_file or the environment. */
static int parse_aws(struct mh_section *sec, struct os_impl *im)
{
    struct os_conf *c = &im->conf;
    const char *v = mh_section_get(sec, "aws_sigv4");
    snprintf(c->aws_profile, sizeof c->aws_profile, "default");
    if (mh_section_string(sec, "aws_profile", c->aws_profile, sizeof c->aws_profile) < 0 ||
        mh_section_string(sec, "aws_credentials_file", c->aws_file, sizeof c->aws_file) < 0)
        return -1;
    if (!v) {
        if (c->aws_file[0] || mh_section_get(sec, "aws_profile"))
            return mh_section_error(sec, c->aws_file[0] ? "aws_credentials_file" : "aws_profile",
                                    "set, but aws_sigv4 is not");
        return 0;
    }
    if (strncmp(v, "es:", 3) != 0 || !valid_host_name(v + 3) ||
        strlen(v + 3) >= sizeof c->aws_region)
        return mh_section_error(
            sec, "aws_sigv4", "expected es:REGION, e.g. es:us-east-1 (Amazon OpenSearch Service)");
    snprintf(c->aws_region, sizeof c->aws_region, "%s", v + 3);
    if (c->username[0] || c->password)
        return mh_section_error(sec, "aws_sigv4", "set either aws_sigv4 or username, not both");
    char err[ERR_MAX];
    if (c->aws_file[0]) {
        const char *why;
        char *text = mh_secret_read_file(c->aws_file, &why);
        if (!text)
            return mh_section_error(sec, "aws_credentials_file", "cannot read \"%.200s\": %s",
                                    c->aws_file, why);
        int rc =
            mh_aws_credentials_parse(text, strlen(text), c->aws_profile, &im->aws, err, sizeof err);
        mh_secret_free(text);
        if (rc < 0)
            return mh_section_error(sec, "aws_credentials_file", "%s", err);
    } else if (mh_aws_credentials_from_env(&im->aws, err, sizeof err) < 0) {
        return mh_section_error(sec, "aws_sigv4",
                                "no keys: %s (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                                "or aws_credentials_file)",
                                err);
    }
    return 0;
}

static int parse_auth(struct mh_section *sec, struct os_impl *im)
{
    struct os_conf *c = &im->conf;
    if (mh_section_string(sec, "username", c->username, sizeof c->username) < 0 ||
        mh_section_secret(sec, "password", &c->password) < 0)
        return -1;
    if (!c->username[0] != !c->password)
        return mh_section_error(sec, c->username[0] ? "username" : "password_file",
                                "basic auth needs both username and password_file or password_env");
    if (strchr(c->username, ':'))
        return mh_section_error(sec, "username", "must not contain ':'");
    return parse_aws(sec, im);
}

/* Magento's index_prefix: OpenSearch index names are lowercase, without \ / * ? " < > | , # or
 * spaces, and do not start with - _ +. Kept to a URL-safe subset. */
static int parse_prefix(struct mh_section *sec, struct os_conf *c)
{
    snprintf(c->index_prefix, sizeof c->index_prefix, "magento2");
    if (mh_section_string(sec, "index_prefix", c->index_prefix, sizeof c->index_prefix) < 0)
        return -1;
    const char *p = c->index_prefix;
    bool ok = *p && *p != '-' && *p != '_' && *p != '+' && *p != '.';
    for (; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
             *p == '.';
    if (!ok)
        return mh_section_error(sec, "index_prefix",
                                "use lowercase letters, digits, '_', '-' and '.' only");
    return 0;
}

/* stores = 1, 2, 3: Magento store ids (each has its own product index). */
static int parse_stores(struct mh_section *sec, struct os_conf *c)
{
    const char *v = mh_section_get(sec, "stores");
    c->n_stores = 0;
    if (!v) {
        c->stores[c->n_stores++] = 1;
        return 0;
    }
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        char item[16];
        size_t n = strcspn(p, " \t,");
        unsigned long id;
        const char *why = "too long";
        if (n >= sizeof item)
            return mh_section_error(sec, "stores", "invalid store id: %s", why);
        memcpy(item, p, n);
        item[n] = '\0';
        p += n;
        if (mh_parse_uint(item, 1, 65535, &id, &why) < 0)
            return mh_section_error(sec, "stores", "invalid store id \"%s\": %s (1..65535)", item,
                                    why);
        for (int i = 0; i < c->n_stores; i++)
            if (c->stores[i] == id)
                return mh_section_error(sec, "stores", "store %lu is listed twice", id);
        if (c->n_stores == STORES_MAX)
            return mh_section_error(sec, "stores", "at most %d stores", STORES_MAX);
        c->stores[c->n_stores++] = id;
    }
    if (c->n_stores == 0)
        return mh_section_error(sec, "stores", "list at least one store id, e.g. 1");
    return 0;
}

static int parse_yellow(struct mh_section *sec, struct os_conf *c)
{
    const char *v = mh_section_get(sec, "yellow");
    c->yellow = MH_WARN;
    if (!v || strcmp(v, "warn") == 0)
        return 0;
    if (strcmp(v, "pass") == 0)
        c->yellow = MH_PASS;
    else if (strcmp(v, "fail") == 0)
        c->yellow = MH_FAIL;
    else
        return mh_section_error(sec, "yellow", "expected warn, pass or fail");
    return 0;
}

static int parse_conf(struct mh_section *sec, struct os_impl *im)
{
    struct os_conf *c = &im->conf;
    if (parse_endpoint(sec, c) < 0 || parse_tls(sec, c) < 0 || parse_auth(sec, im) < 0 ||
        parse_prefix(sec, c) < 0 || parse_stores(sec, c) < 0 || parse_yellow(sec, c) < 0 ||
        mh_section_duration(sec, "connect_timeout", &c->connect_timeout) < 0)
        return -1;
    const char *host_fmt = strchr(c->host, ':') ? "%s://[%s]:%lu%s" : "%s://%s:%lu%s";
    int n = snprintf(im->base_url, sizeof im->base_url, host_fmt, c->https ? "https" : "http",
                     c->host, c->port, c->base_path);
    if (n < 0 || (size_t)n >= sizeof im->base_url)
        return mh_section_error(sec, mh_section_get(sec, "url") ? "url" : "host", "too long");
    im->need_lookup = !mh_is_numeric_host(c->host);
    return 0;
}

static int declare_measurements(struct mh_check *check, struct mh_section *sec, struct os_impl *im)
{
    unsigned cluster = MH_AFFECTS_REGION, index = MH_AFFECTS_NODE | MH_AFFECTS_REGION;
    if (mh_section_affects(sec, "cluster_affects", &cluster) < 0 ||
        mh_section_affects(sec, "index_affects", &index) < 0)
        return -1;
    im->i_conn = mh_check_declare(check, "connectivity", check->affects);
    im->i_cluster = mh_check_declare(check, "cluster", cluster);
    im->i_index = mh_check_declare(check, "index", index);
    return 0;
}

/* ---------- the libcurl handle ---------- */

/* libcurl's global set-up is not thread-safe on every build; create() runs on the main thread. */
static int global_init(struct mh_section *sec)
{
    static bool done;
    if (done)
        return 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return mh_section_error(sec, "type", "libcurl failed to initialise");
    done = true;
    return 0;
}

/* Everything that stays the same from request to request. */
static CURLcode setup_handle(struct os_impl *im)
{
    CURL *h = im->curl;
    const struct os_conf *c = &im->conf;
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_MAXCONNECTS, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROXY, ""); /* never an http_proxy/https_proxy from the environment */
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_USERAGENT, "magento-healthd/" MH_VERSION);
    SET(CURLOPT_ERRORBUFFER, im->errbuf);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, im);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, im);
    /* No CURLOPT_MAXFILESIZE: Elasticsearch answers HEAD with the Content-Length of the GET body
     * (a product index's mapping can pass 64 KiB); on_body() caps what really arrives. */
    /* Names are pinned by resolve(); should libcurl ever resolve one, a timed-out lookup thread
     * is left behind instead of joined. */
    SET(CURLOPT_QUICK_EXIT, 1L);
    if (c->https) {
        SET(CURLOPT_SSL_VERIFYPEER, c->tls_verify ? 1L : 0L);
        SET(CURLOPT_SSL_VERIFYHOST, c->tls_verify ? 2L : 0L);
        if (c->tls_ca[0])
            SET(CURLOPT_CAINFO, c->tls_ca);
        /* Tells "tls:" from "connect:" on a handshake timeout. Only OpenSSL-like builds of
         * libcurl have it; elsewhere such a timeout reads "connect:". */
        if (rc == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, on_tls_start) == CURLE_OK)
            SET(CURLOPT_SSL_CTX_DATA, im);
    }
    if (c->username[0]) {
        SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        SET(CURLOPT_USERNAME, c->username);
        SET(CURLOPT_PASSWORD, c->password);
    }
#undef SET
    return rc;
}

static int create_handle(struct mh_section *sec, struct os_impl *im)
{
    im->curl = curl_easy_init();
    if (!im->curl)
        return mh_section_error(sec, "type", "libcurl: cannot create a handle");
    CURLcode rc = setup_handle(im);
    if (rc == CURLE_OK && im->conf.aws_region[0]) {
        char sigv4[96];
        snprintf(sigv4, sizeof sigv4, "aws:amz:%s:es", im->conf.aws_region);
        rc = curl_easy_setopt(im->curl, CURLOPT_AWS_SIGV4, sigv4);
        if (rc == CURLE_OK && apply_aws(im, &im->aws) < 0)
            rc = CURLE_OUT_OF_MEMORY;
    } else if (rc == CURLE_OK) {
        im->headers = curl_slist_append(NULL, "Accept: application/json");
        rc = im->headers ? curl_easy_setopt(im->curl, CURLOPT_HTTPHEADER, im->headers)
                         : CURLE_OUT_OF_MEMORY;
    }
    if (rc != CURLE_OK)
        return mh_section_error(sec, "type", "libcurl: %s", curl_easy_strerror(rc));
    return 0;
}

static void os_destroy(struct mh_check *check)
{
    struct os_impl *im = check->impl;
    if (!im)
        return;
    if (im->curl)
        curl_easy_cleanup(im->curl); /* closes the connection */
    free_list(im->headers);
    curl_slist_free_all(im->pin);
    mh_lookup_abandon(&im->lookup); /* never waits: a lookup in flight frees itself */
    mh_aws_credentials_wipe(&im->aws);
    mh_secret_free(im->conf.password);
    free(im);
    check->impl = NULL;
}

static int os_create(struct mh_check *check, struct mh_section *sec)
{
    if (global_init(sec) < 0)
        return -1;
    struct os_impl *im = calloc(1, sizeof *im);
    if (!im)
        return mh_section_error(sec, "type", "out of memory");
    check->impl = im;
    if (parse_conf(sec, im) < 0 || declare_measurements(check, sec, im) < 0 ||
        create_handle(sec, im) < 0) {
        os_destroy(check);
        return -1;
    }
    return 0;
}

const struct mh_check_type mh_check_opensearch = {
    .name = "opensearch",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE | MH_AFFECTS_REGION,
    .create = os_create,
    .run = os_run,
    .destroy = os_destroy,
};
