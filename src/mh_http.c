/* mh_http.c - libmicrohttpd front end. See mh_http.h.
 *
 * Two rules keep probes cheap. (1) Public bodies are MHD response objects built once per change
 * and queued by every request; MHD reference-counts them, so replacing one is a pointer swap
 * under our lock and a destroy that frees it when the last connection is done with it.
 * (2) Responses are queued on the second call of the access handler, not the first: MHD sends a
 * response queued on the first call with "Connection: close", which would defeat keep-alive
 * (measured here: ~20k vs ~130k requests/s). */
#include "mh_http.h"
#include "mh_metrics.h"
#include "mh_render.h"
#include "mh_route.h"

#include <time.h>

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONTENT_TYPE_HEALTH "application/health+json"
#define N_PUBLIC_VIEWS      MH_PUBLIC_VIEWS

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct public_body {
    struct MHD_Response *resp;
    unsigned code;
};

struct mh_http {
    struct MHD_Daemon *daemons[MH_MAX_LISTEN];
    int n_daemons;
    /* Immutable after start. */
    struct MHD_Response *not_found, *not_allowed, *bad_request, *forbidden;
    double start_time;
    /* Atomics: updated by every MHD thread without a lock. */
    struct mh_http_counters counters;
    /* `lock` guards `reg` and `views`. A handler holds it while it picks a response and queues
     * it (MHD takes its own reference); mh_http_publish holds it while it swaps. Nothing slow
     * happens under it. */
    pthread_mutex_t lock;
    struct mh_registry *reg;
    struct public_body views[N_PUBLIC_VIEWS];
    /* `publish_lock` serialises renders (taken before `lock`, never inside it); it guards
     * `rendered_generation`. */
    pthread_mutex_t publish_lock;
    uint64_t rendered_generation;
};

/* Memory for one connection's request line, headers and response headers (README "Limits"). A
 * probe needs a few hundred bytes; a slowloris holding 1,000 slots costs 16 MiB at most. */
#define REQUEST_MEMORY_LIMIT (16 * 1024)

/* Per-request markers stored in MHD's request context: no allocation needed. */
static int seen_marker, body_marker;

static void add_common_headers(struct MHD_Response *r, const char *content_type)
{
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static struct MHD_Response *static_response(const char *text, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (r) {
        add_common_headers(r, "text/plain; charset=utf-8");
        if (allow)
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    }
    return r;
}

/* Wraps a malloc'd body in a response that frees it. */
static struct MHD_Response *body_response(char *body, const char *content_type)
{
    if (!body)
        return NULL;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return NULL;
    }
    add_common_headers(r, content_type);
    return r;
}

static struct MHD_Response *json_response(char *body)
{
    return body_response(body, CONTENT_TYPE_HEALTH);
}

/* Compares without an early exit, so response time says nothing about the token. */
static bool token_matches(const char *given, const char *token)
{
    size_t n = strlen(token);
    if (strlen(given) != n)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)given[i] ^ (unsigned char)token[i];
    return diff == 0;
}

static bool in_networks(const struct mh_cidr *nets, int n, const struct sockaddr *sa)
{
    for (int i = 0; i < n; i++)
        if (mh_cidr_contains(&nets[i], sa))
            return true;
    return false;
}

/* MHD iterator (headers in the order received): keeps the last X-Forwarded-For line. RFC 9110
 * 5.3 makes repeated lines one comma-separated list, and HAProxy's `option forwardfor` appends
 * a line of its own; the last element of that list always lies in the last line, so the last
 * line is all mh_forwarded_for_last needs. One pass, no copy: the request memory limit bounds
 * the headers. */
static MHD_RESULT keep_last_forwarded_for(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
    (void)kind;
    if (key && strcasecmp(key, "X-Forwarded-For") == 0)
        *(const char **)cls = value ? value : "";
    return MHD_YES;
}

/* Who is asking: the peer, unless the peer is a trusted proxy (the local nginx) that names the
 * real client in X-Forwarded-For. A proxied request whose header cannot be parsed is nobody:
 * it must not inherit the proxy's loopback trust. */
static const struct sockaddr *client_address(struct MHD_Connection *conn,
                                             const struct mh_server_conf *sv,
                                             struct sockaddr_storage *storage)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci)
        return NULL;
    const char *xff = NULL;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, keep_last_forwarded_for, &xff);
    if (!xff || !in_networks(sv->trusted_proxies, sv->n_trusted_proxies, ci->client_addr))
        return ci->client_addr;
    return mh_forwarded_for_last(xff, storage) ? (const struct sockaddr *)storage : NULL;
}

static bool may_see_details(struct MHD_Connection *conn, const struct mh_server_conf *sv)
{
    struct sockaddr_storage storage;
    const struct sockaddr *client = client_address(conn, sv, &storage);
    if (client && in_networks(sv->details_from, sv->n_details_from, client))
        return true;
    if (sv->details_token) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        if (auth && strncmp(auth, "Bearer ", 7) == 0 && token_matches(auth + 7, sv->details_token))
            return true;
    }
    return false;
}

/* Queues `r` with `code` and counts it for /metrics. */
static MHD_RESULT respond(struct mh_http *http, struct MHD_Connection *conn,
                          enum mh_http_path label, unsigned code, struct MHD_Response *r)
{
    atomic_fetch_add_explicit(&http->counters.requests[label][mh_http_code_index(code)], 1,
                              memory_order_relaxed);
    return r ? MHD_queue_response(conn, code, r) : MHD_NO;
}

/* The on-call text view: asked for with ?format=text, or by an Accept header that takes
 * text/plain and not JSON (curl -H 'Accept: text/plain'). Only for clients who see details. */
static bool wants_text(struct MHD_Connection *conn, int view)
{
    if (view == MH_ROUTE_METRICS || view == MH_VIEW_LIVE)
        return false;
    const char *format = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
    if (format)
        return strcmp(format, "text") == 0;
    const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept");
    return accept && strstr(accept, "text/plain") && !strstr(accept, "json");
}

static MHD_RESULT queue_detailed(struct mh_http *http, struct MHD_Connection *conn,
                                 struct mh_registry *reg, int view, enum mh_http_path label)
{
    struct mh_snapshot *snap = malloc(sizeof *snap);
    if (!snap)
        return MHD_NO;
    mh_registry_snapshot(reg, snap);
    enum mh_status status = MH_PASS;
    struct MHD_Response *r;
    if (view == MH_ROUTE_METRICS) {
        char *text = mh_metrics_render(snap, &http->counters, http->start_time);
        r = body_response(text, "text/plain; version=0.0.4; charset=utf-8");
    } else if (wants_text(conn, view)) {
        r = body_response(mh_render_text(snap, (enum mh_view)view, false, &status),
                          "text/plain; charset=utf-8");
    } else {
        r = json_response(mh_render(snap, (enum mh_view)view, true, &status));
    }
    free(snap);
    MHD_RESULT ret = respond(http, conn, label, mh_render_http_code(status), r);
    if (r)
        MHD_destroy_response(r);
    return ret;
}

static MHD_RESULT queue_view(struct mh_http *http, struct MHD_Connection *conn, int view,
                             enum mh_http_path label)
{
    pthread_mutex_lock(&http->lock);
    struct mh_registry *reg = http->reg;
    if (may_see_details(conn, &mh_registry_config(reg)->server)) {
        mh_registry_ref(reg);
        pthread_mutex_unlock(&http->lock);
        MHD_RESULT ret = queue_detailed(http, conn, reg, view, label);
        mh_registry_release(reg); /* never frees here: a handler must not wait */
        return ret;
    }
    MHD_RESULT ret;
    if (view == MH_ROUTE_METRICS)
        ret = respond(http, conn, label, MHD_HTTP_FORBIDDEN, http->forbidden);
    else
        ret = respond(http, conn, label, http->views[view].code, http->views[view].resp);
    pthread_mutex_unlock(&http->lock);
    return ret;
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *conn, const char *url,
                             const char *method, const char *version, const char *upload_data,
                             size_t *upload_data_size, void **req_cls)
{
    struct mh_http *http = cls;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = &seen_marker; /* queue on the next call: see the comment at the top */
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a probe has no body: drop it and answer 400 at the end */
        *req_cls = &body_marker;
        return MHD_YES;
    }
    enum mh_http_path label;
    const char *role = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "role");
    int view = mh_route(url, role, &label);
    /* RFC 9112 3.2: an HTTP/1.1 request without Host is a 400. MHD 0.9.75 lets it through. */
    bool no_host = strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
                   !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    if (*req_cls == &body_marker || no_host)
        return respond(http, conn, label, MHD_HTTP_BAD_REQUEST, http->bad_request);
    if (view < 0)
        return respond(http, conn, label, MHD_HTTP_NOT_FOUND, http->not_found);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return respond(http, conn, label, MHD_HTTP_METHOD_NOT_ALLOWED, http->not_allowed);
    return queue_view(http, conn, view, label);
}

/* ---- publishing ---- */

static void render_public(struct mh_registry *reg, struct public_body *views, uint64_t *generation)
{
    struct mh_snapshot *snap = malloc(sizeof *snap);
    if (!snap)
        return;
    mh_registry_snapshot(reg, snap);
    *generation = snap->generation;
    for (int v = 0; v < N_PUBLIC_VIEWS; v++) {
        enum mh_status status;
        views[v].resp = json_response(mh_render(snap, (enum mh_view)v, false, &status));
        views[v].code = mh_render_http_code(status);
    }
    free(snap);
}

/* Renders `reg` and swaps it in with its bodies. Caller holds publish_lock. */
static void swap_in(struct mh_http *http, struct mh_registry *reg)
{
    struct public_body fresh[N_PUBLIC_VIEWS] = {0}, old[N_PUBLIC_VIEWS];
    uint64_t generation = 0;
    render_public(reg, fresh, &generation);
    mh_registry_ref(reg);
    pthread_mutex_lock(&http->lock);
    struct mh_registry *old_reg = http->reg;
    http->reg = reg;
    for (int v = 0; v < N_PUBLIC_VIEWS; v++) {
        old[v] = http->views[v];
        /* Keep serving the old body if rendering ran out of memory. */
        if (fresh[v].resp)
            http->views[v] = fresh[v];
        else
            old[v].resp = NULL;
    }
    pthread_mutex_unlock(&http->lock);
    http->rendered_generation = generation;
    for (int v = 0; v < N_PUBLIC_VIEWS; v++)
        if (old[v].resp)
            MHD_destroy_response(old[v].resp);
    mh_registry_release(old_reg); /* an old registry is freed on a reaper thread */
}

void mh_http_publish(struct mh_http *http, struct mh_registry *reg)
{
    pthread_mutex_lock(&http->publish_lock);
    swap_in(http, reg);
    pthread_mutex_unlock(&http->publish_lock);
}

void mh_http_refresh(struct mh_http *http)
{
    pthread_mutex_lock(&http->publish_lock);
    /* Only publish_lock holders change http->reg, so reading it here needs no other lock. */
    struct mh_registry *reg = http->reg;
    if (mh_registry_generation(reg) != http->rendered_generation)
        swap_in(http, reg);
    pthread_mutex_unlock(&http->publish_lock);
}

/* ---- start and stop ---- */

int mh_http_listen_socket(const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)addr, len) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static struct MHD_Daemon *start_daemon(struct mh_http *http, int fd,
                                       const struct mh_server_conf *sv)
{
    unsigned timeout_s = (unsigned)((sv->connection_timeout + 999) / 1000);
    return MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_TURBO, 0, NULL,
                            NULL, on_request, http, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)sv->connection_limit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)sv->per_ip_connection_limit, MHD_OPTION_CONNECTION_TIMEOUT,
                            timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)REQUEST_MEMORY_LIMIT, MHD_OPTION_END);
}

static int start_daemons(struct mh_http *http, const int *fds, int n_fds, char *err, size_t errlen)
{
    const struct mh_server_conf *sv = &mh_registry_config(http->reg)->server;
    int n = n_fds > 0 ? n_fds : sv->n_listen;
    for (int i = 0; i < n && i < MH_MAX_LISTEN; i++) {
        int fd = n_fds > 0 ? fds[i] : mh_http_listen_socket(&sv->listen[i], sv->listen_len[i]);
        if (n_fds > 0) /* sockets from systemd may be blocking; MHD's turbo mode needs them not */
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (fd < 0) {
            snprintf(err, errlen, "cannot listen on address %d of [server] listen: %s", i + 1,
                     strerror(errno));
            return -1;
        }
        http->daemons[i] = start_daemon(http, fd, sv);
        if (!http->daemons[i]) {
            close(fd);
            snprintf(err, errlen, "cannot start the HTTP server on listener %d", i + 1);
            return -1;
        }
        http->n_daemons++;
    }
    return 0;
}

struct mh_http *mh_http_start(struct mh_registry *reg, const int *fds, int n_fds, char *err,
                              size_t errlen)
{
    struct mh_http *http = calloc(1, sizeof *http);
    if (!http) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&http->lock, NULL);
    pthread_mutex_init(&http->publish_lock, NULL);
    http->not_found = static_response("not found\n", NULL);
    http->not_allowed = static_response("method not allowed\n", "GET, HEAD");
    http->bad_request = static_response("bad request\n", NULL);
    http->forbidden =
        static_response("forbidden: /metrics is for details_from or the token\n", NULL);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    http->start_time = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    mh_registry_ref(reg);
    http->reg = reg;
    render_public(reg, http->views, &http->rendered_generation);
    if (!http->not_found || !http->not_allowed || !http->bad_request || !http->forbidden) {
        snprintf(err, errlen, "out of memory");
        mh_http_stop(http);
        return NULL;
    }
    if (start_daemons(http, fds, n_fds, err, errlen) < 0) {
        mh_http_stop(http);
        return NULL;
    }
    return http;
}

void mh_http_stop(struct mh_http *http)
{
    if (!http)
        return;
    for (int i = 0; i < http->n_daemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(http->daemons[i]);
        MHD_stop_daemon(http->daemons[i]);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    for (int v = 0; v < N_PUBLIC_VIEWS; v++)
        if (http->views[v].resp)
            MHD_destroy_response(http->views[v].resp);
    if (http->not_found)
        MHD_destroy_response(http->not_found);
    if (http->not_allowed)
        MHD_destroy_response(http->not_allowed);
    if (http->bad_request)
        MHD_destroy_response(http->bad_request);
    if (http->forbidden)
        MHD_destroy_response(http->forbidden);
    mh_registry_unref(http->reg);
    pthread_mutex_destroy(&http->lock);
    pthread_mutex_destroy(&http->publish_lock);
    free(http);
}
