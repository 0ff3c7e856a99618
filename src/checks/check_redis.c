/* check_redis.c - the `type = redis` check: Magento's session store and its caches.
 *
 * Magento keeps sessions (session.redis, database 2), the default cache (database 0) and the
 * full-page cache (database 1) in Redis, often on separate servers. Each [check.NAME] of this
 * type watches one of them over one persistent hiredis connection, re-opened when it breaks.
 * It reports three measurements:
 *   connectivity: connect, AUTH, SELECT and PING; the value is the PING round trip in ms.
 *   writable:     (write = yes) SET a per-node key with a short TTL and read it back. This
 *                 catches a read-only replica (READONLY, e.g. an ElastiCache Global Datastore
 *                 secondary) and a full server (OOM: maxmemory with noeviction).
 *   memory:       used_memory as a percentage of maxmemory, with warn and fail thresholds.
 * The server's role (master or replica) and memory figures come from INFO, shown as facts.
 *
 * Default effects follow `role = cache | session` (cache is the default):
 *   cache:   connectivity -> node;          writable -> region; memory -> none.
 *   session: connectivity -> node, region;  writable -> region; memory -> none.
 * A read-only store is a region-wide condition (the region is not the active one), so writable
 * never takes a node out of the ALB by default. `affects` overrides connectivity;
 * `writable_affects` and `memory_affects` override the other two.
 *
 * Every blocking step is bounded by the run's deadline: the DNS lookup (getaddrinfo_a), the
 * connect, the TLS handshake and each command (poll() on the socket). It builds against
 * hiredis 0.14 (Debian 12) and 1.x, with TLS where hiredis_ssl exists (MH_HAVE_HIREDIS_SSL).
 * The password never appears in an output or fact: server errors are scrubbed of it too. */
#include "mh_check.h"
#include "mh_check_text.h"
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
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>
#ifdef MH_HAVE_HIREDIS_SSL
#include <hiredis/hiredis_ssl.h>
#include <pthread.h>
#endif

#define HOST_MAX     256
#define SOCKET_MAX   108 /* sizeof sun_path */
#define USERNAME_MAX 128
#define KEY_MAX      256
#define PATH_MAX_LEN 4096
#define ERR_MAX      MH_OUTPUT_MAX
#define DEFAULT_PORT 6379

enum store_role { STORE_CACHE, STORE_SESSION };

struct redis_conf {
    enum store_role role;
    char host[HOST_MAX];
    unsigned long port;
    char socket[SOCKET_MAX]; /* non-empty: connect over this unix socket instead */
    unsigned long database;
    char username[USERNAME_MAX]; /* ACL user; empty: the default user */
    char *password;              /* secret; NULL when the server needs none */
    mh_ms connect_timeout;       /* 0: whatever is left of the run's timeout */
    mh_ms command_timeout;       /* 0: whatever is left of the run's timeout */
    bool write;
    mh_ms write_ttl;
    char key[KEY_MAX];
    double memory_warn; /* percent of maxmemory */
    double memory_fail;
    bool tls;
    char tls_ca_file[PATH_MAX_LEN];
    char tls_ca_dir[PATH_MAX_LEN];
    char tls_server_name[HOST_MAX];
};

struct redis_impl {
    struct redis_conf conf;
    int i_conn, i_write, i_mem; /* measurement indexes; i_write is -1 when write = no */
    redisContext *ctx;          /* the persistent connection; NULL when closed */
    char addr[HOST_MAX];        /* the numeric address the connection goes to */
    struct mh_lookup *lookup;   /* a DNS lookup an earlier run left running */
    unsigned long seq;          /* makes each written value unique */
#ifdef MH_HAVE_HIREDIS_SSL
    redisSSLContext *ssl;
#endif
};

/* How one command ended. Only BROKEN on a reused connection is worth a second connection. */
enum cmd_result { CMD_OK, CMD_REPLY_ERROR, CMD_TIMEOUT, CMD_BROKEN };

/* ---------- small helpers ---------- */

static struct timeval tv_from_ms(mh_ms ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* The time a step may take: what is left of the run, capped by the step's own timeout. */
static mh_ms step_budget(const struct timespec *deadline, mh_ms own_timeout)
{
    mh_ms left = mh_deadline_left(deadline);
    if (own_timeout > 0 && own_timeout < left)
        return own_timeout;
    return left;
}

static void close_connection(struct redis_impl *r)
{
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
}

/* Did hiredis give up on a socket timeout? 0.14 reports one as EAGAIN ("Resource temporarily
 * unavailable"); 1.x has REDIS_ERR_TIMEOUT. */
static bool ctx_timed_out(const redisContext *c)
{
#ifdef REDIS_ERR_TIMEOUT
    if (c->err == REDIS_ERR_TIMEOUT)
        return true;
#endif
    return c->err == REDIS_ERR_IO &&
           (strstr(c->errstr, "temporarily unavailable") || strstr(c->errstr, "timed out"));
}

/* Resolves conf.host into r->addr afresh for each new connection, so that a failover that
 * moves a DNS name (ElastiCache primary endpoint) is followed. Bounded by `deadline`. */
static int resolve_host(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    if (mh_is_numeric_host(r->conf.host)) {
        snprintf(r->addr, sizeof r->addr, "%s", r->conf.host);
        return 0;
    }
    struct addrinfo *res;
    char why[ERR_MAX];
    if (mh_lookup_host(&r->lookup, r->conf.host, deadline, &res, why, sizeof why) != MH_LOOKUP_OK) {
        mh_stage_error(err, ERR_MAX, "resolve", "%s", why);
        return -1;
    }
    const void *a = res->ai_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)res->ai_addr)->sin_addr;
    bool ok = inet_ntop(res->ai_family, a, r->addr, sizeof r->addr) != NULL;
    freeaddrinfo(res);
    if (!ok) {
        mh_stage_error(err, ERR_MAX, "resolve", "%s: unusable address", r->conf.host);
        return -1;
    }
    return 0;
}

/* ---------- commands ---------- */

/* The earlier of the run's deadline and `own_timeout` from now (0: no timeout of its own). */
static void step_deadline(const struct timespec *deadline, mh_ms own_timeout, struct timespec *out)
{
    *out = *deadline;
    if (own_timeout <= 0)
        return;
    struct timespec own;
    mh_deadline_in(&own, own_timeout);
    if (own.tv_sec < out->tv_sec || (own.tv_sec == out->tv_sec && own.tv_nsec < out->tv_nsec))
        *out = own;
}

/* Waits with poll(), whose timeout is precise, unlike SO_RCVTIMEO: the kernel's timer wheel can
 * let a socket timeout of 500 ms fire 30 ms late. 1 ready, 0 deadline passed, -1 error. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
    for (;;) {
        mh_ms left = mh_deadline_left(deadline);
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

/* Writes the command and reads its reply, never blocking past the deadline: hiredis only reads
 * or writes once poll() says the socket is ready. */
static enum cmd_result exchange_polled(redisContext *c, const struct timespec *deadline, int argc,
                                       const char **argv, redisReply **reply)
{
    if (redisAppendCommandArgv(c, argc, argv, NULL) != REDIS_OK)
        return CMD_BROKEN;
    int done = 0, ready;
    while (!done) {
        if ((ready = wait_fd(c->fd, POLLOUT, deadline)) <= 0)
            return ready == 0 ? CMD_TIMEOUT : CMD_BROKEN;
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return CMD_BROKEN;
    }
    for (;;) {
        void *rep = NULL;
        if (redisGetReplyFromReader(c, &rep) != REDIS_OK)
            return CMD_BROKEN;
        if (rep) {
            *reply = rep;
            return CMD_OK;
        }
        if ((ready = wait_fd(c->fd, POLLIN, deadline)) <= 0)
            return ready == 0 ? CMD_TIMEOUT : CMD_BROKEN;
        if (redisBufferRead(c) != REDIS_OK)
            return CMD_BROKEN;
    }
}

/* Over TLS, decrypted bytes can wait inside OpenSSL where poll() cannot see them, so hiredis
 * does the blocking I/O itself, bounded by the socket timeouts. */
static enum cmd_result exchange_blocking(redisContext *c, int argc, const char **argv,
                                         redisReply **reply)
{
    *reply = redisCommandArgv(c, argc, argv, NULL);
    if (*reply)
        return CMD_OK;
    return ctx_timed_out(c) ? CMD_TIMEOUT : CMD_BROKEN;
}

/* Sends one command bounded by the deadline (and command_timeout), and returns its reply in
 * *reply (CMD_OK or CMD_REPLY_ERROR; the caller frees it). On a connection-level failure the
 * connection is closed, since a late reply would otherwise be taken for the next command's, and
 * `err` says why, prefixed by `stage`. */
static enum cmd_result command(struct redis_impl *r, const struct timespec *deadline,
                               const char *stage, char *err, redisReply **reply, int argc,
                               const char **argv)
{
    *reply = NULL;
    struct timespec cmd_deadline, start;
    step_deadline(deadline, r->conf.command_timeout, &cmd_deadline);
    mh_ms budget = mh_deadline_left(&cmd_deadline);
    if (budget <= 0) {
        mh_stage_error(err, ERR_MAX, stage, "no time left before the check's timeout");
        return CMD_TIMEOUT; /* nothing was sent: the connection stays usable */
    }
    mh_now(&start);
    /* The socket timeouts bound what hiredis does by itself (TLS). budget >= 1 ms here: a zero
     * timeval would mean "wait forever". */
    enum cmd_result res = CMD_BROKEN;
    if (redisSetTimeout(r->ctx, tv_from_ms(budget)) == REDIS_OK)
        res = r->conf.tls ? exchange_blocking(r->ctx, argc, argv, reply)
                          : exchange_polled(r->ctx, &cmd_deadline, argc, argv, reply);
    if (res == CMD_TIMEOUT || res == CMD_BROKEN) {
        if (res == CMD_TIMEOUT)
            mh_stage_error(err, ERR_MAX, stage, "no reply within %.0f ms", mh_ms_since(&start));
        else
            mh_stage_error(err, ERR_MAX, stage, "%s",
                           r->ctx->err ? r->ctx->errstr : "connection failed");
        if (*reply)
            freeReplyObject(*reply);
        *reply = NULL;
        close_connection(r);
        return res;
    }
    if ((*reply)->type == REDIS_REPLY_ERROR) {
        mh_stage_error(err, ERR_MAX, stage, "%.*s", (int)(*reply)->len, (*reply)->str);
        return CMD_REPLY_ERROR;
    }
    return CMD_OK;
}

/* Runs a command whose reply only needs to be "not an error". */
static int simple_command(struct redis_impl *r, const struct timespec *deadline, const char *stage,
                          char *err, int argc, const char **argv)
{
    redisReply *rep;
    enum cmd_result res = command(r, deadline, stage, err, &rep, argc, argv);
    if (rep)
        freeReplyObject(rep);
    return res == CMD_OK ? 0 : -1;
}

/* ---------- opening the connection: connect, tls, auth, select ---------- */

static void endpoint_text(const struct redis_impl *r, char *out, size_t outlen)
{
    if (r->conf.socket[0])
        snprintf(out, outlen, "%s", r->conf.socket);
    else if (strchr(r->conf.host, ':'))
        snprintf(out, outlen, "[%s]:%lu", r->conf.host, r->conf.port);
    else
        snprintf(out, outlen, "%s:%lu", r->conf.host, r->conf.port);
}

static int connect_socket(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    char endpoint[HOST_MAX + 16];
    endpoint_text(r, endpoint, sizeof endpoint);
    if (!r->conf.socket[0] && resolve_host(r, deadline, err) < 0)
        return -1;
    mh_ms budget = step_budget(deadline, r->conf.connect_timeout);
    if (budget <= 0) {
        mh_stage_error(err, ERR_MAX, "connect", "%s: no time left before the check's timeout",
                       endpoint);
        return -1;
    }
    struct timeval tv = tv_from_ms(budget);
    redisContext *c = r->conf.socket[0] ? redisConnectUnixWithTimeout(r->conf.socket, tv)
                                        : redisConnectWithTimeout(r->addr, (int)r->conf.port, tv);
    if (!c) {
        mh_stage_error(err, ERR_MAX, "connect", "%s: out of memory", endpoint);
        return -1;
    }
    if (c->err) {
        mh_stage_error(err, ERR_MAX, "connect", "%s: %s", endpoint, c->errstr);
        redisFree(c);
        return -1;
    }
    r->ctx = c;
    return 0;
}

#ifdef MH_HAVE_HIREDIS_SSL
/* The handshake runs on the blocking socket, so its timeout is the socket timeout. */
static int start_tls(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    mh_ms budget = step_budget(deadline, r->conf.connect_timeout);
    if (budget <= 0 || redisSetTimeout(r->ctx, tv_from_ms(budget)) != REDIS_OK) {
        mh_stage_error(err, ERR_MAX, "tls", "no time left before the check's timeout");
        close_connection(r);
        return -1;
    }
    if (redisInitiateSSLWithContext(r->ctx, r->ssl) != REDIS_OK) {
        mh_stage_error(err, ERR_MAX, "tls", "%s",
                       r->ctx->errstr[0] ? r->ctx->errstr : "handshake failed");
        close_connection(r);
        return -1;
    }
    return 0;
}
#endif

static int authenticate(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    if (!r->conf.password)
        return 0;
    const char *argv[3] = {"AUTH"};
    int argc = 1;
    if (r->conf.username[0])
        argv[argc++] = r->conf.username;
    argv[argc++] = r->conf.password;
    return simple_command(r, deadline, "auth", err, argc, argv);
}

static int select_database(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    if (r->conf.database == 0)
        return 0;
    char db[24];
    snprintf(db, sizeof db, "%lu", r->conf.database);
    const char *argv[] = {"SELECT", db};
    return simple_command(r, deadline, "select", err, 2, argv);
}

/* Opens, secures, authenticates and selects; on any failure nothing is left open. */
static int open_connection(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    if (connect_socket(r, deadline, err) < 0)
        return -1;
#ifdef MH_HAVE_HIREDIS_SSL
    if (r->conf.tls && start_tls(r, deadline, err) < 0)
        return -1;
#endif
    if (authenticate(r, deadline, err) < 0 || select_database(r, deadline, err) < 0) {
        close_connection(r); /* a half-set-up connection must not be reused */
        return -1;
    }
    return 0;
}

/* ---------- the stages of a run ---------- */

static enum cmd_result ping(struct redis_impl *r, const struct timespec *deadline, double *ms,
                            char *err)
{
    const char *argv[] = {"PING"};
    redisReply *rep;
    struct timespec start;
    mh_now(&start);
    enum cmd_result res = command(r, deadline, "ping", err, &rep, 1, argv);
    *ms = mh_ms_since(&start);
    if (rep)
        freeReplyObject(rep);
    return res;
}

/* Connects when needed and PINGs. A reused connection the server has closed meanwhile (restart,
 * idle timeout, failover) gets one fresh connection in the same run, so a restart that has
 * already completed is not reported as a failure. */
static int reach_server(struct redis_impl *r, const struct timespec *deadline, double *ping_ms,
                        bool *fresh, char *err)
{
    *fresh = r->ctx == NULL;
    if (*fresh && open_connection(r, deadline, err) < 0)
        return -1;
    enum cmd_result res = ping(r, deadline, ping_ms, err);
    if (res == CMD_BROKEN && !*fresh) {
        *fresh = true;
        if (open_connection(r, deadline, err) < 0)
            return -1;
        res = ping(r, deadline, ping_ms, err);
    }
    return res == CMD_OK ? 0 : -1;
}

/* Copies the value of `key` from INFO text ("key:value\r\n" lines). */
static bool info_field(const char *info, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    for (const char *line = info; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n > klen && strncmp(line, key, klen) == 0 && line[klen] == ':') {
            size_t vlen = n - klen - 1;
            if (vlen > 0 && line[klen + vlen] == '\r')
                vlen--;
            if (vlen >= outlen)
                vlen = outlen - 1;
            memcpy(out, line + klen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

static bool info_number(const char *info, const char *key, double *out)
{
    char buf[32];
    char *end;
    if (!info_field(info, key, buf, sizeof buf))
        return false;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || end == buf)
        return false;
    *out = v;
    return true;
}

static void format_bytes(double bytes, char *out, size_t outlen)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, outlen, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

static void report_role(const char *info, struct mh_run *out)
{
    char role[32], value[MH_FACT_VALUE_MAX];
    if (!info_field(info, "role", role, sizeof role))
        return;
    bool master = strcmp(role, "master") == 0;
    out->role = master ? MH_ROLE_WRITER : MH_ROLE_READER;
    mh_run_fact(out, "redis_role", "%s", master ? "master" : "replica");
    if (!master && info_field(info, "master_link_status", value, sizeof value))
        mh_run_fact(out, "master_link", "%s", value);
    if (master && info_field(info, "connected_slaves", value, sizeof value))
        mh_run_fact(out, "replicas", "%s", value);
}

/* An allkeys-* policy evicts whatever it must, so a cache sitting at maxmemory is working as
 * designed; noeviction and volatile-* can refuse writes once memory is full. */
static bool policy_always_evicts(const char *policy)
{
    return strncmp(policy, "allkeys-", 8) == 0;
}

static void report_memory(struct redis_impl *r, const char *info, struct mh_run *out)
{
    double used, max;
    char policy[32] = "unknown", used_s[32], max_s[32];
    info_field(info, "maxmemory_policy", policy, sizeof policy);
    if (!info_number(info, "used_memory", &used) || !info_number(info, "maxmemory", &max)) {
        mh_observe(out, r->i_mem, MH_WARN, "info: no used_memory/maxmemory in INFO");
        return;
    }
    format_bytes(used, used_s, sizeof used_s);
    mh_run_fact(out, "used_memory", "%s", used_s);
    mh_run_fact(out, "maxmemory_policy", "%s", policy);
    if (max <= 0) {
        mh_observe(out, r->i_mem, MH_PASS, "%s used, no maxmemory set", used_s);
        return;
    }
    format_bytes(max, max_s, sizeof max_s);
    mh_run_fact(out, "maxmemory", "%s", max_s);
    double pct = used * 100.0 / max;
    enum mh_status st = MH_PASS;
    if (!policy_always_evicts(policy))
        st = pct >= r->conf.memory_fail ? MH_FAIL : pct >= r->conf.memory_warn ? MH_WARN : MH_PASS;
    mh_observe(out, r->i_mem, st, "%.1f%% of maxmemory (%s of %s, %s)", pct, used_s, max_s, policy);
    mh_observe_value(out, r->i_mem, pct, "%");
}

/* INFO gives role, replication and memory in one round trip. A server that refuses INFO (ACL)
 * still passes connectivity; only the memory measurement says it cannot see. `err` says why
 * when the connection was lost on the way. */
static void observe_info(struct redis_impl *r, const struct timespec *deadline, struct mh_run *out,
                         char *err)
{
    const char *argv[] = {"INFO"};
    redisReply *rep;
    enum cmd_result res = command(r, deadline, "info", err, &rep, 1, argv);
    if (res == CMD_OK && rep->type != REDIS_REPLY_STRING && rep->type != REDIS_REPLY_STATUS) {
        mh_stage_error(err, ERR_MAX, "info", "unexpected reply type %d", rep->type);
        res = CMD_REPLY_ERROR;
    }
    if (res != CMD_OK) {
        mh_scrub(err, r->conf.password);
        mh_observe(out, r->i_mem, res == CMD_REPLY_ERROR ? MH_WARN : MH_FAIL, "%s", err);
    } else {
        char version[32];
        if (info_field(rep->str, "redis_version", version, sizeof version))
            mh_run_fact(out, "version", "%s", version);
        report_role(rep->str, out);
        report_memory(r, rep->str, out);
    }
    if (rep)
        freeReplyObject(rep);
}

/* SETs the per-node key and reads it back. READONLY, OOM and NOPERM come through as the
 * server's own words after "write: ". */
static int write_and_read_back(struct redis_impl *r, const struct timespec *deadline, char *err)
{
    char value[64], ttl[24];
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    snprintf(value, sizeof value, "%lld.%09ld-%lu", (long long)wall.tv_sec, wall.tv_nsec, ++r->seq);
    snprintf(ttl, sizeof ttl, "%lld", (long long)r->conf.write_ttl);
    const char *set[] = {"SET", r->conf.key, value, "PX", ttl};
    if (simple_command(r, deadline, "write", err, 5, set) < 0)
        return -1;
    const char *get[] = {"GET", r->conf.key};
    redisReply *rep;
    int rc = -1;
    if (command(r, deadline, "read back", err, &rep, 2, get) == CMD_OK) {
        if (rep->type == REDIS_REPLY_NIL)
            mh_stage_error(err, ERR_MAX, "read back", "%s is missing right after SET", r->conf.key);
        else if (rep->type != REDIS_REPLY_STRING || strcmp(rep->str, value) != 0)
            mh_stage_error(err, ERR_MAX, "read back", "%s holds another value (a second writer?)",
                           r->conf.key);
        else
            rc = 0;
    }
    if (rep)
        freeReplyObject(rep);
    return rc;
}

static void observe_write(struct redis_impl *r, const struct timespec *deadline, struct mh_run *out)
{
    char err[ERR_MAX];
    struct timespec start;
    mh_now(&start);
    if (write_and_read_back(r, deadline, err) == 0) {
        double ms = mh_ms_since(&start);
        mh_observe(out, r->i_write, MH_PASS, "SET and read back %s in %.2f ms", r->conf.key, ms);
        mh_observe_value(out, r->i_write, ms, "ms");
        return;
    }
    /* A primary that was demoted keeps our connection open but refuses writes. When the
     * endpoint is a DNS name (ElastiCache), the next run reconnects and re-resolves it, to follow
     * a failover to the new primary. */
    if (strncmp(err, "write: READONLY", 15) == 0 && !r->conf.socket[0] &&
        !mh_is_numeric_host(r->conf.host))
        close_connection(r);
    mh_scrub(err, r->conf.password);
    /* Plain words first for the region's reason: "session store is read-only". */
    if (strncmp(err, "write: READONLY", 15) == 0)
        mh_observe(out, r->i_write, MH_FAIL, "write: %s is read-only (a replica): %s",
                   r->conf.role == STORE_SESSION ? "session store" : "cache", err + 7);
    else
        mh_observe(out, r->i_write, MH_FAIL, "%s", err);
}

static void report_unreachable(struct redis_impl *r, const char *err, struct mh_run *out)
{
    mh_observe(out, r->i_conn, MH_FAIL, "%s", err);
    if (r->i_write >= 0)
        mh_observe(out, r->i_write, MH_FAIL, "%s", err);
    mh_observe(out, r->i_mem, MH_FAIL, "%s", err);
}

static void redis_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    struct redis_impl *r = check->impl;
    char endpoint[HOST_MAX + 16], err[ERR_MAX] = "";
    double ping_ms = 0;
    bool fresh;
    endpoint_text(r, endpoint, sizeof endpoint);
    mh_run_fact(out, "endpoint", "%s", endpoint);
    mh_run_fact(out, "database", "%lu", r->conf.database);
    if (reach_server(r, deadline, &ping_ms, &fresh, err) < 0) {
        mh_scrub(err, r->conf.password);
        report_unreachable(r, err, out);
        return;
    }
    mh_observe(out, r->i_conn, MH_PASS, "PONG in %.2f ms (%s connection)", ping_ms,
               fresh ? "new" : "reused");
    mh_observe_value(out, r->i_conn, ping_ms, "ms");
    observe_info(r, deadline, out, err);
    if (r->i_write >= 0) {
        if (r->ctx)
            observe_write(r, deadline, out);
        else
            mh_observe(out, r->i_write, MH_FAIL, "%s", err); /* already redacted */
    }
}

/* ---------- configuration ---------- */

static int parse_role(struct mh_section *sec, enum store_role *role)
{
    const char *v = mh_section_get(sec, "role");
    if (!v || strcmp(v, "cache") == 0)
        *role = STORE_CACHE;
    else if (strcmp(v, "session") == 0)
        *role = STORE_SESSION;
    else
        return mh_section_error(sec, "role", "expected session or cache");
    return 0;
}

/* "90%" -> 90. Thresholds are percentages of maxmemory only. */
static int parse_percent(struct mh_section *sec, const char *key, double *out)
{
    struct mh_size size = {.percent = true, .value = *out};
    if (mh_section_size(sec, key, &size) < 0)
        return -1;
    if (!size.percent)
        return mh_section_error(sec, key, "expected a percentage of maxmemory, such as 90%%");
    *out = size.value;
    return 0;
}

/* host/port or socket. A host starting with "/" is a socket, as in Magento's env.php. */
static int parse_endpoint(struct mh_section *sec, struct redis_conf *c)
{
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = DEFAULT_PORT;
    bool has_host = mh_section_get(sec, "host") != NULL;
    if (mh_section_string(sec, "host", c->host, sizeof c->host) < 0 ||
        mh_section_uint(sec, "port", 1, 65535, &c->port) < 0 ||
        mh_section_string(sec, "socket", c->socket, sizeof c->socket) < 0)
        return -1;
    if (c->host[0] == '/') {
        size_t len = strlen(c->host);
        if (len >= sizeof c->socket)
            return mh_section_error(sec, "host", "unix socket path too long");
        memcpy(c->socket, c->host, len + 1);
    } else if (has_host && c->socket[0]) {
        return mh_section_error(sec, "socket", "set either host (and port) or socket, not both");
    }
    if (!c->host[0])
        return mh_section_error(sec, "host", "must not be empty");
    return 0;
}

static int parse_tls(struct mh_section *sec, struct redis_conf *c)
{
    if (mh_section_bool(sec, "tls", &c->tls) < 0 ||
        mh_section_string(sec, "tls_ca_file", c->tls_ca_file, sizeof c->tls_ca_file) < 0 ||
        mh_section_string(sec, "tls_ca_dir", c->tls_ca_dir, sizeof c->tls_ca_dir) < 0 ||
        mh_section_string(sec, "tls_server_name", c->tls_server_name, sizeof c->tls_server_name) <
            0)
        return -1;
    if (!c->tls && (c->tls_ca_file[0] || c->tls_ca_dir[0] || c->tls_server_name[0]))
        return mh_section_error(sec, "tls", "tls_* keys are set but tls is off");
#ifndef MH_HAVE_HIREDIS_SSL
    if (c->tls)
        return mh_section_error(sec, "tls",
                                "this build has no TLS support (hiredis_ssl was not found)");
#endif
    if (c->tls && c->socket[0])
        return mh_section_error(sec, "tls", "TLS over a unix socket is not supported");
    if (c->tls && !c->tls_server_name[0])
        snprintf(c->tls_server_name, sizeof c->tls_server_name, "%s", c->host);
    return 0;
}

static int parse_auth(struct mh_section *sec, struct redis_conf *c)
{
    if (mh_section_string(sec, "username", c->username, sizeof c->username) < 0 ||
        mh_section_secret(sec, "password", &c->password) < 0)
        return -1;
    if (c->username[0] && !c->password)
        return mh_section_error(sec, "username", "an ACL user needs password_file or password_env");
    return 0;
}

/* The key written each run: one per node and check, so nodes never race each other. */
static int parse_write(struct mh_section *sec, const struct mh_check *check, struct redis_conf *c)
{
    char prefix[KEY_MAX] = "magento-healthd:";
    c->write = true;
    c->write_ttl = 60000;
    if (mh_section_bool(sec, "write", &c->write) < 0 ||
        mh_section_duration(sec, "write_ttl", &c->write_ttl) < 0 ||
        mh_section_string(sec, "key_prefix", prefix, sizeof prefix) < 0)
        return -1;
    if (c->write_ttl < 1000)
        return mh_section_error(sec, "write_ttl", "must be at least 1s");
    const struct mh_server_conf *server = mh_section_server(sec);
    int n = snprintf(c->key, sizeof c->key, "%s%s:%s", prefix, server->node, check->name);
    if (n < 0 || (size_t)n >= sizeof c->key)
        return mh_section_error(sec, "key_prefix", "the resulting key is too long");
    return 0;
}

static int parse_thresholds(struct mh_section *sec, struct redis_conf *c)
{
    c->memory_warn = 90;
    c->memory_fail = 98;
    if (parse_percent(sec, "memory_warn", &c->memory_warn) < 0 ||
        parse_percent(sec, "memory_fail", &c->memory_fail) < 0)
        return -1;
    if (c->memory_warn > c->memory_fail)
        return mh_section_error(sec, "memory_warn", "must not be above memory_fail (%g%%)",
                                c->memory_fail);
    return 0;
}

static int parse_timeouts(struct mh_section *sec, struct redis_conf *c)
{
    return mh_section_duration(sec, "connect_timeout", &c->connect_timeout) < 0 ||
                   mh_section_duration(sec, "command_timeout", &c->command_timeout) < 0
               ? -1
               : 0;
}

static int parse_conf(struct mh_section *sec, const struct mh_check *check, struct redis_conf *c)
{
    if (parse_role(sec, &c->role) < 0)
        return -1;
    c->database = c->role == STORE_SESSION ? 2 : 0; /* Magento's defaults */
    if (parse_endpoint(sec, c) < 0 ||
        mh_section_uint(sec, "database", 0, 65535, &c->database) < 0 || parse_auth(sec, c) < 0 ||
        parse_timeouts(sec, c) < 0 || parse_write(sec, check, c) < 0 ||
        parse_thresholds(sec, c) < 0 || parse_tls(sec, c) < 0)
        return -1;
    return 0;
}

#ifdef MH_HAVE_HIREDIS_SSL
static void init_openssl_once(void)
{
    redisInitOpenSSL();
}

/* Loads the CA now, so that a bad path is a configuration error rather than a failing check.
 * redisCreateSSLContext() verifies the chain only; with hiredis' verify_name (meson defines
 * MH_HAVE_HIREDIS_SSL_VERIFY_NAME) the certificate must also name the server. */
static int create_tls_context(struct mh_section *sec, struct redis_impl *r)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_openssl_once);
    const struct redis_conf *c = &r->conf;
    const char *ca_file = c->tls_ca_file[0] ? c->tls_ca_file : NULL;
    const char *ca_dir = c->tls_ca_dir[0] ? c->tls_ca_dir : NULL;
    redisSSLContextError ssl_err = REDIS_SSL_CTX_NONE;
#ifdef MH_HAVE_HIREDIS_SSL_VERIFY_NAME
    redisSSLOptions opts = {.cacert_filename = ca_file,
                            .capath = ca_dir,
                            .server_name = c->tls_server_name,
                            .verify_mode = REDIS_SSL_VERIFY_PEER,
                            .verify_name = c->tls_server_name};
    r->ssl = redisCreateSSLContextWithOptions(&opts, &ssl_err);
#else
    r->ssl = redisCreateSSLContext(ca_file, ca_dir, NULL, NULL, c->tls_server_name, &ssl_err);
#endif
    if (!r->ssl)
        return mh_section_error(sec, ca_file ? "tls_ca_file" : "tls", "%s",
                                redisSSLContextGetError(ssl_err));
    return 0;
}
#endif

static void redis_destroy(struct mh_check *check)
{
    struct redis_impl *r = check->impl;
    if (!r)
        return;
    close_connection(r);
    mh_lookup_abandon(&r->lookup);
#ifdef MH_HAVE_HIREDIS_SSL
    if (r->ssl)
        redisFreeSSLContext(r->ssl);
#endif
    mh_secret_free(r->conf.password);
    free(r);
    check->impl = NULL;
}

/* Declares the measurements with the defaults described at the top of this file. */
static int declare_measurements(struct mh_check *check, struct mh_section *sec,
                                struct redis_impl *r)
{
    unsigned conn =
        r->conf.role == STORE_SESSION ? MH_AFFECTS_NODE | MH_AFFECTS_REGION : MH_AFFECTS_NODE;
    unsigned writable = MH_AFFECTS_REGION, memory = MH_AFFECTS_NONE;
    if (check->affects_set)
        conn = check->affects;
    if (mh_section_affects(sec, "writable_affects", &writable) < 0 ||
        mh_section_affects(sec, "memory_affects", &memory) < 0)
        return -1;
    if (!r->conf.write && mh_section_get(sec, "writable_affects"))
        return mh_section_error(sec, "writable_affects", "set, but write = no");
    r->i_conn = mh_check_declare(check, "connectivity", conn);
    r->i_write = r->conf.write ? mh_check_declare_write(check, "writable", writable) : -1;
    r->i_mem = mh_check_declare(check, "memory", memory);
    return 0;
}

static int redis_create(struct mh_check *check, struct mh_section *sec)
{
    struct redis_impl *r = calloc(1, sizeof *r);
    if (!r)
        return mh_section_error(sec, "type", "out of memory");
    check->impl = r;
    if (parse_conf(sec, check, &r->conf) < 0 || declare_measurements(check, sec, r) < 0) {
        redis_destroy(check);
        return -1;
    }
#ifdef MH_HAVE_HIREDIS_SSL
    if (r->conf.tls && create_tls_context(sec, r) < 0) {
        redis_destroy(check);
        return -1;
    }
#endif
    return 0;
}

const struct mh_check_type mh_check_redis = {
    .name = "redis",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE,
    .create = redis_create,
    .run = redis_run,
    .destroy = redis_destroy,
};
