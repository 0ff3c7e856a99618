/* check_mysql.c - the mysql check: is Magento's database (Aurora MySQL, MySQL, MariaDB) reachable,
 * is it the writer or a reader, does it accept writes, and how far behind the writer region is it.
 *
 * Magento's pub/health_check.php opens a new connection per probe, runs no query, never checks
 * writability and sets no timeout. This check keeps ONE connection per check, reused across runs,
 * and bounds every step (DNS, connect, TLS, each query) by the run's deadline through the
 * non-blocking API of MariaDB Connector/C and poll(). Nothing here blocks past the deadline.
 *
 * Measurements:
 *   connectivity  a real round trip (one SELECT that also reads the role); value = round trip ms.
 *                 affects = `affects` (default node, region).
 *   writable      upserts this node's heartbeat row (only with write = yes, the default).
 *                 affects = `write_affects` (default region).
 *   lag           UTC_TIMESTAMP(6) minus the newest heartbeat written by `writer_region` (or by
 *                 any region, with writer_region = any), in ms, as pt-heartbeat measures it (only
 *                 when writer_region is set). A database that is the writer is behind nobody:
 *                 its lag is 0 whatever writer_region says, so a promoted region is not failed
 *                 by its own stale setting.
 *                 affects = `lag_affects` (default region).
 * Facts: role (writer when @@innodb_read_only and @@read_only are both off), server, version,
 * read_only, connection_id, connects, and on Aurora aurora_replica_lag_ms /
 * aurora_visibility_lag_ms (optional extras, never required).
 *
 * Keys of [check.NAME] with type = mysql:
 *   host = db.example.internal   TCP host name or address (or use socket; exactly one of them)
 *   port = 3306                  TCP port
 *   socket = /run/mysqld/mysqld.sock   unix socket path instead of host
 *   user = healthd               a dedicated user (see the GRANTs below), never Magento's own
 *   password_file = /etc/magento-healthd/mysql.pw   or password_env = NAME (never inline)
 *   database = magento_healthd   the schema that holds the heartbeat table
 *   heartbeat_table = magento_healthd_heartbeat
 *   tls = no                     yes: require TLS (Aurora with require_secure_transport)
 *   tls_ca = /etc/ssl/rds-global-bundle.pem   CA file for the server certificate (needs tls)
 *   tls_verify = yes             verify the certificate and the host name (with tls = yes)
 *   connect_timeout = <timeout>  DNS + TCP + TLS + login; each limit is also cut to the time left
 *   read_timeout = <timeout>     each read query (connectivity, lag)
 *   write_timeout = <timeout>    the heartbeat upsert
 *   write = yes                  report "writable" by upserting the heartbeat row
 *   write_affects = region
 *   writer_region = eu-west-1    report "lag" behind the heartbeats of this region; "any": behind
 *                                the newest heartbeat of any region. Only the writer can write
 *                                heartbeats, so "any" follows failovers without a config change.
 *   lag_warn = 5s                lag from here on is warn ...
 *   lag_fail = 30s               ... and from here on fail. Lag includes up to one check interval
 *                                of the writer region, as with pt-heartbeat.
 *   lag_affects = region
 *
 * The heartbeat table (created by the check when it has the CREATE privilege; otherwise the
 * writable output prints this statement):
 *   CREATE TABLE magento_healthd.magento_healthd_heartbeat (
 *     node   VARCHAR(255) PRIMARY KEY,           -- [server] node
 *     region VARCHAR(128) NOT NULL,              -- [server] region
 *     ts     DATETIME(6)  NOT NULL,              -- the writer's UTC_TIMESTAMP(6)
 *     KEY (region, ts)
 *   ) ENGINE=InnoDB;
 *
 * Least privilege: a dedicated user, never Magento's database user.
 *   CREATE DATABASE magento_healthd;
 *   CREATE USER 'healthd'@'10.0.%' IDENTIFIED BY '...' REQUIRE SSL;   -- REQUIRE SSL: with tls
 *   GRANT SELECT, INSERT, UPDATE ON magento_healthd.* TO 'healthd'@'10.0.%';
 *   -- optional: let the check create its table itself
 *   GRANT CREATE ON magento_healthd.* TO 'healthd'@'10.0.%';
 * With write = no only SELECT is needed; connectivity alone needs no grant at all. No PROCESS,
 * SUPER, REPLICATION CLIENT or access to Magento's schema.
 *
 * Why no MYSQL_OPT_RECONNECT: the library's silent reconnect blocks with its own whole-second
 * timeouts outside our deadline and hides that the connection broke. Instead a lost connection
 * (2006/2013/2055/4031) or a step that ran past the deadline closes it; the next step reconnects,
 * and a reused connection found dead at the start of a run is replaced once within the same run
 * (servers drop idle sessions after wait_timeout; that is no failure).
 *
 * Blocked writes: a write blocked by a lock (FLUSH TABLES WITH READ LOCK, a metadata lock) keeps
 * waiting on the server even after the client disconnects, so abandoning it and reconnecting each
 * run would pile up one blocked server thread per run. On MariaDB the upsert carries
 * SET STATEMENT max_statement_time, so the server ends it just before the client's limit and the
 * run reports "write: timed out ..." with nothing left over. MySQL and Aurora can only bound lock
 * waits in whole seconds (lock_wait_timeout, innodb_lock_wait_timeout, set per session): there a
 * write that outlives the run stays in flight on the single connection and is finished at the
 * start of the next run (connectivity warns meanwhile); one blocked far longer is abandoned. */
#include "mh_check.h"
#include "mh_check_text.h"
#include "mh_offload.h"
#include "mh_resolve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <mysql.h>

/* Error numbers the check tells apart; servers send them, whatever the client headers define. */
enum {
    E_CON_COUNT = 1040,       /* too many connections */
    E_DBACCESS_DENIED = 1044, /* access denied to a database */
    E_ACCESS_DENIED = 1045,   /* wrong user or password */
    E_BAD_DB = 1049,          /* unknown database */
    E_TABLEACCESS_DENIED = 1142,
    E_NO_SUCH_TABLE = 1146,
    E_UNKNOWN_VARIABLE = 1193,
    E_LOCK_WAIT_TIMEOUT = 1205,
    E_OPTION_PREVENTS = 1290, /* --read-only / --super-read-only */
    E_ACCESS_DENIED_NO_PW = 1698,
    E_READ_ONLY_TRX = 1792,  /* write in a READ ONLY transaction */
    E_READ_ONLY_MODE = 1836, /* innodb_read_only: Aurora readers */
    E_PASSWORD_EXPIRED = 1862,
    E_STATEMENT_TIMEOUT = 1969, /* MariaDB max_statement_time */
    E_MYSQL_EXEC_TIMEOUT = 3024,
    E_CONNECTION_ERROR = 2002, /* unix socket */
    E_CONN_HOST_ERROR = 2003,  /* TCP */
    E_SERVER_GONE = 2006,
    E_SERVER_LOST = 2013,
    E_SERVER_LOST_EXTENDED = 2055,
    E_CLIENT_INTERACTION_TIMEOUT = 4031, /* MySQL 8: closed after wait_timeout */
};

#define ERR_MAX       200
#define SQL_MAX       1024
#define VERSION_MAX   64
#define MARGIN_MAX_MS 25 /* kept free before the run's deadline */
#define MAX_ADDRS     4  /* addresses of a host name tried in one connect */

/* The heartbeat table's columns, shared by CREATE TABLE and the hint printed without privilege. */
#define HEARTBEAT_COLUMNS                                                                          \
    "(node VARCHAR(255) PRIMARY KEY, region VARCHAR(128) NOT NULL, "                               \
    "ts DATETIME(6) NOT NULL, KEY (region, ts))"

struct mysql_conf {
    char host[256];
    unsigned port;
    char socket[108];
    char user[128];
    char *password; /* NULL: none */
    char database[65];
    char table[65];
    bool tls;
    bool tls_verify;
    char tls_ca[4096];
    mh_ms connect_timeout; /* 0: only the run's deadline */
    mh_ms read_timeout;
    mh_ms write_timeout;
    bool write;
    char writer_region[128];
    mh_ms lag_warn;
    mh_ms lag_fail;
};

struct mysql_impl {
    struct mysql_conf conf;
    const struct mh_server_conf *server;
    int i_conn, i_write, i_lag; /* measurement indexes; -1 when not declared */
    MYSQL *conn;                /* the one connection, or NULL */
    unsigned long connects;     /* connections opened so far, for the detailed view */
    bool write_in_flight;       /* a heartbeat upsert from an earlier run is still pending */
    int write_wait;             /* the MYSQL_WAIT_* it was waiting for */
    struct timespec write_started;
    int aurora;          /* -1 not probed yet on this connection, 0 no, 1 yes */
    bool statement_time; /* the server has MariaDB's max_statement_time */
    bool aurora_global_gone;
    struct mh_lookup *lookup;      /* a DNS lookup an earlier run left running */
    struct mh_offload *connecting; /* a TLS connect Connector/C resolves itself (see below) */
    struct tls_connect *connect_job;
};

/* What the connectivity query found. */
struct probe {
    bool innodb_read_only;
    bool read_only;
    char version[VERSION_MAX];
    unsigned long connection_id;
    double rtt_ms;
};

enum step { STEP_DONE, STEP_ERROR, STEP_TIMEOUT };

/* ---- small helpers ---- */

static bool before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* The deadline of one step: `limit` ms from now, but never past the run's deadline. */
static void step_deadline(struct timespec *out, const struct timespec *deadline, mh_ms limit)
{
    *out = *deadline;
    if (limit > 0) {
        struct timespec lim;
        mh_deadline_in(&lim, limit);
        if (before(&lim, deadline))
            *out = lim;
    }
}

/* mh_observe() with the password scrubbed from the text. */
static void observe(struct mysql_impl *im, struct mh_run *out, int i, enum mh_status st,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void observe(struct mysql_impl *im, struct mh_run *out, int i, enum mh_status st,
                    const char *fmt, ...)
{
    if (i < 0)
        return;
    char text[MH_OUTPUT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    mh_scrub(text, im->conf.password);
    mh_observe(out, i, st, "%s", text);
}

/* Sets every declared measurement to fail with the same reason (a stage they all depend on). */
static void fail_all(struct mysql_impl *im, struct mh_run *out, const char *why)
{
    observe(im, out, im->i_conn, MH_FAIL, "%s", why);
    observe(im, out, im->i_write, MH_FAIL, "%s", why);
    observe(im, out, im->i_lag, MH_FAIL, "%s", why);
}

static bool is_connection_lost(unsigned err)
{
    return err == E_SERVER_GONE || err == E_SERVER_LOST || err == E_SERVER_LOST_EXTENDED ||
           err == E_CLIENT_INTERACTION_TIMEOUT;
}

static bool is_read_only_error(unsigned err)
{
    return err == E_OPTION_PREVENTS || err == E_READ_ONLY_MODE || err == E_READ_ONLY_TRX;
}

static bool is_server_timeout(unsigned err)
{
    return err == E_LOCK_WAIT_TIMEOUT || err == E_STATEMENT_TIMEOUT || err == E_MYSQL_EXEC_TIMEOUT;
}

/* Nothing listens at that address: another address of the same host may do better. */
static bool is_refused(unsigned err)
{
    return err == E_CONNECTION_ERROR || err == E_CONN_HOST_ERROR;
}

static bool is_auth_error(unsigned err)
{
    return err == E_ACCESS_DENIED || err == E_DBACCESS_DENIED || err == E_ACCESS_DENIED_NO_PW ||
           err == E_PASSWORD_EXPIRED;
}

/* "errno text" of the connection's last error, e.g. "1045 Access denied for user ...". */
static void last_error(MYSQL *m, char *buf, size_t len)
{
    snprintf(buf, len, "%u %s", mysql_errno(m), mysql_error(m));
}

/* ---- waiting for the non-blocking API ---- */

/* Waits for what the library asked for (MYSQL_WAIT_*), never past `deadline`. Returns the
 * events for the *_cont() call, or 0 when the deadline came first. */
static int wait_for_io(MYSQL *m, int status, const struct timespec *deadline)
{
    struct pollfd pfd = {.fd = (int)mysql_get_socket(m)};
    if (status & MYSQL_WAIT_READ)
        pfd.events |= POLLIN;
    if (status & MYSQL_WAIT_WRITE)
        pfd.events |= POLLOUT;
    if (status & MYSQL_WAIT_EXCEPT)
        pfd.events |= POLLPRI;
    mh_ms left = mh_deadline_left(deadline);
    bool library_timeout = false;
    if (status & MYSQL_WAIT_TIMEOUT) {
        mh_ms lib = (mh_ms)mysql_get_timeout_value_ms(m);
        if (lib < left) {
            left = lib;
            library_timeout = true;
        }
    }
    int n;
    do
        n = poll(&pfd, 1, (int)left);
    while (n < 0 && errno == EINTR && (left = mh_deadline_left(deadline)) > 0);
    if (n <= 0)
        return library_timeout ? MYSQL_WAIT_TIMEOUT : 0;
    int events = 0;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
        events |= MYSQL_WAIT_READ;
    if (pfd.revents & (POLLOUT | POLLHUP | POLLERR))
        events |= MYSQL_WAIT_WRITE;
    if (pfd.revents & POLLPRI)
        events |= MYSQL_WAIT_EXCEPT;
    events &= status;
    return events ? events : (status & (MYSQL_WAIT_READ | MYSQL_WAIT_WRITE));
}

/* Continues a started mysql_real_query until done or the deadline. On STEP_TIMEOUT `*status`
 * holds what it still waits for, to continue it later. */
static enum step finish_query(MYSQL *m, int *status, int *rc, const struct timespec *deadline)
{
    while (*status) {
        int events = wait_for_io(m, *status, deadline);
        if (!events)
            return STEP_TIMEOUT;
        *status = mysql_real_query_cont(rc, m, events);
    }
    return *rc ? STEP_ERROR : STEP_DONE;
}

static enum step finish_store(MYSQL *m, int status, MYSQL_RES **res,
                              const struct timespec *deadline)
{
    while (status) {
        int events = wait_for_io(m, status, deadline);
        if (!events)
            return STEP_TIMEOUT;
        status = mysql_store_result_cont(res, m, events);
    }
    return *res || mysql_errno(m) == 0 ? STEP_DONE : STEP_ERROR;
}

static enum step finish_connect(MYSQL *m, int status, MYSQL *ret, const struct timespec *deadline)
{
    while (status) {
        int events = wait_for_io(m, status, deadline);
        if (!events)
            return STEP_TIMEOUT;
        status = mysql_real_connect_cont(&ret, m, events);
    }
    return ret ? STEP_DONE : STEP_ERROR;
}

/* Runs one statement; with `res` also fetches its (small) result set. */
static enum step run_sql(MYSQL *m, const char *sql, MYSQL_RES **res,
                         const struct timespec *deadline)
{
    int rc = 0;
    int status = mysql_real_query_start(&rc, m, sql, strlen(sql));
    enum step st = finish_query(m, &status, &rc, deadline);
    if (st != STEP_DONE || !res)
        return st;
    *res = NULL;
    return finish_store(m, mysql_store_result_start(res, m), res, deadline);
}

/* ---- the connection ---- */

/* Drops the connection. A step cut off mid-way leaves the protocol in an unknown state, so the
 * socket is shut down first: closing then neither waits for nor talks to the server. */
static void disconnect(struct mysql_impl *im, bool abrupt)
{
    if (!im->conn)
        return;
    if (abrupt && (int)mysql_get_socket(im->conn) >= 0)
        shutdown((int)mysql_get_socket(im->conn), SHUT_RDWR);
    mysql_close(im->conn);
    im->conn = NULL;
    im->write_in_flight = false;
    im->aurora = -1;
}

/* Where to connect: a socket path, or the addresses to try in order. */
struct target {
    char addr[MAX_ADDRS][INET6_ADDRSTRLEN + 256];
    int n;
};

/* Copies the looked-up addresses into `t`, in the resolver's order of preference. */
static void take_addresses(struct addrinfo *res, struct target *t)
{
    t->n = 0;
    for (const struct addrinfo *ai = res; ai && t->n < MAX_ADDRS; ai = ai->ai_next) {
        const void *a = ai->ai_family == AF_INET6
                            ? (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                            : (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (inet_ntop(ai->ai_family, a, t->addr[t->n], sizeof t->addr[t->n]))
            t->n++;
    }
}

/* Looks the host up within the deadline; see mh_resolve.h. */
static enum step lookup_host(struct mysql_impl *im, const struct timespec *deadline,
                             struct target *t, char *err, size_t errlen)
{
    struct addrinfo *res;
    char why[ERR_MAX];
    enum mh_lookup_result r =
        mh_lookup_host(&im->lookup, im->conf.host, deadline, &res, why, sizeof why);
    if (r != MH_LOOKUP_OK) {
        mh_say(err, errlen,
               r == MH_LOOKUP_TIMEOUT ? "connect: DNS lookup timed out: %s"
                                      : "connect: cannot resolve %s",
               why);
        return r == MH_LOOKUP_TIMEOUT ? STEP_TIMEOUT : STEP_ERROR;
    }
    take_addresses(res, t);
    freeaddrinfo(res);
    if (t->n == 0) {
        mh_say(err, errlen, "connect: cannot resolve %s: no usable address", im->conf.host);
        return STEP_ERROR;
    }
    return STEP_DONE;
}

/* True when Connector/C must be given the host name itself: it verifies the server certificate
 * against the name it connected to, so an address we resolved would fail that check (or, without
 * the name, skip it). The library then resolves the name with a blocking getaddrinfo(), so such
 * a connect runs on an abandonable helper thread (connect_by_name below). */
static bool library_resolves(const struct mysql_conf *c)
{
    return !c->socket[0] && c->tls && c->tls_verify && !mh_is_numeric_host(c->host);
}

/* The addresses Connector/C connects to: a socket path, a numeric address, or the addresses of
 * the host name, looked up here within the deadline. */
static enum step resolve_target(struct mysql_impl *im, const struct timespec *deadline,
                                struct target *t, char *err, size_t errlen)
{
    const struct mysql_conf *c = &im->conf;
    if (c->socket[0] || mh_is_numeric_host(c->host)) {
        snprintf(t->addr[0], sizeof t->addr[0], "%s", c->socket[0] ? c->socket : c->host);
        t->n = 1;
        return STEP_DONE;
    }
    return lookup_host(im, deadline, t, err, errlen);
}

/* A handle with every option set; no I/O yet. */
static MYSQL *new_handle(const struct mysql_conf *c)
{
    MYSQL *m = mysql_init(NULL);
    if (!m)
        return NULL;
    unsigned protocol = c->socket[0] ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
    unsigned no_infile = 0;
    mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
    mysql_options(m, MYSQL_OPT_PROTOCOL, &protocol);
    mysql_options(m, MYSQL_OPT_LOCAL_INFILE, &no_infile);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(m, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", "magento-healthd");
    if (c->tls) {
        my_bool yes = 1, verify = c->tls_verify;
        mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &yes);
        mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        if (c->tls_ca[0])
            mysql_options(m, MYSQL_OPT_SSL_CA, c->tls_ca);
    }
    return m;
}

/* Server-side bounds, so that a statement the client gave up on does not wait on the server
 * for hours: MariaDB's max_statement_time (fractional seconds) where it exists, and the
 * whole-second lock waits everywhere (MySQL and Aurora have no time limit for writes). */
static enum step limit_session(struct mysql_impl *im, mh_ms budget, const struct timespec *dl)
{
    long lock_s = (long)((budget + 999) / 1000);
    if (lock_s < 1)
        lock_s = 1;
    char sql[SQL_MAX];
    snprintf(sql, sizeof sql,
             "SET SESSION max_statement_time = %.3f, lock_wait_timeout = %ld, "
             "innodb_lock_wait_timeout = %ld",
             (double)budget / 1000.0, lock_s, lock_s);
    enum step st = run_sql(im->conn, sql, NULL, dl);
    im->statement_time = st == STEP_DONE;
    if (st == STEP_ERROR && mysql_errno(im->conn) == E_UNKNOWN_VARIABLE) {
        snprintf(sql, sizeof sql,
                 "SET SESSION lock_wait_timeout = %ld, innodb_lock_wait_timeout = %ld", lock_s,
                 lock_s);
        st = run_sql(im->conn, sql, NULL, dl);
    }
    if (st == STEP_ERROR && !is_connection_lost(mysql_errno(im->conn)))
        return STEP_DONE; /* a refused SET is no reason to fail the check */
    return st;
}

/* One login attempt at `addr` (a host address, or the socket path); leaves im->conn set. */
static enum step try_connect(struct mysql_impl *im, const char *addr, mh_ms timeout,
                             const struct timespec *dl)
{
    const struct mysql_conf *c = &im->conf;
    im->conn = new_handle(c);
    if (!im->conn)
        return STEP_ERROR;
    bool unix_socket = c->socket[0] != '\0';
    MYSQL *ret = NULL;
    int status =
        mysql_real_connect_start(&ret, im->conn, unix_socket ? NULL : addr, c->user, c->password,
                                 NULL, c->port, unix_socket ? addr : NULL, CLIENT_FOUND_ROWS);
    enum step st = finish_connect(im->conn, status, ret, dl);
    if (st == STEP_DONE)
        st = limit_session(im, c->write_timeout ? c->write_timeout : timeout, dl);
    return st;
}

/* ---- a connect that Connector/C resolves itself, on an abandonable helper ---- */

/* Everything the helper needs, owned by the job so that the check may go away meanwhile. */
struct tls_connect {
    MYSQL *conn;
    char host[256], user[256];
    char *password; /* a copy, wiped when the job is freed */
    unsigned port;
    mh_ms step_budget; /* bounds each step after the library's own name lookup */
    enum step st;
};

static void tls_connect_free(struct tls_connect *job, bool close_conn)
{
    if (close_conn && job->conn)
        mysql_close(job->conn);
    mh_secret_free(job->password);
    free(job);
}

/* Runs on the helper. mysql_real_connect_start() resolves the name with a blocking
 * getaddrinfo() before it returns; everything after that is bounded by step_budget. */
static void tls_connect_call(void *arg)
{
    struct tls_connect *job = arg;
    MYSQL *ret = NULL;
    int status = mysql_real_connect_start(&ret, job->conn, job->host, job->user, job->password,
                                          NULL, job->port, NULL, CLIENT_FOUND_ROWS);
    struct timespec dl;
    mh_deadline_in(&dl, job->step_budget);
    job->st = finish_connect(job->conn, status, ret, &dl);
}

static void tls_connect_discard(void *arg)
{
    tls_connect_free(arg, true);
}

static struct tls_connect *tls_connect_new(const struct mysql_conf *c, mh_ms budget)
{
    struct tls_connect *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->conn = new_handle(c);
    job->password = c->password ? strdup(c->password) : NULL;
    if (!job->conn || (c->password && !job->password)) {
        tls_connect_free(job, true);
        return NULL;
    }
    snprintf(job->host, sizeof job->host, "%s", c->host);
    snprintf(job->user, sizeof job->user, "%s", c->user);
    job->port = c->port;
    job->step_budget = budget;
    return job;
}

/* Starts the helper, or waits on the one an earlier run left running, no later than `dl`. On
 * STEP_TIMEOUT with im->conn NULL the helper goes on, and the next run picks it up. */
static enum step connect_by_name(struct mysql_impl *im, mh_ms timeout, const struct timespec *dl)
{
    if (!im->connecting) {
        struct tls_connect *job = tls_connect_new(&im->conf, timeout);
        if (!job)
            return STEP_ERROR;
        im->connecting = mh_offload_start(tls_connect_call, tls_connect_discard, job);
        if (!im->connecting) {
            tls_connect_free(job, true);
            return STEP_ERROR;
        }
        im->connect_job = job;
    }
    if (!mh_offload_wait(&im->connecting, dl))
        return STEP_TIMEOUT;
    struct tls_connect *job = im->connect_job;
    im->connect_job = NULL;
    im->conn = job->conn;
    enum step st = job->st;
    tls_connect_free(job, false);
    if (st == STEP_DONE)
        st = limit_session(im, im->conf.write_timeout ? im->conf.write_timeout : timeout, dl);
    return st;
}

/* Opens the connection (within connect_timeout and the deadline), trying each address of the
 * host while they refuse. On failure writes the "connect: ..." or "auth: ..." line into `err`. */
static enum step open_connection(struct mysql_impl *im, mh_ms timeout,
                                 const struct timespec *deadline, char *err, size_t errlen)
{
    struct timespec dl, start;
    step_deadline(&dl, deadline, im->conf.connect_timeout);
    mh_now(&start);
    struct target t = {.n = 0};
    enum step st;
    if (library_resolves(&im->conf)) {
        bool waited = im->connecting != NULL;
        t.n = 1;
        st = connect_by_name(im, timeout, &dl);
        if (st == STEP_TIMEOUT && !im->conn)
            mh_say(err, errlen,
                   "connect: timed out after %.0f ms: name lookup, connect or TLS handshake to %s "
                   "still running%s",
                   mh_ms_since(&start), im->conf.host, waited ? " (since an earlier run)" : "");
    } else {
        st = resolve_target(im, &dl, &t, err, errlen);
        for (int i = 0; st == STEP_DONE && i < t.n; i++) {
            if (im->conn)
                disconnect(im, false);
            st = try_connect(im, t.addr[i], timeout, &dl);
            if (!im->conn || st != STEP_ERROR || !is_refused(mysql_errno(im->conn)))
                break;
        }
    }
    if (st == STEP_DONE) {
        im->connects++;
        im->aurora = -1;
    } else if (!im->conn && st == STEP_ERROR && t.n > 0) {
        mh_say(err, errlen, "connect: out of memory");
    } else if (st == STEP_TIMEOUT && im->conn) {
        mh_say(err, errlen, "connect: no answer from the server within %.0f ms",
               mh_ms_since(&start));
        disconnect(im, true);
    } else if (st == STEP_ERROR && im->conn) {
        unsigned e = mysql_errno(im->conn);
        char text[ERR_MAX];
        last_error(im->conn, text, sizeof text);
        mh_say(err, errlen, "%s: %s", is_auth_error(e) ? "auth" : "connect", text);
        disconnect(im, false);
    }
    return st;
}

/* ---- the stages of one run ---- */

/* Finishes a heartbeat upsert that an earlier run left pending. Returns false when it is still
 * blocked, for `*blocked_ms` so far. */
static bool finish_pending_write(struct mysql_impl *im, mh_ms timeout,
                                 const struct timespec *deadline, double *blocked_ms)
{
    if (!im->write_in_flight)
        return true;
    int rc = 0;
    enum step st = finish_query(im->conn, &im->write_wait, &rc, deadline);
    double blocked = *blocked_ms = mh_ms_since(&im->write_started);
    if (st == STEP_TIMEOUT) {
        /* The server should have ended it by now (see limit_session): give the session up. */
        if (blocked > 2.0 * (double)(timeout + 1000))
            disconnect(im, true);
        return false;
    }
    im->write_in_flight = false;
    if (st == STEP_ERROR && is_connection_lost(mysql_errno(im->conn)))
        disconnect(im, false);
    return true;
}

/* While the single connection waits for a blocked write, the round trip cannot be measured; but
 * the server took the statement and the session is alive, so connectivity only warns. A server
 * that is hung rather than locked is found once the write is abandoned and reconnecting fails. */
static void report_still_blocked(struct mysql_impl *im, double blocked_ms, struct mh_run *out)
{
    const char *busy = "not measured, the connection waits for a blocked heartbeat write";
    observe(im, out, im->i_conn, MH_WARN, "query: %s (%.0f ms)", busy, blocked_ms);
    observe(im, out, im->i_write, MH_FAIL, "write: timed out, upsert still blocked after %.0f ms",
            blocked_ms);
    observe(im, out, im->i_lag, MH_FAIL, "lag: %s (%.0f ms)", busy, blocked_ms);
}

static bool parse_bool_column(const char *v)
{
    return v && strcmp(v, "0") != 0 && strcasecmp(v, "OFF") != 0;
}

/* The connectivity round trip; it also reads what the role depends on. */
static enum step probe(struct mysql_impl *im, const struct timespec *deadline, struct probe *p)
{
    struct timespec dl, start;
    step_deadline(&dl, deadline, im->conf.read_timeout);
    mh_now(&start);
    MYSQL_RES *res = NULL;
    enum step st =
        run_sql(im->conn, "SELECT 1, @@innodb_read_only, @@read_only, @@version, CONNECTION_ID()",
                &res, &dl);
    p->rtt_ms = mh_ms_since(&start);
    if (st != STEP_DONE)
        return st;
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (row) {
        p->innodb_read_only = parse_bool_column(row[1]);
        p->read_only = parse_bool_column(row[2]);
        snprintf(p->version, sizeof p->version, "%s", row[3] ? row[3] : "");
        p->connection_id = row[4] ? strtoul(row[4], NULL, 10) : 0;
    }
    mysql_free_result(res);
    return row ? STEP_DONE : STEP_ERROR;
}

/* Connects if needed and runs the probe. A reused connection found dead (server restarted,
 * wait_timeout) is replaced once within the same run. Returns false after fail_all(). */
static bool connect_and_probe(struct mysql_impl *im, mh_ms timeout, const struct timespec *deadline,
                              struct probe *p, struct mh_run *out)
{
    char err[MH_OUTPUT_MAX];
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = im->conn != NULL;
        if (!im->conn && open_connection(im, timeout, deadline, err, sizeof err) != STEP_DONE) {
            fail_all(im, out, err);
            return false;
        }
        enum step st = probe(im, deadline, p);
        if (st == STEP_DONE)
            return true;
        if (st == STEP_TIMEOUT) {
            mh_say(err, sizeof err, "query: no answer to SELECT within %.0f ms", p->rtt_ms);
            disconnect(im, true);
            fail_all(im, out, err);
            return false;
        }
        unsigned e = mysql_errno(im->conn);
        char text[ERR_MAX];
        last_error(im->conn, text, sizeof text);
        mh_say(err, sizeof err, "query: %s", text);
        if (!is_connection_lost(e)) {
            fail_all(im, out, err);
            return false;
        }
        disconnect(im, false);
        if (!reused)
            break;
    }
    fail_all(im, out, err);
    return false;
}

static void report_connectivity(struct mysql_impl *im, const struct probe *p, struct mh_run *out)
{
    bool reader = p->innodb_read_only || p->read_only;
    out->role = reader ? MH_ROLE_READER : MH_ROLE_WRITER;
    observe(im, out, im->i_conn, MH_PASS, "%s, round trip %.2f ms", reader ? "reader" : "writer",
            p->rtt_ms);
    mh_observe_value(out, im->i_conn, p->rtt_ms, "ms");
    if (im->conf.socket[0])
        mh_run_fact(out, "server", "%s", im->conf.socket);
    else
        mh_run_fact(out, "server", "%s:%u", im->conf.host, im->conf.port);
    mh_run_fact(out, "version", "%s", p->version);
    mh_run_fact(out, "read_only", "innodb_read_only=%s read_only=%s",
                p->innodb_read_only ? "ON" : "OFF", p->read_only ? "ON" : "OFF");
    mh_run_fact(out, "connection_id", "%lu", p->connection_id);
    mh_run_fact(out, "connects", "%lu", im->connects);
}

/* `db`.`table`, both validated identifiers. */
static void table_name(const struct mysql_conf *c, char *out, size_t len)
{
    snprintf(out, len, "`%s`.`%s`", c->database, c->table);
}

/* Escapes `s` as a quoted SQL string literal for this connection. */
static void quote(MYSQL *m, const char *s, char *out, size_t len)
{
    size_t n = strlen(s);
    if (len < 2 * n + 3) {
        snprintf(out, len, "''");
        return;
    }
    out[0] = '\'';
    unsigned long w = mysql_real_escape_string(m, out + 1, s, (unsigned long)n);
    out[1 + w] = '\'';
    out[2 + w] = '\0';
}

static bool writer_is_any(const struct mysql_conf *c)
{
    return strcmp(c->writer_region, "any") == 0;
}

static void report_lag_value(struct mysql_impl *im, double lag_ms, struct mh_run *out)
{
    const struct mysql_conf *c = &im->conf;
    enum mh_status st = lag_ms >= (double)c->lag_fail   ? MH_FAIL
                        : lag_ms >= (double)c->lag_warn ? MH_WARN
                                                        : MH_PASS;
    /* In plain words first: "replication lag 42.0 s > 5 s", then the detail. */
    char verdict[64] = "";
    if (st != MH_PASS)
        snprintf(verdict, sizeof verdict, "replication lag %.1f s > %g s; ", lag_ms / 1000.0,
                 (double)(st == MH_FAIL ? c->lag_fail : c->lag_warn) / 1000.0);
    observe(im, out, im->i_lag, st, "lag: %s%.0f ms behind %s%s (warn %lld ms, fail %lld ms)",
            verdict, lag_ms, writer_is_any(c) ? "the newest heartbeat" : "region ",
            writer_is_any(c) ? "" : c->writer_region, (long long)c->lag_warn,
            (long long)c->lag_fail);
    mh_observe_value(out, im->i_lag, lag_ms, "ms");
}

/* lag = the database's UTC_TIMESTAMP(6) - the newest heartbeat of the writer region. */
static void measure_lag(struct mysql_impl *im, const struct timespec *deadline, struct mh_run *out)
{
    const struct mysql_conf *c = &im->conf;
    char table[160], region[2 * sizeof c->writer_region + 3], sql[SQL_MAX];
    table_name(c, table, sizeof table);
    quote(im->conn, c->writer_region, region, sizeof region);
    snprintf(sql, sizeof sql,
             "SELECT TIMESTAMPDIFF(MICROSECOND, MAX(ts), UTC_TIMESTAMP(6)) FROM %s%s%s", table,
             writer_is_any(c) ? "" : " WHERE region = ", writer_is_any(c) ? "" : region);
    struct timespec dl, start;
    step_deadline(&dl, deadline, c->read_timeout);
    mh_now(&start);
    MYSQL_RES *res = NULL;
    enum step st = run_sql(im->conn, sql, &res, &dl);
    if (st == STEP_TIMEOUT) {
        observe(im, out, im->i_lag, MH_FAIL, "lag: no answer within %.0f ms", mh_ms_since(&start));
        disconnect(im, true);
        return;
    }
    if (st == STEP_ERROR) {
        char text[ERR_MAX];
        unsigned e = mysql_errno(im->conn);
        last_error(im->conn, text, sizeof text);
        observe(im, out, im->i_lag, MH_FAIL, "lag: %s", text);
        if (is_connection_lost(e))
            disconnect(im, false);
        return;
    }
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    if (!row || !row[0])
        observe(im, out, im->i_lag, MH_FAIL, "lag: no heartbeat from region %s in %s yet",
                c->writer_region, table);
    else
        report_lag_value(im, fmax(0.0, strtod(row[0], NULL) / 1000.0), out);
    mysql_free_result(res);
}

/* Creates the heartbeat table. Returns false with the reason (and the SQL to run) in `err`. */
static bool create_table(struct mysql_impl *im, const struct timespec *dl, char *err, size_t len)
{
    char table[160], sql[SQL_MAX];
    table_name(&im->conf, table, sizeof table);
    snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS %s " HEARTBEAT_COLUMNS " ENGINE=InnoDB",
             table);
    enum step st = run_sql(im->conn, sql, NULL, dl);
    if (st == STEP_DONE)
        return true;
    if (st == STEP_TIMEOUT) {
        mh_say(err, len, "write: CREATE TABLE %s timed out", table);
        disconnect(im, true);
        return false;
    }
    unsigned e = mysql_errno(im->conn);
    char text[ERR_MAX];
    last_error(im->conn, text, sizeof text);
    if (e == E_TABLEACCESS_DENIED || e == E_DBACCESS_DENIED)
        mh_say(err, len, "write: heartbeat table missing, CREATE denied; run: CREATE TABLE %s %s",
               table, HEARTBEAT_COLUMNS);
    else if (e == E_BAD_DB)
        mh_say(err, len, "write: database `%s` does not exist; run: CREATE DATABASE `%s`",
               im->conf.database, im->conf.database);
    else
        mh_say(err, len, "write: CREATE TABLE %s failed: %s", table, text);
    if (is_connection_lost(e))
        disconnect(im, false);
    return false;
}

/* Explains a failed upsert in one line. */
static void report_write_error(struct mysql_impl *im, double elapsed_ms, struct mh_run *out)
{
    unsigned e = mysql_errno(im->conn);
    char text[ERR_MAX];
    last_error(im->conn, text, sizeof text);
    if (is_read_only_error(e))
        observe(im, out, im->i_write, MH_FAIL, "write: not writable (read-only): %s", text);
    else if (is_server_timeout(e))
        observe(im, out, im->i_write, MH_FAIL, "write: timed out after %.0f ms, writes blocked: %s",
                elapsed_ms, text);
    else
        observe(im, out, im->i_write, MH_FAIL, "write: %s", text);
    if (is_connection_lost(e))
        disconnect(im, false);
}

/* On MariaDB, a "SET STATEMENT max_statement_time = ... FOR " prefix that makes the server end
 * a blocked write a little before the client would give up on it: the write then ends within
 * this run and nothing is left pending on the connection. */
static void statement_limit(const struct mysql_impl *im, const struct timespec *dl, char *out,
                            size_t len)
{
    mh_ms left = mh_deadline_left(dl);
    mh_ms server = left - left / 10 - 5;
    if (im->statement_time && server > 0)
        snprintf(out, len, "SET STATEMENT max_statement_time = %.3f FOR ", (double)server / 1000.0);
}

/* Upserts this node's heartbeat row. A reader is not written to: with a privileged user a write
 * on a replica would succeed and make it diverge from its primary. */
static void write_heartbeat(struct mysql_impl *im, const struct probe *p,
                            const struct timespec *deadline, struct mh_run *out)
{
    if (p->innodb_read_only || p->read_only) {
        observe(im, out, im->i_write, MH_FAIL,
                "write: not writable (read-only): database is a read-only replica (%s is ON)",
                p->innodb_read_only ? "innodb_read_only" : "read_only");
        return;
    }
    const struct mysql_conf *c = &im->conf;
    char table[160], node[2 * sizeof im->server->node + 3];
    char region[2 * sizeof im->server->region + 3], sql[SQL_MAX + sizeof node];
    table_name(c, table, sizeof table);
    quote(im->conn, im->server->node, node, sizeof node);
    quote(im->conn, im->server->region, region, sizeof region);
    struct timespec dl;
    step_deadline(&dl, deadline, c->write_timeout);
    char limit[64] = "";
    statement_limit(im, &dl, limit, sizeof limit);
    snprintf(sql, sizeof sql,
             "%sINSERT INTO %s (node, region, ts) VALUES (%s, %s, UTC_TIMESTAMP(6)) "
             "ON DUPLICATE KEY UPDATE region = VALUES(region), ts = VALUES(ts)",
             limit, table, node, region);
    for (int attempt = 0; attempt < 2; attempt++) {
        mh_now(&im->write_started);
        int rc = 0;
        int status = mysql_real_query_start(&rc, im->conn, sql, strlen(sql));
        enum step st = finish_query(im->conn, &status, &rc, &dl);
        if (st == STEP_DONE) {
            observe(im, out, im->i_write, MH_PASS, "heartbeat written in %.2f ms",
                    mh_ms_since(&im->write_started));
            return;
        }
        if (st == STEP_TIMEOUT) {
            im->write_in_flight = true; /* finished at the start of the next run */
            im->write_wait = status;
            observe(im, out, im->i_write, MH_FAIL,
                    "write: timed out after %.0f ms, writes blocked (no answer to the upsert)",
                    mh_ms_since(&im->write_started));
            return;
        }
        if (mysql_errno(im->conn) != E_NO_SUCH_TABLE || attempt > 0)
            break;
        char err[MH_OUTPUT_MAX];
        if (!create_table(im, &dl, err, sizeof err)) {
            observe(im, out, im->i_write, MH_FAIL, "%s", err);
            return;
        }
    }
    report_write_error(im, mh_ms_since(&im->write_started), out);
}

/* Runs one optional statement that returns a single number; false on any failure. */
static bool optional_number(struct mysql_impl *im, const char *sql, const struct timespec *dl,
                            char *value, size_t len)
{
    MYSQL_RES *res = NULL;
    enum step st = run_sql(im->conn, sql, &res, dl);
    if (st == STEP_TIMEOUT) {
        disconnect(im, true);
        return false;
    }
    if (st == STEP_ERROR) {
        if (is_connection_lost(mysql_errno(im->conn)))
            disconnect(im, false);
        return false;
    }
    MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
    bool ok = row && row[0];
    if (ok)
        snprintf(value, len, "%s", row[0]);
    mysql_free_result(res);
    return ok;
}

/* Aurora's own lag figures, shown as facts where the tables exist. Never required. */
static void aurora_extras(struct mysql_impl *im, const struct timespec *deadline,
                          struct mh_run *out)
{
    char v[MH_FACT_VALUE_MAX];
    if (im->aurora < 0)
        im->aurora = optional_number(im, "SELECT @@aurora_server_id", deadline, v, sizeof v);
    if (im->aurora != 1 || !im->conn)
        return;
    if (optional_number(im,
                        "SELECT REPLICA_LAG_IN_MILLISECONDS FROM information_schema."
                        "replica_host_status WHERE SERVER_ID = @@aurora_server_id",
                        deadline, v, sizeof v))
        mh_run_fact(out, "aurora_replica_lag_ms", "%s", v);
    if (im->aurora_global_gone || !im->conn)
        return;
    if (optional_number(im,
                        "SELECT VISIBILITY_LAG_IN_MSEC FROM information_schema."
                        "aurora_global_db_instance_status WHERE SERVER_ID = @@aurora_server_id",
                        deadline, v, sizeof v))
        mh_run_fact(out, "aurora_visibility_lag_ms", "%s", v);
    else
        im->aurora_global_gone = im->conn != NULL; /* before Aurora MySQL 3.04, or no Global DB */
}

/* The deadline the stages work to: a little before the framework's, so that closing a connection
 * and reporting still fit in - a run that ends past its timeout counts as failed. */
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

static void mysql_run(struct mh_check *check, const struct timespec *run_deadline,
                      struct mh_run *out)
{
    struct mysql_impl *im = check->impl;
    struct timespec inner;
    inner_deadline(&inner, run_deadline, check->timeout);
    const struct timespec *deadline = &inner;
    double blocked_ms = 0;
    if (im->conn && !finish_pending_write(im, check->timeout, deadline, &blocked_ms)) {
        report_still_blocked(im, blocked_ms, out);
        return;
    }
    struct probe p = {0};
    if (!connect_and_probe(im, check->timeout, deadline, &p, out))
        return;
    report_connectivity(im, &p, out);
    /* The write comes first: it creates the heartbeat table on a fresh database, and on the
     * writer the lag then reads the heartbeat it has just written. */
    if (im->i_write >= 0)
        write_heartbeat(im, &p, deadline, out);
    if (im->i_lag >= 0 && (!im->conn || im->write_in_flight))
        observe(im, out, im->i_lag, MH_FAIL, "lag: not measured, %s",
                im->conn ? "the heartbeat write is still blocked" : "the connection was lost");
    else if (im->i_lag >= 0 && !p.innodb_read_only && !p.read_only) {
        observe(im, out, im->i_lag, MH_PASS, "lag: 0 ms, this database is the writer");
        mh_observe_value(out, im->i_lag, 0, "ms");
    } else if (im->i_lag >= 0)
        measure_lag(im, deadline, out);
    if (im->conn && !im->write_in_flight && mh_deadline_left(deadline) > 0)
        aurora_extras(im, deadline, out);
}

/* ---- configuration ---- */

static bool valid_identifier(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '$'))
            return false;
    return true;
}

static int parse_endpoint(struct mysql_conf *c, struct mh_section *sec)
{
    unsigned long port = 3306;
    if (mh_section_string(sec, "host", c->host, sizeof c->host) < 0 ||
        mh_section_string(sec, "socket", c->socket, sizeof c->socket) < 0 ||
        mh_section_uint(sec, "port", 1, 65535, &port) < 0 ||
        mh_section_string(sec, "user", c->user, sizeof c->user) < 0)
        return -1;
    c->port = (unsigned)port;
    if (!c->host[0] == !c->socket[0])
        return mh_section_error(sec, "host", "set exactly one of host and socket");
    if (!c->user[0])
        return mh_section_error(sec, "user", "required: a dedicated database user for the check");
    return mh_section_secret(sec, "password", &c->password);
}

static int parse_tls(struct mysql_conf *c, struct mh_section *sec)
{
    c->tls_verify = true;
    if (mh_section_bool(sec, "tls", &c->tls) < 0 ||
        mh_section_string(sec, "tls_ca", c->tls_ca, sizeof c->tls_ca) < 0 ||
        mh_section_bool(sec, "tls_verify", &c->tls_verify) < 0)
        return -1;
    if (c->tls_ca[0] && !c->tls)
        return mh_section_error(sec, "tls_ca", "needs tls = yes");
    return 0;
}

static int parse_timeouts(struct mysql_conf *c, struct mh_section *sec)
{
    return mh_section_duration(sec, "connect_timeout", &c->connect_timeout) < 0 ||
                   mh_section_duration(sec, "read_timeout", &c->read_timeout) < 0 ||
                   mh_section_duration(sec, "write_timeout", &c->write_timeout) < 0
               ? -1
               : 0;
}

static int parse_heartbeat(struct mysql_conf *c, struct mh_section *sec)
{
    snprintf(c->database, sizeof c->database, "magento_healthd");
    snprintf(c->table, sizeof c->table, "magento_healthd_heartbeat");
    c->write = true;
    c->lag_warn = 5000;
    c->lag_fail = 30000;
    if (mh_section_string(sec, "database", c->database, sizeof c->database) < 0 ||
        mh_section_string(sec, "heartbeat_table", c->table, sizeof c->table) < 0 ||
        mh_section_bool(sec, "write", &c->write) < 0 ||
        mh_section_string(sec, "writer_region", c->writer_region, sizeof c->writer_region) < 0 ||
        mh_section_duration(sec, "lag_warn", &c->lag_warn) < 0 ||
        mh_section_duration(sec, "lag_fail", &c->lag_fail) < 0)
        return -1;
    if (!valid_identifier(c->database))
        return mh_section_error(sec, "database", "use letters, digits, _ and $ only");
    if (!valid_identifier(c->table))
        return mh_section_error(sec, "heartbeat_table", "use letters, digits, _ and $ only");
    if (!c->writer_region[0] &&
        (mh_section_get(sec, "lag_warn") || mh_section_get(sec, "lag_fail")))
        return mh_section_error(sec, "writer_region", "lag thresholds need writer_region");
    if (c->lag_warn > c->lag_fail)
        return mh_section_error(sec, "lag_warn", "must not be above lag_fail");
    return 0;
}

/* Declares the measurements this configuration reports. */
static int declare_measurements(struct mh_check *check, struct mysql_impl *im,
                                struct mh_section *sec)
{
    unsigned write_affects = MH_AFFECTS_REGION, lag_affects = MH_AFFECTS_REGION;
    if (mh_section_affects(sec, "write_affects", &write_affects) < 0 ||
        mh_section_affects(sec, "lag_affects", &lag_affects) < 0)
        return -1;
    im->i_conn = mh_check_declare(check, "connectivity", check->affects);
    /* A healthy standby region is read-only by design: writability is not part of its view. */
    im->i_write = im->conf.write ? mh_check_declare_write(check, "writable", write_affects) : -1;
    im->i_lag = im->conf.writer_region[0] ? mh_check_declare(check, "lag", lag_affects) : -1;
    return 0;
}

static void mysql_destroy(struct mh_check *check)
{
    struct mysql_impl *im = check->impl;
    if (!im)
        return;
    disconnect(im, im->write_in_flight);
    /* Neither waits: a lookup or connect still in flight is abandoned and frees itself. */
    mh_lookup_abandon(&im->lookup);
    mh_offload_abandon(&im->connecting);
    mh_secret_free(im->conf.password);
    free(im);
    check->impl = NULL;
}

static int mysql_create(struct mh_check *check, struct mh_section *sec)
{
    /* Connector/C's global setup is not thread-safe; create() runs on the main thread. */
    if (mysql_library_init(0, NULL, NULL) != 0)
        return mh_section_error(sec, "type", "MariaDB Connector/C failed to initialise");
    struct mysql_impl *im = calloc(1, sizeof *im);
    if (!im)
        return mh_section_error(sec, "type", "out of memory");
    im->aurora = -1;
    im->server = mh_section_server(sec);
    check->impl = im;
    if (parse_endpoint(&im->conf, sec) < 0 || parse_tls(&im->conf, sec) < 0 ||
        parse_timeouts(&im->conf, sec) < 0 || parse_heartbeat(&im->conf, sec) < 0 ||
        declare_measurements(check, im, sec) < 0) {
        mysql_destroy(check);
        return -1;
    }
    return 0;
}

const struct mh_check_type mh_check_mysql = {
    .name = "mysql",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE | MH_AFFECTS_REGION,
    .create = mysql_create,
    .run = mysql_run,
    .destroy = mysql_destroy,
};
