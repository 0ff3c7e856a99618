/* mh_magento.c - derives the checks Magento's env.php implies. See mh_magento.h.
 *
 * The mapping follows what Magento 2.4 itself does with each entry: the PDO MySQL adapter
 * (a '/' anywhere in host means a unix socket, "name:port" is split, "localhost" means the
 * client library's default socket), Cm_RedisSession (session.redis.*) and Cm_Cache_Backend_Redis
 * (backend_options.server may be "tcp://", "tls://" or a socket path). What is not a dependency
 * this daemon can check (a files or db session handler, a file cache) becomes a fact of the
 * `magento` check, never a guess. */
#include "mh_magento.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct derive {
    const struct mh_php_node *root;
    const char *name;
    const struct mh_magento_opts *opts;
    struct mh_magento *out;
    char *err;
    size_t errlen;
    struct mh_derived_check *magento; /* the facts */
};

static int derr(struct derive *d, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int derr(struct derive *d, int line, const char *path, const char *fmt, ...)
{
    int n = line > 0 ? snprintf(d->err, d->errlen, "%s:%d: %s: ", d->name, line, path)
                     : snprintf(d->err, d->errlen, "%s: %s: ", d->name, path);
    if (n >= 0 && (size_t)n < d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static struct mh_derived_check *add_check(struct derive *d, const char *name, const char *type,
                                          int line)
{
    if (d->out->n_checks == MH_DERIVED_MAX)
        return NULL; /* cannot happen: at most 8 names exist */
    struct mh_derived_check *c = &d->out->checks[d->out->n_checks++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->type, sizeof c->type, "%s", type);
    c->line = line;
    return c;
}

static int add_kv(struct derive *d, struct mh_derived_check *c, const char *key, const char *value,
                  int line, bool secret)
{
    if (c->n_kv == MH_DERIVED_KEYS_MAX)
        return derr(d, line, c->name, "too many keys");
    if (strlen(value) >= MH_DERIVED_VALUE)
        return derr(d, line, key, "value longer than %d bytes", MH_DERIVED_VALUE - 1);
    struct mh_derived_kv *kv = &c->kv[c->n_kv++];
    snprintf(kv->key, sizeof kv->key, "%s", key);
    snprintf(kv->value, sizeof kv->value, "%s", value);
    kv->line = line;
    kv->secret = secret;
    return 0;
}

/* A scalar at `base`.`key` as PHP's string form. Returns 1 when found, 0 when absent, -1 on a
 * wrong type (an array where a scalar belongs). */
static int get_scalar(struct derive *d, const struct mh_php_node *base, const char *base_path,
                      const char *key, char *out, size_t outlen, int *line)
{
    const struct mh_php_node *n = mh_php_child(base, key);
    if (!n)
        return 0;
    *line = n->line;
    if (n->type == MH_PHP_ARRAY)
        return derr(d, n->line, base_path, "%s: expected a string or number, found an array", key);
    if (!mh_php_scalar(n, out, outlen))
        return derr(d, n->line, base_path, "%s: value too long", key);
    return 1;
}

/* The array at `path`, NULL when absent; -1 (via *bad) when something else is there. */
static const struct mh_php_node *get_array(struct derive *d, const char *path, bool *bad)
{
    /* Every step on the way must be an array too: 'db' => 'x' is a wrong type, not "no db". */
    char prefix[256];
    const struct mh_php_node *n = d->root;
    *bad = false;
    for (size_t i = 0; n && i <= strlen(path); i++) {
        if (path[i] != '.' && path[i] != '\0')
            continue;
        snprintf(prefix, sizeof prefix, "%.*s", (int)i, path);
        n = mh_php_get(d->root, prefix);
        if (n && n->type != MH_PHP_ARRAY) {
            derr(d, n->line, prefix, "expected an array, found %s", mh_php_type_name(n->type));
            *bad = true;
            return NULL;
        }
    }
    return n;
}

static int fact(struct derive *d, const char *key, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fact(struct derive *d, const char *key, int line, const char *fmt, ...)
{
    char v[MH_DERIVED_VALUE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    return add_kv(d, d->magento, key, v, line, false);
}

/* ---- the database ---- */

/* Splits env.php's db host the way Magento's PDO adapter does. */
static int db_endpoint(struct derive *d, struct mh_derived_check *c, const char *host, int line)
{
    if (strchr(host, '/'))
        return add_kv(d, c, "socket", host, line, false);
    char h[MH_DERIVED_VALUE];
    snprintf(h, sizeof h, "%s", host);
    char *colon = strchr(h, ':');
    if (colon)
        *colon++ = '\0';
    if (!h[0])
        return derr(d, line, c->name, "host is empty");
    if (strcmp(h, "localhost") == 0) /* PDO MySQL: the default socket; a port is ignored */
        return add_kv(d, c, "socket", d->opts->mysql_socket, line, false);
    if (add_kv(d, c, "host", h, line, false) < 0)
        return -1;
    return colon ? add_kv(d, c, "port", colon, line, false) : 0;
}

static int derive_db(struct derive *d, const char *path, const char *name, bool replica)
{
    bool bad;
    const struct mh_php_node *conn = get_array(d, path, &bad);
    if (bad)
        return -1;
    if (!conn)
        return 0;
    char host[MH_DERIVED_VALUE], v[MH_DERIVED_VALUE];
    int line = conn->line, r;
    if ((r = get_scalar(d, conn, path, "host", host, sizeof host, &line)) < 0)
        return -1;
    if (r == 0)
        return derr(d, conn->line, path, "no host");
    struct mh_derived_check *c = add_check(d, name, "mysql", conn->line);
    if (db_endpoint(d, c, host, line) < 0)
        return -1;
    if ((r = get_scalar(d, conn, path, "port", v, sizeof v, &line)) < 0 ||
        (r > 0 && add_kv(d, c, "port", v, line, false) < 0))
        return -1;
    if (replica && add_kv(d, c, "write", "no", conn->line, false) < 0)
        return -1;
    if ((r = get_scalar(d, conn, path, "dbname", v, sizeof v, &line)) < 0 ||
        (r > 0 && !replica && fact(d, "db_name", line, "%.90s", v) < 0))
        return -1;
    if (!d->opts->credentials_magento)
        return 0;
    /* credentials = magento: Magento's own user, and the heartbeat goes into its schema. */
    if ((r = get_scalar(d, conn, path, "username", v, sizeof v, &line)) < 0 ||
        (r > 0 && add_kv(d, c, "user", v, line, false) < 0))
        return -1;
    if ((r = get_scalar(d, conn, path, "password", v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && add_kv(d, c, "password", v, line, true) < 0))
        return -1;
    explicit_bzero(v, sizeof v);
    if ((r = get_scalar(d, conn, path, "dbname", v, sizeof v, &line)) < 0 ||
        (r > 0 && add_kv(d, c, "database", v, line, false) < 0))
        return -1;
    return 0;
}

/* ---- Redis ---- */

static bool is_redis_backend(const char *b)
{
    if (b[0] == '\\')
        b++;
    return strcmp(b, "Magento\\Framework\\Cache\\Backend\\Redis") == 0 ||
           strcmp(b, "Cm_Cache_Backend_Redis") == 0;
}

static bool is_remote_sync(const char *b)
{
    if (b[0] == '\\')
        b++;
    return strcmp(b, "Magento\\Framework\\Cache\\Backend\\RemoteSynchronizedCache") == 0;
}

/* "name", "tcp://name", "tls://name", "unix:///path" or "/path". */
static int redis_server(struct derive *d, struct mh_derived_check *c, const char *server, int line)
{
    if (strncmp(server, "tcp://", 6) == 0)
        server += 6;
    else if (strncmp(server, "tls://", 6) == 0) {
        server += 6;
        if (add_kv(d, c, "tls", "yes", line, false) < 0)
            return -1;
    } else if (strncmp(server, "unix://", 7) == 0)
        server += 7;
    if (!server[0])
        return derr(d, line, c->name, "server is empty");
    return add_kv(d, c, "host", server, line, false);
}

/* One Redis check from an options array: `host_key` is "host" (sessions) or "server" (caches). */
static int derive_redis(struct derive *d, const struct mh_php_node *o, const char *path,
                        const char *name, const char *role, const char *host_key,
                        const char *default_db)
{
    char v[MH_DERIVED_VALUE];
    int line = o->line, r;
    struct mh_derived_check *c = add_check(d, name, "redis", o->line);
    if (add_kv(d, c, "role", role, o->line, false) < 0)
        return -1;
    if ((r = get_scalar(d, o, path, host_key, v, sizeof v, &line)) < 0)
        return -1;
    if (redis_server(d, c, r > 0 ? v : "127.0.0.1", r > 0 ? line : o->line) < 0)
        return -1;
    /* With a socket, Magento writes port 0 (or none): the port means nothing then. */
    bool is_socket = c->kv[c->n_kv - 1].value[0] == '/';
    if ((r = get_scalar(d, o, path, "port", v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && !is_socket && add_kv(d, c, "port", v, line, false) < 0))
        return -1;
    if ((r = get_scalar(d, o, path, "database", v, sizeof v, &line)) < 0 ||
        add_kv(d, c, "database", r > 0 && v[0] ? v : default_db, r > 0 ? line : o->line, false) < 0)
        return -1;
    if ((r = get_scalar(d, o, path, "password", v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && add_kv(d, c, "password", v, line, true) < 0))
        return -1;
    explicit_bzero(v, sizeof v);
    /* Cm_RedisSession's connect timeout, in seconds (default 2.5). */
    if ((r = get_scalar(d, o, path, "timeout", v, sizeof v, &line)) < 0)
        return -1;
    if (r > 0 && v[0]) {
        char *end;
        double s = strtod(v, &end);
        if (*end || !(s > 0 && s <= 3600))
            return derr(d, line, path, "timeout: expected seconds, found \"%.40s\"", v);
        char ms[32];
        snprintf(ms, sizeof ms, "%lldms", (long long)(s * 1000 + 0.5));
        if (add_kv(d, c, "connect_timeout", ms, line, false) < 0)
            return -1;
    }
    return 0;
}

static int derive_session(struct derive *d)
{
    const struct mh_php_node *save = mh_php_get(d->root, "session.save");
    char v[MH_DERIVED_VALUE];
    if (!save)
        return mh_php_get(d->root, "session") ? fact(d, "session_save", 0, "files (the default)")
                                              : 0;
    if (save->type == MH_PHP_ARRAY || !mh_php_scalar(save, v, sizeof v))
        return derr(d, save->line, "session.save", "expected a string, found %s",
                    mh_php_type_name(save->type));
    if (strcmp(v, "redis") != 0) /* files, db, memcache(d): reported, not checked */
        return fact(d, "session_save", save->line, "%.80s (not checked)", v);
    bool bad;
    const struct mh_php_node *o = get_array(d, "session.redis", &bad);
    if (bad)
        return -1;
    if (!o)
        return derr(d, save->line, "session.redis",
                    "session.save is redis, but there is no "
                    "session.redis array");
    return derive_redis(d, o, "session.redis", "redis_session", "session", "host", "2");
}

static int derive_cache(struct derive *d, const char *frontend, const char *name,
                        const char *default_db)
{
    char path[128], v[MH_DERIVED_VALUE], fkey[48];
    snprintf(path, sizeof path, "cache.frontend.%s", frontend);
    snprintf(fkey, sizeof fkey, "cache_%s", frontend);
    bool bad;
    const struct mh_php_node *f = get_array(d, path, &bad);
    if (bad)
        return -1;
    if (!f)
        return 0;
    int line = f->line, r;
    if ((r = get_scalar(d, f, path, "backend", v, sizeof v, &line)) < 0)
        return -1;
    if (r == 0)
        return fact(d, fkey, f->line, "file (not checked)");
    char opath[160];
    snprintf(opath, sizeof opath, "%s.backend_options", path);
    if (is_remote_sync(v)) {
        /* L2: the local cache is on this node's disk; the remote one is the dependency. */
        char rpath[200];
        snprintf(rpath, sizeof rpath, "%s.remote_backend", opath);
        const struct mh_php_node *rb = mh_php_get(d->root, rpath);
        if (rb && (rb->type == MH_PHP_ARRAY || !mh_php_scalar(rb, v, sizeof v)))
            return derr(d, rb->line, rpath, "expected a string, found %s",
                        mh_php_type_name(rb->type));
        if (!rb || !is_redis_backend(v))
            return fact(d, fkey, f->line, "L2 cache, remote %.80s (not checked)",
                        rb ? v : "(none)");
        snprintf(opath, sizeof opath, "%s.backend_options.remote_backend_options", path);
    } else if (!is_redis_backend(v)) {
        return fact(d, fkey, line, "%.80s (not checked)", v);
    }
    const struct mh_php_node *o = get_array(d, opath, &bad);
    if (bad)
        return -1;
    if (!o)
        return derr(d, f->line, opath, "a Redis backend without backend options");
    return derive_redis(d, o, opath, name, "cache", "server", default_db);
}

/* ---- what other types read, or facts ---- */

static int derive_amqp(struct derive *d)
{
    bool bad;
    const struct mh_php_node *q = get_array(d, "queue.amqp", &bad);
    if (bad)
        return -1;
    if (!q)
        return 0;
    char host[256] = "", port[32] = "5672", v[MH_DERIVED_VALUE];
    int line = q->line, r;
    if (get_scalar(d, q, "queue.amqp", "host", host, sizeof host, &line) < 0 ||
        get_scalar(d, q, "queue.amqp", "port", port, sizeof port, &line) < 0)
        return -1;
    if (!d->opts->have_amqp)
        return fact(d, "amqp", q->line, "%s:%s (not checked: no amqp check type)", host, port);
    /* The amqp check type's keys. */
    struct mh_derived_check *c = add_check(d, "amqp", "amqp", q->line);
    static const char *const keys[][2] = {
        {"host", "host"}, {"port", "port"}, {"user", "user"}, {"virtualhost", "vhost"}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if ((r = get_scalar(d, q, "queue.amqp", keys[i][0], v, sizeof v, &line)) < 0 ||
            (r > 0 && v[0] && add_kv(d, c, keys[i][1], v, line, false) < 0))
            return -1;
    if ((r = get_scalar(d, q, "queue.amqp", "ssl", v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && strcmp(v, "false") != 0 && strcmp(v, "0") != 0 &&
         add_kv(d, c, "tls", "yes", line, false) < 0))
        return -1;
    if ((r = get_scalar(d, q, "queue.amqp", "password", v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && add_kv(d, c, "password", v, line, true) < 0))
        return -1;
    explicit_bzero(v, sizeof v);
    return 0;
}

static int derive_search(struct derive *d)
{
    static const char path[] = "system.default.catalog.search";
    bool bad;
    const struct mh_php_node *s = get_array(d, path, &bad);
    if (bad)
        return -1;
    if (!s)
        return 0;
    char engine[64] = "", host[256] = "", port[32] = "", prefix[128] = "";
    int line = s->line;
    if (get_scalar(d, s, path, "engine", engine, sizeof engine, &line) < 0)
        return -1;
    const char *e = engine[0] ? engine : "opensearch";
    char k[96];
    snprintf(k, sizeof k, "%s_server_hostname", e);
    if (get_scalar(d, s, path, k, host, sizeof host, &line) < 0)
        return -1;
    snprintf(k, sizeof k, "%s_server_port", e);
    if (get_scalar(d, s, path, k, port, sizeof port, &line) < 0)
        return -1;
    snprintf(k, sizeof k, "%s_index_prefix", e);
    if (get_scalar(d, s, path, k, prefix, sizeof prefix, &line) < 0)
        return -1;
    if (!d->opts->have_opensearch || !host[0])
        return fact(d, "search", s->line, "%s %s%s%s%s", e, host[0] ? host : "(host not pinned)",
                    port[0] ? ":" : "", port, d->opts->have_opensearch ? "" : " (not checked)");
    struct mh_derived_check *c = add_check(d, "opensearch", "opensearch", s->line);
    if (add_kv(d, c, "host", host, line, false) < 0 ||
        (port[0] && add_kv(d, c, "port", port, line, false) < 0) ||
        (prefix[0] && add_kv(d, c, "index_prefix", prefix, line, false) < 0))
        return -1;
    /* {engine}_enable_auth with {engine}_username and {engine}_password. */
    char v[MH_DERIVED_VALUE];
    int r;
    snprintf(k, sizeof k, "%s_enable_auth", e);
    if ((r = get_scalar(d, s, path, k, v, sizeof v, &line)) < 0)
        return -1;
    if (r == 0 || !v[0] || strcmp(v, "0") == 0)
        return 0;
    snprintf(k, sizeof k, "%s_username", e);
    if ((r = get_scalar(d, s, path, k, v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && add_kv(d, c, "username", v, line, false) < 0))
        return -1;
    snprintf(k, sizeof k, "%s_password", e);
    if ((r = get_scalar(d, s, path, k, v, sizeof v, &line)) < 0 ||
        (r > 0 && v[0] && add_kv(d, c, "password", v, line, true) < 0))
        return -1;
    explicit_bzero(v, sizeof v);
    return 0;
}

static int derive_mode(struct derive *d)
{
    const struct mh_php_node *m = mh_php_child(d->root, "MAGE_MODE");
    char v[64];
    if (!m)
        return fact(d, "mage_mode", 0, "default (not set)");
    if (m->type == MH_PHP_ARRAY || !mh_php_scalar(m, v, sizeof v))
        return derr(d, m->line, "MAGE_MODE", "expected a string");
    return fact(d, "mage_mode", m->line, "%s", v);
}

int mh_magento_derive(const struct mh_php_node *root, const char *name,
                      const struct mh_magento_opts *opts, struct mh_magento *out, char *err,
                      size_t errlen)
{
    struct derive d = {
        .root = root, .name = name, .opts = opts, .out = out, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    if (errlen)
        err[0] = '\0';
    d.magento = add_check(&d, "magento", "magento", root ? root->line : 0);
    if (!root || root->type != MH_PHP_ARRAY)
        return derr(&d, 0, "env.php", "does not return an array");
    if (derive_db(&d, "db.connection.default", "db", false) < 0 ||
        derive_db(&d, "db.slave_connection.default", "db_replica", true) < 0 ||
        derive_session(&d) < 0 || derive_cache(&d, "default", "redis_cache", "0") < 0 ||
        derive_cache(&d, "page_cache", "redis_page_cache", "1") < 0 || derive_amqp(&d) < 0 ||
        derive_search(&d) < 0 || derive_mode(&d) < 0) {
        mh_magento_clear(out);
        return -1;
    }
    return 0;
}

bool mh_magento_is_derived_name(const char *name)
{
    static const char *const names[] = {"db",          "db_replica",       "redis_session",
                                        "redis_cache", "redis_page_cache", "amqp",
                                        "opensearch",  "magento"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0)
            return true;
    return false;
}

void mh_magento_clear(struct mh_magento *m)
{
    explicit_bzero(m, sizeof *m);
}

/* ---- the env.php status ---- */

/* Guards `status`. Held only for a copy. */
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;
static char status[512];

void mh_magento_status_set(const char *err)
{
    pthread_mutex_lock(&status_lock);
    snprintf(status, sizeof status, "%s", err ? err : "");
    pthread_mutex_unlock(&status_lock);
}

void mh_magento_status_get(char *out, size_t outlen)
{
    pthread_mutex_lock(&status_lock);
    snprintf(out, outlen, "%s", status);
    pthread_mutex_unlock(&status_lock);
}
