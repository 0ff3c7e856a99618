/* check_amqp.c - the `type = amqp` check: the RabbitMQ broker (often Amazon MQ) behind Magento's
 * message queues.
 *
 * Magento 2.4 publishes to RabbitMQ for asynchronous and bulk operations, inventory reservations
 * and more. When the broker refuses the login or cannot be reached, publishing fails and checkout
 * can end with "A server error stopped your order" while every page still loads. Each
 * [check.NAME] of this type keeps ONE AMQP 0-9-1 connection (librabbitmq, rabbitmq-c 0.11) across
 * runs, re-opened when it breaks, and reports two measurements:
 *   connectivity  each run proves the connection alive with a real round trip on its channel
 *                 (basic.qos, which changes nothing); value = that round trip in ms. Fails on a
 *                 refused login, a missing vhost, an unreachable or silent broker and a closed
 *                 connection. affects = `affects` (default node + region, as for the database:
 *                 the broker is shared by the region, and a node that cannot reach it cannot
 *                 take orders).
 *   queues        for each name in `queues` a passive queue.declare, which creates nothing and
 *                 reads the messages ready and the consumer count: warn past `backlog_warn`
 *                 messages, fail past `backlog_fail`, warn below `consumers_min` consumers, fail
 *                 on a missing queue (404 closes the channel; the next declare reopens it).
 *                 value = the largest backlog. affects = `queues_affects` (default none: Magento
 *                 runs its consumers from cron or a supervisor, often on one node only, so a
 *                 backlog is neither this node's fault nor mended by taking it out of service).
 * Outputs name the stage - resolve:, connect:, tls:, auth:, channel:, queue NAME: - with the
 * broker's reply code and text. The password is never printed, and is scrubbed from any text a
 * broker or the library returns.
 *
 * Bounds: every step ends by the run's deadline.
 *   - The name: mh_lookup_host() (getaddrinfo_a); librabbitmq is given the numeric address, so
 *     its own blocking getaddrinfo() returns at once. Re-resolved for each new connection, so a
 *     DNS name that moves (Amazon MQ active/standby) is followed.
 *   - TCP connect and TLS handshake: amqp_socket_open_noblock() with the time left.
 *   - The AMQP handshake (protocol header, SASL PLAIN, tune, connection.open of the vhost):
 *     amqp_set_handshake_timeout() with the time left.
 *   - Each RPC (channel.open, basic.qos, queue.declare): amqp_set_rpc_timeout() with the time
 *     left. An RPC that times out leaves the connection closed (a late reply must never be taken
 *     for the next request's); the next run opens a new one. A reused connection found closed
 *     (broker restart, CONNECTION_FORCED) is replaced once within the same run.
 *   The library writes requests without a deadline, but its sockets are non-blocking and a run
 *   writes a few hundred bytes at most, far below any socket buffer, so no write ever waits.
 *
 * TLS verified against a host name (tls = yes, tls_verify = yes, host not an address):
 * amqp_ssl_socket_open() uses the one string it is given for getaddrinfo(), for SNI and for the
 * certificate's name check (X509_check_host). Given an address we resolved, it would check the
 * certificate against that address and send it as SNI; the library offers no way to connect to
 * one and verify the other. So that open is given the name and runs on an abandonable helper
 * thread (mh_offload.h), as the mysql check's TLS connect does: the run waits no later than its
 * deadline and reports "timed out"; the next run waits on the same helper instead of starting
 * another, so a check never has more than one in flight. The login and every RPC after it run on
 * the worker, bounded as above. Without verification (or with a numeric host) nothing needs the
 * name, and the check resolves it itself.
 *
 * Heartbeats: the client proposes twice (interval + timeout), at least 10 s; the broker may
 * lower it (RabbitMQ's default is 60 s). librabbitmq sends and checks heartbeats only inside a
 * call, and each run's round trip is such a call: the broker hears from us every interval (plus
 * at most the timeout), well inside the two heartbeats after which it drops a silent client, so
 * one late run never costs the connection. Our side notices a broker that sent nothing for two
 * heartbeats (not even the heartbeat frames that wait in the socket between runs) at the next
 * run. The negotiated value is the `heartbeat` fact.
 *
 * Ownership: struct amqp_impl belongs to the check; create(), run() and destroy() never run
 * concurrently. An open_job belongs to its helper until mh_offload_wait() hands it back, and to
 * open_discard() once abandoned. */
#include "mh_check.h"
#include "mh_check_text.h"
#include "mh_offload.h"
#include "mh_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#define HOST_MAX        256
#define SHORTSTR_MAX    256 /* vhost, user, queue: AMQP short strings, at most 255 bytes */
#define PATH_MAX_LEN    4096
#define QUEUES_MAX      16
#define QUEUES_LINE_MAX 2048
#define ADDRS_MAX       4
#define ADDR_MAX        INET6_ADDRSTRLEN
#define ERR_MAX         MH_OUTPUT_MAX
#define CHANNEL         1
#define PLAIN_PORT      5672
#define TLS_PORT        5671
#define SYSTEM_CA       "/etc/ssl/certs/ca-certificates.crt" /* Debian's bundle */
#define HEARTBEAT_MIN_S 10
#define CLOSE_MS        100 /* destroy(): how long a polite connection.close may take */

struct amqp_conf {
    char host[HOST_MAX];
    unsigned long port;
    char vhost[SHORTSTR_MAX];
    char user[SHORTSTR_MAX];
    char *password; /* secret */
    bool tls;
    bool tls_verify;
    char tls_ca[PATH_MAX_LEN]; /* empty unless tls and tls_verify */
    char queues[QUEUES_MAX][SHORTSTR_MAX];
    int n_queues;
    unsigned long backlog_warn, backlog_fail, consumers_min;
    int heartbeat_s; /* proposed at login */
};

/* A TLS open that librabbitmq resolves itself, on a helper (see the top). */
struct open_job {
    amqp_connection_state_t conn; /* with its TLS socket, not yet open */
    char host[HOST_MAX];
    int port;
    mh_ms budget;
    int status; /* amqp_socket_open_noblock()'s result */
    int err_no;
    double ms; /* how long the open took */
};

struct amqp_impl {
    struct amqp_conf conf;
    int i_conn, i_queues; /* measurement indexes; i_queues is -1 with an empty `queues` */
    char endpoint[HOST_MAX + 16];
    amqp_connection_state_t conn; /* logged in; NULL when closed */
    bool channel_open;
    bool healthy;               /* the last round trip answered: destroy() may close politely */
    struct mh_lookup *lookup;   /* a DNS lookup an earlier run left running */
    struct mh_offload *opening; /* a TLS open by name still running */
    struct open_job *open_job;  /* its job, the helper's until `opening` has been waited on */
};

/* How an RPC ended. REFUSED: the broker closed the channel (404, 403); the connection is fine.
 * LOST and TIMEOUT: the connection is closed. */
enum rpc { RPC_OK, RPC_REFUSED, RPC_LOST, RPC_TIMEOUT };

/* ---------- small helpers ---------- */

static struct timeval tv_from_ms(mh_ms ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* An AMQP string as printf's "%.*s" length, capped. */
static int bytes_len(amqp_bytes_t b)
{
    return b.len > 200 ? 200 : (int)b.len;
}

/* "host:port", "[v6]:port", or "host:port (address)" when connecting to a resolved address. */
static void target_text(const struct amqp_impl *a, const char *addr, char *out, size_t outlen)
{
    if (!addr || strcmp(addr, a->conf.host) == 0)
        snprintf(out, outlen, "%s", a->endpoint);
    else
        snprintf(out, outlen, "%s (%s)", a->endpoint, addr);
}

static void close_connection(struct amqp_impl *a)
{
    if (a->conn)
        amqp_destroy_connection(a->conn);
    a->conn = NULL;
    a->channel_open = false;
    a->healthy = false;
}

/* ---------- RPC results ---------- */

/* "404 NOT_FOUND - no queue 'x' in vhost '/'" from a channel.close or connection.close. */
static void close_reason(const amqp_method_t *m, char *out, size_t outlen)
{
    if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
        const amqp_channel_close_t *c = m->decoded;
        snprintf(out, outlen, "%u %.*s", c->reply_code, bytes_len(c->reply_text),
                 (const char *)c->reply_text.bytes);
    } else if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
        const amqp_connection_close_t *c = m->decoded;
        snprintf(out, outlen, "%u %.*s", c->reply_code, bytes_len(c->reply_text),
                 (const char *)c->reply_text.bytes);
    } else {
        snprintf(out, outlen, "unexpected method 0x%08x", (unsigned)m->id);
    }
}

/* Answers a broker's connection.close, as the protocol asks, and drops the connection. */
static void accept_connection_close(struct amqp_impl *a)
{
    amqp_connection_close_ok_t ok = {0};
    (void)amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    close_connection(a);
}

/* Turns a failed RPC's reply into `err` ("STAGE: ...") and the connection's new state. */
static enum rpc rpc_failed(struct amqp_impl *a, amqp_rpc_reply_t r, const char *stage,
                           const struct timespec *start, char *err)
{
    char why[ERR_MAX];
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        close_reason(&r.reply, why, sizeof why);
        if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_ok_t ok = {0};
            (void)amqp_send_method(a->conn, CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
            a->channel_open = false;
            amqp_maybe_release_buffers(a->conn);
            mh_stage_error(err, ERR_MAX, stage, "%s", why);
            return RPC_REFUSED;
        }
        mh_stage_error(err, ERR_MAX, stage, "the broker closed the connection: %s", why);
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
            accept_connection_close(a);
        else
            close_connection(a);
        return RPC_LOST;
    }
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT) {
        mh_stage_error(err, ERR_MAX, stage, "no reply within %.0f ms", mh_ms_since(start));
        close_connection(a);
        return RPC_TIMEOUT;
    }
    mh_stage_error(err, ERR_MAX, stage, "%s",
                   r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION
                       ? amqp_error_string2(r.library_error)
                       : "no reply");
    close_connection(a);
    return RPC_LOST;
}

/* Gives the next RPC the time left. False, with `err`, when there is none: nothing was sent,
 * so the connection stays usable. */
static bool rpc_budget(struct amqp_impl *a, const struct timespec *deadline, const char *stage,
                       char *err)
{
    mh_ms left = mh_deadline_left(deadline);
    if (left <= 0) {
        mh_stage_error(err, ERR_MAX, stage, "no time left before the check's timeout");
        return false;
    }
    struct timeval tv = tv_from_ms(left);
    if (amqp_set_rpc_timeout(a->conn, &tv) != AMQP_STATUS_OK) {
        mh_stage_error(err, ERR_MAX, stage, "cannot set the RPC timeout");
        return false;
    }
    return true;
}

static enum rpc ensure_channel(struct amqp_impl *a, const struct timespec *deadline, char *err)
{
    if (a->channel_open)
        return RPC_OK;
    if (!rpc_budget(a, deadline, "channel", err))
        return RPC_TIMEOUT;
    struct timespec start;
    mh_now(&start);
    if (amqp_channel_open(a->conn, CHANNEL)) {
        a->channel_open = true;
        amqp_maybe_release_buffers(a->conn);
        return RPC_OK;
    }
    return rpc_failed(a, amqp_get_rpc_reply(a->conn), "channel", &start, err);
}

/* ---------- opening the connection: resolve, connect, tls ---------- */

/* True when librabbitmq must be given the host name: to verify the certificate against it. */
static bool library_resolves(const struct amqp_conf *c)
{
    return c->tls && c->tls_verify && !mh_is_numeric_host(c->host);
}

/* A connection state with its (unopened) socket. */
static int new_connection(const struct amqp_conf *c, amqp_connection_state_t *out, char *err)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *s = NULL;
    if (conn)
        s = c->tls ? amqp_ssl_socket_new(conn) : amqp_tcp_socket_new(conn);
    if (!s) {
        if (conn)
            amqp_destroy_connection(conn);
        mh_stage_error(err, ERR_MAX, "connect", "cannot make a socket: out of memory");
        return -1;
    }
    if (c->tls) {
        amqp_ssl_socket_set_verify_peer(s, c->tls_verify);
        amqp_ssl_socket_set_verify_hostname(s, c->tls_verify);
        if (c->tls_verify && amqp_ssl_socket_set_cacert(s, c->tls_ca) != AMQP_STATUS_OK) {
            amqp_destroy_connection(conn);
            mh_stage_error(err, ERR_MAX, "tls", "cannot load the CA certificates in %s", c->tls_ca);
            return -1;
        }
    }
    *out = conn;
    return 0;
}

/* True for an errno that says why a connect failed (the library may leave one behind). */
static bool connect_errno_known(int err_no)
{
    switch (err_no) {
    case ECONNREFUSED:
    case ECONNRESET:
    case ENETUNREACH:
    case EHOSTUNREACH:
    case ETIMEDOUT:
    case EADDRNOTAVAIL:
        return true;
    default:
        return false;
    }
}

static const char *connect_errno_text(int err_no)
{
    return connect_errno_known(err_no) ? strerror(err_no) : "could not connect";
}

/* librabbitmq reports any failed TCP connect as "a socket error" and keeps the reason to itself.
 * One more non-blocking connect to the numeric `addr`, bounded by the deadline, finds it out
 * (refused, unreachable, ...). Returns an errno value, or 0 when that connect did not fail. */
static int connect_failure(const char *addr, unsigned long port, const struct timespec *deadline)
{
    char service[8];
    snprintf(service, sizeof service, "%lu", port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    if (getaddrinfo(addr, service, &hints, &ai) != 0) /* numeric: never asks DNS */
        return 0;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int e = fd < 0 ? errno : 0;
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        e = errno;
    if (e == EINPROGRESS) {
        e = 0;
        mh_ms left = mh_deadline_left(deadline);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        socklen_t len = sizeof e;
        if (left <= 0 || poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
            e = 0;
    }
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return e;
}

/* `err` for a failed amqp_socket_open_noblock() to `target`. */
static void open_error(const struct amqp_impl *a, const char *target, int status, int err_no,
                       double ms, char *err)
{
    switch (status) {
    case AMQP_STATUS_HOSTNAME_RESOLUTION_FAILED:
        mh_stage_error(err, ERR_MAX, "resolve", "%s: the name does not resolve", a->conf.host);
        break;
    case AMQP_STATUS_TIMEOUT:
        mh_stage_error(err, ERR_MAX, "connect", "%s: no %s within %.0f ms", target,
                       a->conf.tls ? "TCP connection and TLS handshake" : "TCP connection", ms);
        break;
    case AMQP_STATUS_SOCKET_ERROR:
        mh_stage_error(err, ERR_MAX, "connect", "%s: %s", target, connect_errno_text(err_no));
        break;
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
        mh_stage_error(err, ERR_MAX, "tls", "%s: %s (is the server's CA in tls_ca = %s?)", target,
                       amqp_error_string2(status), a->conf.tls_ca);
        break;
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        mh_stage_error(err, ERR_MAX, "tls", "%s: %s (the certificate does not name %s)", target,
                       amqp_error_string2(status), a->conf.host);
        break;
    case AMQP_STATUS_SSL_ERROR:
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
        mh_stage_error(err, ERR_MAX, "tls",
                       "%s: %s (not a TLS port, or no common protocol or cipher)", target,
                       amqp_error_string2(status));
        break;
    default:
        mh_stage_error(err, ERR_MAX, "connect", "%s: %s", target, amqp_error_string2(status));
        break;
    }
}

/* The addresses of the host, looked up within the deadline; a numeric host is its own. */
static int resolve_host(struct amqp_impl *a, const struct timespec *deadline,
                        char addrs[ADDRS_MAX][ADDR_MAX], int *n, char *err)
{
    *n = 0;
    if (mh_is_numeric_host(a->conf.host)) {
        snprintf(addrs[0], ADDR_MAX, "%s", a->conf.host);
        *n = 1;
        return 0;
    }
    struct addrinfo *res;
    char why[ERR_MAX];
    if (mh_lookup_host(&a->lookup, a->conf.host, deadline, &res, why, sizeof why) != MH_LOOKUP_OK) {
        mh_stage_error(err, ERR_MAX, "resolve", "%s", why);
        return -1;
    }
    for (const struct addrinfo *ai = res; ai && *n < ADDRS_MAX; ai = ai->ai_next) {
        const void *p = NULL;
        if (ai->ai_family == AF_INET)
            p = &((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        else if (ai->ai_family == AF_INET6)
            p = &((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if (!p || !inet_ntop(ai->ai_family, p, addrs[*n], ADDR_MAX))
            continue;
        bool seen = false;
        for (int i = 0; i < *n; i++)
            seen = seen || strcmp(addrs[i], addrs[*n]) == 0;
        if (!seen)
            (*n)++;
    }
    freeaddrinfo(res);
    if (*n == 0) {
        mh_stage_error(err, ERR_MAX, "resolve", "%s: no usable address", a->conf.host);
        return -1;
    }
    return 0;
}

/* One connect (and TLS handshake) to a numeric address. Returns the library's status, or 1
 * when no attempt could be made. */
static int open_at(struct amqp_impl *a, const char *addr, const struct timespec *deadline,
                   char *err)
{
    char target[HOST_MAX + ADDR_MAX + 32];
    target_text(a, addr, target, sizeof target);
    mh_ms left = mh_deadline_left(deadline);
    if (left <= 0) {
        mh_stage_error(err, ERR_MAX, "connect", "%s: no time left before the check's timeout",
                       target);
        return 1;
    }
    amqp_connection_state_t conn;
    if (new_connection(&a->conf, &conn, err) < 0)
        return 1;
    struct timeval tv = tv_from_ms(left);
    struct timespec start;
    mh_now(&start);
    errno = 0;
    int status = amqp_socket_open_noblock(amqp_get_socket(conn), addr, (int)a->conf.port, &tv);
    int err_no = errno;
    if (status == AMQP_STATUS_OK) {
        a->conn = conn;
        return status;
    }
    amqp_destroy_connection(conn);
    if (status == AMQP_STATUS_SOCKET_ERROR && !connect_errno_known(err_no))
        err_no = connect_failure(addr, a->conf.port, deadline);
    open_error(a, target, status, err_no, mh_ms_since(&start), err);
    return status;
}

/* Resolves the host and connects to its addresses in turn while they refuse. */
static int open_by_address(struct amqp_impl *a, const struct timespec *deadline, char *err)
{
    char addrs[ADDRS_MAX][ADDR_MAX];
    int n;
    if (resolve_host(a, deadline, addrs, &n, err) < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        int status = open_at(a, addrs[i], deadline, err);
        if (status == AMQP_STATUS_OK)
            return 0;
        if (status != AMQP_STATUS_SOCKET_ERROR)
            break;
    }
    return -1;
}

/* Runs on the helper: librabbitmq resolves the name (blocking), connects and verifies. */
static void open_call(void *arg)
{
    struct open_job *job = arg;
    struct timeval tv = tv_from_ms(job->budget);
    struct timespec start;
    mh_now(&start);
    errno = 0;
    job->status = amqp_socket_open_noblock(amqp_get_socket(job->conn), job->host, job->port, &tv);
    job->err_no = errno;
    job->ms = mh_ms_since(&start);
}

static void open_discard(void *arg)
{
    struct open_job *job = arg;
    amqp_destroy_connection(job->conn);
    free(job);
}

/* Starts the helper for a TLS open by name (its budget: the time left in this run), or waits on
 * the one an earlier run left running, no later than the deadline. */
static int open_by_name(struct amqp_impl *a, const struct timespec *deadline, char *err)
{
    bool waited = a->opening != NULL;
    struct timespec start;
    mh_now(&start);
    if (!a->opening) {
        mh_ms left = mh_deadline_left(deadline);
        struct open_job *job = calloc(1, sizeof *job);
        if (left <= 0 || !job) {
            free(job);
            mh_stage_error(err, ERR_MAX, "connect", "%s: %s", a->endpoint,
                           left <= 0 ? "no time left before the check's timeout" : "out of memory");
            return -1;
        }
        if (new_connection(&a->conf, &job->conn, err) < 0) {
            free(job);
            return -1;
        }
        snprintf(job->host, sizeof job->host, "%s", a->conf.host);
        job->port = (int)a->conf.port;
        job->budget = left;
        a->opening = mh_offload_start(open_call, open_discard, job);
        if (!a->opening) {
            open_discard(job);
            mh_stage_error(err, ERR_MAX, "connect", "%s: cannot start a helper thread",
                           a->endpoint);
            return -1;
        }
        a->open_job = job;
    }
    if (!mh_offload_wait(&a->opening, deadline)) {
        mh_stage_error(err, ERR_MAX, "connect",
                       "timed out after %.0f ms: name lookup, TCP connect or TLS handshake to %s "
                       "still running%s",
                       mh_ms_since(&start), a->endpoint, waited ? " (since an earlier run)" : "");
        return -1;
    }
    struct open_job *job = a->open_job;
    a->open_job = NULL;
    if (job->status == AMQP_STATUS_OK) {
        a->conn = job->conn;
        free(job);
        return 0;
    }
    open_error(a, a->endpoint, job->status, job->err_no, job->ms, err);
    open_discard(job);
    return -1;
}

/* ---------- the AMQP handshake ---------- */

/* `err` for a failed amqp_login(). `greeted`: the broker's connection.start arrived (its
 * properties were kept), so the failure came after the TCP peer proved to be an AMQP broker. */
static void login_error(struct amqp_impl *a, amqp_rpc_reply_t r, double ms, char *err)
{
    char why[ERR_MAX];
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        close_reason(&r.reply, why, sizeof why);
        mh_stage_error(err, ERR_MAX, "auth", "%s",
                       why); /* 403 ACCESS_REFUSED, 530 NOT_ALLOWED (vhost) */
        return;
    }
    const amqp_table_t *props = amqp_get_server_properties(a->conn);
    bool greeted = props && props->num_entries > 0;
    int e = r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? r.library_error : 0;
    if (e == AMQP_STATUS_TIMEOUT && !greeted)
        mh_stage_error(err, ERR_MAX, "connect",
                       "%s accepted the connection but sent no AMQP greeting within %.0f ms",
                       a->endpoint, ms);
    else if (e == AMQP_STATUS_TIMEOUT)
        mh_stage_error(err, ERR_MAX, "auth", "no answer to the login within %.0f ms", ms);
    else if (e == AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD)
        mh_stage_error(err, ERR_MAX, "auth", "the broker does not offer SASL PLAIN");
    else if (e == AMQP_STATUS_BAD_AMQP_DATA || e == AMQP_STATUS_INCOMPATIBLE_AMQP_VERSION ||
             e == AMQP_STATUS_WRONG_METHOD || e == AMQP_STATUS_UNEXPECTED_STATE)
        mh_stage_error(err, ERR_MAX, "connect", "%s does not answer as an AMQP 0-9-1 broker: %s",
                       a->endpoint, amqp_error_string2(e));
    else if (!greeted)
        mh_stage_error(err, ERR_MAX, "connect",
                       "%s closed the connection without an AMQP greeting (%s)%s", a->endpoint,
                       e ? amqp_error_string2(e) : "no reply",
                       a->conf.tls ? "" : "; a TLS port needs tls = yes");
    else
        mh_stage_error(err, ERR_MAX, "auth",
                       "the broker closed the connection during the login: %s",
                       e ? amqp_error_string2(e) : "no reply");
}

/* Logs in and opens the vhost within the deadline; on failure the connection is closed. */
static int login(struct amqp_impl *a, const struct timespec *deadline, char *err)
{
    mh_ms left = mh_deadline_left(deadline);
    if (left <= 0) {
        mh_stage_error(err, ERR_MAX, "auth", "no time left before the check's timeout");
        close_connection(a);
        return -1;
    }
    struct timeval tv = tv_from_ms(left);
    struct timespec start;
    mh_now(&start);
    amqp_rpc_reply_t r;
    if (amqp_set_handshake_timeout(a->conn, &tv) != AMQP_STATUS_OK) {
        r.reply_type = AMQP_RESPONSE_LIBRARY_EXCEPTION;
        r.library_error = AMQP_STATUS_INVALID_PARAMETER;
    } else {
        r = amqp_login(a->conn, a->conf.vhost, 1, AMQP_DEFAULT_FRAME_SIZE, a->conf.heartbeat_s,
                       AMQP_SASL_METHOD_PLAIN, a->conf.user, a->conf.password);
    }
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    login_error(a, r, mh_ms_since(&start), err);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
        r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        accept_connection_close(a);
    else
        close_connection(a);
    return -1;
}

/* Connects, secures and logs in; on any failure nothing is left open. */
static int open_connection(struct amqp_impl *a, const struct timespec *deadline, char *err)
{
    int rc = library_resolves(&a->conf) ? open_by_name(a, deadline, err)
                                        : open_by_address(a, deadline, err);
    if (rc < 0)
        return -1;
    return login(a, deadline, err);
}

/* ---------- the stages of a run ---------- */

/* One round trip on the channel: basic.qos, which changes nothing the check relies on. */
static enum rpc round_trip(struct amqp_impl *a, const struct timespec *deadline, double *ms,
                           char *err)
{
    enum rpc res = ensure_channel(a, deadline, err);
    if (res != RPC_OK)
        return res;
    if (!rpc_budget(a, deadline, "channel", err))
        return RPC_TIMEOUT;
    struct timespec start;
    mh_now(&start);
    amqp_basic_qos_ok_t *ok = amqp_basic_qos(a->conn, CHANNEL, 0, 0, 0);
    *ms = mh_ms_since(&start);
    if (ok) {
        amqp_maybe_release_buffers(a->conn);
        return RPC_OK;
    }
    return rpc_failed(a, amqp_get_rpc_reply(a->conn), "channel", &start, err);
}

/* Connects when needed and makes the round trip. A reused connection the broker has closed
 * meanwhile (restart, failover, CONNECTION_FORCED) gets one fresh connection in the same run, so
 * a restart that has already completed is not reported as a failure. */
static int reach_broker(struct amqp_impl *a, const struct timespec *deadline, double *ms,
                        bool *fresh, char *err)
{
    *fresh = a->conn == NULL;
    if (*fresh && open_connection(a, deadline, err) < 0)
        return -1;
    enum rpc res = round_trip(a, deadline, ms, err);
    if (res == RPC_LOST && !*fresh) {
        *fresh = true;
        if (open_connection(a, deadline, err) < 0)
            return -1;
        res = round_trip(a, deadline, ms, err);
    }
    a->healthy = res == RPC_OK;
    return res == RPC_OK ? 0 : -1;
}

/* Copies the string `key` of an AMQP table (the broker's properties). */
static bool table_string(const amqp_table_t *t, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (int i = 0; t && i < t->num_entries; i++) {
        const amqp_table_entry_t *e = &t->entries[i];
        if (e->key.len != klen || memcmp(e->key.bytes, key, klen) != 0)
            continue;
        if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
            return false;
        size_t n = e->value.value.bytes.len < outlen ? e->value.value.bytes.len : outlen - 1;
        memcpy(out, e->value.value.bytes.bytes, n);
        out[n] = '\0';
        return true;
    }
    return false;
}

static void report_broker(struct amqp_impl *a, struct mh_run *out)
{
    const amqp_table_t *props = amqp_get_server_properties(a->conn);
    char product[64] = "AMQP broker", version[64] = "", cluster[MH_FACT_VALUE_MAX];
    table_string(props, "product", product, sizeof product);
    table_string(props, "version", version, sizeof version);
    mh_run_fact(out, "broker", "%s%s%s", product, version[0] ? " " : "", version);
    if (table_string(props, "cluster_name", cluster, sizeof cluster))
        mh_run_fact(out, "cluster_name", "%s", cluster);
    int hb = amqp_get_heartbeat(a->conn);
    if (hb > 0)
        mh_run_fact(out, "heartbeat", "%d s", hb);
    else
        mh_run_fact(out, "heartbeat", "off");
}

/* A passive queue.declare: reads the backlog and consumers, creates nothing. */
static enum rpc declare_passive(struct amqp_impl *a, const char *queue,
                                const struct timespec *deadline, uint32_t *ready,
                                uint32_t *consumers, char *err)
{
    char stage[SHORTSTR_MAX + 8];
    snprintf(stage, sizeof stage, "queue %s", queue);
    enum rpc res = ensure_channel(a, deadline, err);
    if (res != RPC_OK)
        return res;
    if (!rpc_budget(a, deadline, stage, err))
        return RPC_TIMEOUT;
    struct timespec start;
    mh_now(&start);
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(a->conn, CHANNEL, amqp_cstring_bytes(queue), 1,
                                                     0, 0, 0, amqp_empty_table);
    if (ok) {
        *ready = ok->message_count;
        *consumers = ok->consumer_count;
        amqp_maybe_release_buffers(a->conn);
        return RPC_OK;
    }
    return rpc_failed(a, amqp_get_rpc_reply(a->conn), stage, &start, err);
}

/* Appends "; text" (or "text") to `buf`, cut at its size. */
static void append(char *buf, size_t size, const char *text)
{
    size_t n = strlen(buf);
    if (n + 1 < size)
        snprintf(buf + n, size - n, "%s%s", n ? "; " : "", text);
}

/* Judges one queue's figures; `text` says why. */
static enum mh_status judge_queue(const struct amqp_conf *c, const char *queue, uint32_t ready,
                                  uint32_t consumers, char *text, size_t textlen)
{
    enum mh_status st = MH_PASS;
    const char *backlog = "";
    if (ready > c->backlog_fail) {
        st = MH_FAIL;
        backlog = " (over backlog_fail)";
    } else if (ready > c->backlog_warn) {
        st = MH_WARN;
        backlog = " (over backlog_warn)";
    }
    bool few = consumers < c->consumers_min;
    if (few && st < MH_WARN)
        st = MH_WARN;
    snprintf(text, textlen, "%s%s: %lu ready%s, %lu consumer%s%s", st == MH_PASS ? "" : "queue ",
             queue, (unsigned long)ready, backlog, (unsigned long)consumers,
             consumers == 1 ? "" : "s", few ? " (below consumers_min)" : "");
    return st;
}

static void observe_queues(struct amqp_impl *a, const struct timespec *deadline, struct mh_run *out)
{
    const struct amqp_conf *c = &a->conf;
    enum mh_status worst = MH_PASS;
    char problems[MH_OUTPUT_MAX] = "", fine[MH_OUTPUT_MAX] = "";
    char text[ERR_MAX], line[2 * MH_OUTPUT_MAX];
    uint32_t largest = 0;
    bool answered = false;
    for (int i = 0; i < c->n_queues; i++) {
        uint32_t ready = 0, consumers = 0;
        enum rpc res = declare_passive(a, c->queues[i], deadline, &ready, &consumers, text);
        if (res != RPC_OK) {
            worst = MH_FAIL;
            mh_scrub(text, c->password);
            append(problems, sizeof problems, text);
            if (res == RPC_REFUSED)
                continue;
            break; /* no connection left for the others */
        }
        answered = true;
        largest = ready > largest ? ready : largest;
        enum mh_status st = judge_queue(c, c->queues[i], ready, consumers, text, sizeof text);
        worst = st > worst ? st : worst;
        append(st == MH_PASS ? fine : problems, MH_OUTPUT_MAX, text);
        mh_run_fact(out, c->queues[i], "%lu ready, %lu consumers", (unsigned long)ready,
                    (unsigned long)consumers);
    }
    snprintf(line, sizeof line, "%s%s%s", problems, problems[0] && fine[0] ? "; " : "", fine);
    mh_observe(out, a->i_queues, worst, "%s", line);
    if (answered)
        mh_observe_value(out, a->i_queues, largest, "messages");
}

static void amqp_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    struct amqp_impl *a = check->impl;
    char err[ERR_MAX] = "";
    double ms = 0;
    bool fresh;
    mh_run_fact(out, "endpoint", "%s", a->endpoint);
    mh_run_fact(out, "vhost", "%s", a->conf.vhost);
    if (reach_broker(a, deadline, &ms, &fresh, err) < 0) {
        mh_scrub(err, a->conf.password);
        mh_observe(out, a->i_conn, MH_FAIL, "%s", err);
        if (a->i_queues >= 0)
            mh_observe(out, a->i_queues, MH_FAIL, "%s", err);
        return;
    }
    mh_observe(out, a->i_conn, MH_PASS, "round trip in %.2f ms (%s connection)", ms,
               fresh ? "new" : "reused");
    mh_observe_value(out, a->i_conn, ms, "ms");
    report_broker(a, out);
    if (a->i_queues >= 0)
        observe_queues(a, deadline, out);
}

/* ---------- configuration ---------- */

static int parse_tls(struct mh_section *sec, struct amqp_conf *c)
{
    c->tls_verify = true;
    bool has_ca = mh_section_get(sec, "tls_ca") != NULL;
    if (mh_section_bool(sec, "tls", &c->tls) < 0 ||
        mh_section_bool(sec, "tls_verify", &c->tls_verify) < 0 ||
        mh_section_string(sec, "tls_ca", c->tls_ca, sizeof c->tls_ca) < 0)
        return -1;
    if (!c->tls && (has_ca || mh_section_get(sec, "tls_verify")))
        return mh_section_error(sec, has_ca ? "tls_ca" : "tls_verify",
                                "set, but tls is off (tls = yes: Amazon MQ requires TLS)");
    if (has_ca && !c->tls_verify)
        return mh_section_error(sec, "tls_ca", "set, but tls_verify = no ignores it");
    if (c->tls && c->tls_verify && !has_ca)
        snprintf(c->tls_ca, sizeof c->tls_ca, "%s", SYSTEM_CA);
    if (c->tls && c->tls_verify && access(c->tls_ca, R_OK) != 0)
        return mh_section_error(sec, "tls_ca", "cannot read %s: %s", c->tls_ca, strerror(errno));
    return 0;
}

static int parse_target(struct mh_section *sec, struct amqp_conf *c)
{
    c->port = c->tls ? TLS_PORT : PLAIN_PORT;
    snprintf(c->vhost, sizeof c->vhost, "/");
    if (mh_section_string(sec, "host", c->host, sizeof c->host) < 0 ||
        mh_section_uint(sec, "port", 1, 65535, &c->port) < 0 ||
        mh_section_string(sec, "vhost", c->vhost, sizeof c->vhost) < 0 ||
        mh_section_string(sec, "user", c->user, sizeof c->user) < 0 ||
        mh_section_secret(sec, "password", &c->password) < 0)
        return -1;
    if (!c->host[0])
        return mh_section_error(sec, "host", "must be set (the broker's host name or address)");
    if (!c->vhost[0])
        return mh_section_error(sec, "vhost", "must not be empty (RabbitMQ's default is /)");
    if (!c->user[0])
        return mh_section_error(sec, "user", "must be set");
    if (!c->password)
        return mh_section_error(sec, "password_file", "set password_file or password_env");
    return 0;
}

/* Queue names, separated by commas and/or spaces. An empty list turns `queues` off. */
static int parse_queues(struct mh_section *sec, struct amqp_conf *c)
{
    char list[QUEUES_LINE_MAX] = "async.operations.all";
    if (mh_section_string(sec, "queues", list, sizeof list) < 0)
        return -1;
    c->n_queues = 0;
    for (char *save = NULL, *q = strtok_r(list, ", \t", &save); q;
         q = strtok_r(NULL, ", \t", &save)) {
        if (c->n_queues == QUEUES_MAX)
            return mh_section_error(sec, "queues", "at most %d queues", QUEUES_MAX);
        if (strlen(q) >= SHORTSTR_MAX)
            return mh_section_error(sec, "queues", "a queue name is at most 255 bytes");
        for (const char *p = q; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return mh_section_error(sec, "queues", "control character in a queue name");
        snprintf(c->queues[c->n_queues++], SHORTSTR_MAX, "%s", q);
    }
    return 0;
}

static int parse_thresholds(struct mh_section *sec, struct amqp_conf *c)
{
    c->backlog_warn = 1000;
    c->backlog_fail = 10000; /* Magento's default max_messages: more than one consumer run */
    c->consumers_min = 1;
    if (mh_section_uint(sec, "backlog_warn", 0, UINT32_MAX, &c->backlog_warn) < 0 ||
        mh_section_uint(sec, "backlog_fail", 0, UINT32_MAX, &c->backlog_fail) < 0 ||
        mh_section_uint(sec, "consumers_min", 0, UINT32_MAX, &c->consumers_min) < 0)
        return -1;
    if (c->backlog_warn > c->backlog_fail)
        return mh_section_error(sec, "backlog_warn", "must not be above backlog_fail (%lu)",
                                c->backlog_fail);
    return 0;
}

/* Twice (interval + timeout), at least 10 s; see the top of this file. */
static int heartbeat_for(const struct mh_check *check)
{
    mh_ms period = check->interval + check->timeout;
    mh_ms s = 2 * ((period + 999) / 1000);
    if (s < HEARTBEAT_MIN_S)
        s = HEARTBEAT_MIN_S;
    return s > 65535 ? 65535 : (int)s;
}

/* Loads tls_ca once now, so that a file that is not PEM is a configuration error rather than a
 * failing check. No network I/O. */
static int try_tls_ca(struct mh_section *sec, const struct amqp_conf *c)
{
    if (!c->tls || !c->tls_verify)
        return 0;
    amqp_connection_state_t conn;
    char err[ERR_MAX];
    if (new_connection(c, &conn, err) < 0)
        return mh_section_error(sec, "tls_ca", "%s", err);
    amqp_destroy_connection(conn);
    return 0;
}

static int declare_measurements(struct mh_check *check, struct mh_section *sec, struct amqp_impl *a)
{
    unsigned conn = check->affects_set ? check->affects : MH_AFFECTS_NODE | MH_AFFECTS_REGION;
    unsigned queues = MH_AFFECTS_NONE;
    if (mh_section_affects(sec, "queues_affects", &queues) < 0)
        return -1;
    if (a->conf.n_queues == 0 && mh_section_get(sec, "queues_affects"))
        return mh_section_error(sec, "queues_affects", "set, but queues is empty");
    a->i_conn = mh_check_declare(check, "connectivity", conn);
    a->i_queues = a->conf.n_queues > 0 ? mh_check_declare(check, "queues", queues) : -1;
    return 0;
}

static void amqp_check_destroy(struct mh_check *check)
{
    struct amqp_impl *a = check->impl;
    if (!a)
        return;
    if (a->conn && a->healthy) { /* a polite close, so the broker logs no lost client */
        struct timeval tv = tv_from_ms(CLOSE_MS);
        amqp_set_rpc_timeout(a->conn, &tv);
        amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
    }
    close_connection(a);
    mh_offload_abandon(&a->opening); /* the job goes with it (open_discard) */
    mh_lookup_abandon(&a->lookup);
    mh_secret_free(a->conf.password);
    free(a);
    check->impl = NULL;
}

static int amqp_check_create(struct mh_check *check, struct mh_section *sec)
{
    struct amqp_impl *a = calloc(1, sizeof *a);
    if (!a)
        return mh_section_error(sec, "type", "out of memory");
    check->impl = a;
    struct amqp_conf *c = &a->conf;
    if (parse_tls(sec, c) < 0 || parse_target(sec, c) < 0 || parse_queues(sec, c) < 0 ||
        parse_thresholds(sec, c) < 0 || declare_measurements(check, sec, a) < 0 ||
        try_tls_ca(sec, c) < 0) {
        amqp_check_destroy(check);
        return -1;
    }
    c->heartbeat_s = heartbeat_for(check);
    if (strchr(c->host, ':'))
        snprintf(a->endpoint, sizeof a->endpoint, "[%s]:%lu", c->host, c->port);
    else
        snprintf(a->endpoint, sizeof a->endpoint, "%s:%lu", c->host, c->port);
    return 0;
}

const struct mh_check_type mh_check_amqp = {
    .name = "amqp",
    .component_type = "component",
    .default_affects = MH_AFFECTS_NODE | MH_AFFECTS_REGION,
    .create = amqp_check_create,
    .run = amqp_run,
    .destroy = amqp_check_destroy,
};
