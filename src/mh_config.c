/* mh_config.c - loads the INI file with inih and validates it. See mh_config.h.
 *
 * Two passes. First every line is collected, per section, with its line number (inih's handler
 * has no line number, so our line reader counts them). Then [server] is applied and each
 * [check.NAME] is created through its type. Collecting first lets us report unknown keys, keys
 * given twice and duplicate sections with the line they are on. */
#include "mh_check.h"
#include "mh_config.h"
#include "mh_envphp.h"
#include "mh_magento.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <mariadb_version.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SECTIONS (MH_MAX_CHECKS + 8)
#define MAX_KEYS     64
#define CHECK_PREFIX "check."
/* What PDO MySQL means by host "localhost": the client library's default socket. */
#ifdef MARIADB_UNIX_ADDR
#define MARIADB_SOCKET MARIADB_UNIX_ADDR
#else
#define MARIADB_SOCKET "/run/mysqld/mysqld.sock"
#endif
#define SECTION_MAX 128

struct mh_kv {
    char *key;
    char *value;
    int line;
    bool used;
    const char *file; /* where it was written: NULL for the config file, else env.php's path */
    bool secret;      /* a password from env.php: only mh_section_secret() hands it out */
};

#define MAX_TRACE 96

struct mh_section {
    char name[SECTION_MAX];
    int line;
    const char *file; /* NULL: the config file; else env.php's path (a derived check) */
    struct mh_kv kv[MAX_KEYS];
    int n_kv;
    uint64_t resolved; /* hash of the values read from outside the file (secrets) */
    struct loader *ld;
    /* For --print-config: every key a getter asked for, once, in order. */
    char *trace;
    size_t trace_len;
    char traced[MAX_TRACE][40];
    int n_traced;
};

/* State of one load; lives on the stack of mh_config_load(). */
struct loader {
    const char *path;
    struct mh_section *sections[MAX_SECTIONS];
    int n_sections;
    int line;          /* line the reader handed to inih last */
    bool continuation; /* that line is indented without '=': inih continues the previous key */
    char *err;         /* the first error wins */
    size_t errlen;
    bool failed;
    struct mh_config *cfg;
    FILE *fp;
    const struct mh_load_opts *opts;
    char *out; /* --print-config text being built */
    size_t out_len;
};

/* FNV-1a, 64 bits: for telling settings apart (mh_check_same_settings()), not for security. */
#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME  1099511628211ULL

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

/* Hashes `s` with its NUL, so that "ab","c" and "a","bc" differ. */
static uint64_t fnv_str(uint64_t h, const char *s)
{
    return fnv(h, s, strlen(s) + 1);
}

static int record_error(struct loader *ld, const char *file, int line, const char *section,
                        const char *key, const char *fmt, va_list ap)
{
    if (ld->failed)
        return -1;
    ld->failed = true;
    int n = line > 0 || !file
                ? snprintf(ld->err, ld->errlen, "%s:%d: ", file ? file : ld->path, line)
                : snprintf(ld->err, ld->errlen, "%s: ", file ? file : ld->path);
    /* "[section] key: what", "[section]: what" or just "what". */
    if (section && key && n >= 0 && (size_t)n < ld->errlen)
        n += snprintf(ld->err + n, ld->errlen - (size_t)n, "[%s] %s: ", section, key);
    else if (section && n >= 0 && (size_t)n < ld->errlen)
        n += snprintf(ld->err + n, ld->errlen - (size_t)n, "[%s]: ", section);
    else if (key && n >= 0 && (size_t)n < ld->errlen)
        n += snprintf(ld->err + n, ld->errlen - (size_t)n, "%s: ", key);
    if (n >= 0 && (size_t)n < ld->errlen)
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    return -1;
}

static int loader_error(struct loader *ld, int line, const char *section, const char *key,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int loader_error(struct loader *ld, int line, const char *section, const char *key,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_error(ld, NULL, line, section, key, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- pass 1: collecting lines ---- */

static struct mh_section *find_section(struct loader *ld, const char *name)
{
    for (int i = 0; i < ld->n_sections; i++)
        if (strcmp(ld->sections[i]->name, name) == 0)
            return ld->sections[i];
    return NULL;
}

static struct mh_section *add_section(struct loader *ld, const char *name, int line)
{
    struct mh_section *prev = find_section(ld, name);
    if (prev) {
        bool is_check = strncmp(name, CHECK_PREFIX, strlen(CHECK_PREFIX)) == 0;
        loader_error(ld, line, name, NULL, "%s (first defined on line %d)",
                     is_check ? "duplicate check name" : "section given twice", prev->line);
        return NULL;
    }
    if (ld->n_sections == MAX_SECTIONS) {
        loader_error(ld, line, name, NULL, "too many sections (at most %d)", MAX_SECTIONS);
        return NULL;
    }
    struct mh_section *s = calloc(1, sizeof *s);
    if (!s) {
        loader_error(ld, line, name, NULL, "out of memory");
        return NULL;
    }
    snprintf(s->name, sizeof s->name, "%s", name);
    s->line = line;
    s->ld = ld;
    ld->sections[ld->n_sections++] = s;
    return s;
}

/* Notices "[name]" lines ourselves: inih reports sections only with their first key, so an empty
 * or repeated section would otherwise go unseen. */
static void note_section_header(struct loader *ld, const char *line)
{
    while (isspace((unsigned char)*line))
        line++;
    if (*line != '[')
        return;
    const char *close = strchr(line, ']');
    if (!close)
        return; /* inih reports the syntax error */
    size_t len = (size_t)(close - line - 1);
    char name[SECTION_MAX];
    if (len >= sizeof name) {
        loader_error(ld, ld->line, NULL, NULL, "section name too long");
        return;
    }
    memcpy(name, line + 1, len);
    name[len] = '\0';
    add_section(ld, name, ld->line);
}

/* True for an indented line without '=' (before an inline comment) that is not a comment or a
 * section header: the rest of a list from the line above. Cuts off its inline comment, which some
 * inih versions keep on continuation lines. */
static bool take_continuation(char *line)
{
    size_t blanks = strspn(line, " \t");
    char *p = line + blanks;
    if (blanks == 0 || strchr("[;#\r\n", *p)) /* also true for the final '\0' */
        return false;
    for (; *p && !(*p == ';' && (p[-1] == ' ' || p[-1] == '\t')); p++)
        if (*p == '=')
            return false;
    *p = '\0';
    return true;
}

/* Hands inih one line at a time, counting lines for error messages. Leading blanks are dropped
 * from every line but a continuation, so an indented "key = value" is an ordinary key (inih would
 * take any indented line as a continuation). A line longer than inih's buffer would be split
 * silently and its tail read as a line of its own: refuse it. */
static char *line_reader(char *buf, int size, void *stream)
{
    struct loader *ld = stream;
    char *r = fgets(buf, size, ld->fp);
    if (!r)
        return NULL;
    ld->line++;
    size_t len = strlen(buf);
    if (len == (size_t)size - 1 && buf[len - 1] != '\n' && !feof(ld->fp)) {
        loader_error(ld, ld->line, NULL, NULL,
                     "line longer than %d characters (give a long list as repeated keys)",
                     size - 2);
        return NULL;
    }
    ld->continuation = take_continuation(buf);
    if (!ld->continuation) {
        size_t blanks = strspn(buf, " \t");
        memmove(buf, buf + blanks, len - blanks + 1);
    }
    if (!ld->failed)
        note_section_header(ld, buf);
    return r;
}

/* Keys whose value is a list: they may be repeated, or continued on indented lines, and every
 * line adds its items (inih caps a line at 200 bytes, too short for a long list). */
static bool is_list_key(const char *section, const char *key)
{
    static const char *const server_lists[] = {"listen", "details_from", "trusted_proxies"};
    if (strcmp(section, "server") != 0)
        return false;
    for (size_t i = 0; i < sizeof server_lists / sizeof server_lists[0]; i++)
        if (strcmp(key, server_lists[i]) == 0)
            return true;
    return false;
}

/* Refuses a second `key` in a section unless it is a list key. */
static int check_repeat(struct loader *ld, struct mh_section *s, const char *section,
                        const char *key)
{
    if (is_list_key(section, key))
        return 0;
    if (ld->continuation)
        return loader_error(ld, ld->line, section, key,
                            "indented line continues a key that takes one value (only list keys, "
                            "listen, details_from and trusted_proxies, continue)");
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return loader_error(ld, ld->line, section, key, "given twice (first on line %d)",
                                s->kv[i].line);
    return 0;
}

static int collect_kv(void *user, const char *section, const char *key, const char *value)
{
    struct loader *ld = user;
    if (ld->failed)
        return 1;
    struct mh_section *s = find_section(ld, section);
    if (!s) /* keys before any section header */
        return loader_error(ld, ld->line, NULL, key, "key outside of a section"), 0;
    if (check_repeat(ld, s, section, key) < 0)
        return 0;
    if (s->n_kv == MAX_KEYS)
        return loader_error(ld, ld->line, section, key, "too many keys in section"), 0;
    struct mh_kv *kv = &s->kv[s->n_kv];
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->line = ld->line;
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        return loader_error(ld, ld->line, section, key, "out of memory"), 0;
    }
    s->n_kv++;
    return 1;
}

/* ---- the mh_section_* API for check types ---- */

static struct mh_kv *section_find(struct mh_section *s, const char *key)
{
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return &s->kv[i];
    return NULL;
}

/* ---- --print-config: what each getter read, with its origin ---- */

static void buf_printf(char **buf, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void buf_printf(char **buf, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *p = realloc(*buf, *len + (size_t)n + 1);
    if (!p)
        return; /* the printout is best effort; the load itself is unaffected */
    va_start(ap, fmt);
    vsnprintf(p + *len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *buf = p;
    *len += (size_t)n;
}

static bool recording(const struct mh_section *s)
{
    return s->ld->opts && s->ld->opts->record;
}

/* True the first time `key` is traced in `s`. */
static bool first_trace(struct mh_section *s, const char *key)
{
    for (int i = 0; i < s->n_traced; i++)
        if (strcmp(s->traced[i], key) == 0)
            return false;
    if (s->n_traced == MAX_TRACE)
        return false;
    snprintf(s->traced[s->n_traced++], sizeof s->traced[0], "%s", key);
    return true;
}

static const char *file_label(struct loader *ld, const char *file)
{
    return file ? file : ld->path;
}

/* One line: "key = value  # origin". The value is cut at the first control character. */
static void trace(struct mh_section *s, const char *key, const char *value, const char *file,
                  int line)
{
    if (!recording(s) || !first_trace(s, key))
        return;
    int vlen = 0;
    while (value[vlen] && (unsigned char)value[vlen] >= 0x20 && vlen < 300)
        vlen++;
    if (!file)
        buf_printf(&s->trace, &s->trace_len, "%s = %.*s  # default\n", key, vlen, value);
    else if (line > 0)
        buf_printf(&s->trace, &s->trace_len, "%s = %.*s  # %s:%d\n", key, vlen, value, file, line);
    else
        buf_printf(&s->trace, &s->trace_len, "%s = %.*s  # %s\n", key, vlen, value, file);
}

static void trace_default(struct mh_section *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void trace_default(struct mh_section *s, const char *key, const char *fmt, ...)
{
    if (!recording(s))
        return;
    char v[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    trace(s, key, v, NULL, 0);
}

static void trace_ms(struct mh_section *s, const char *key, mh_ms ms)
{
    if (ms % 1000 == 0 && ms != 0)
        trace_default(s, key, "%llds", (long long)(ms / 1000));
    else
        trace_default(s, key, "%lldms", (long long)ms);
}

const char *mh_section_get(struct mh_section *s, const char *key)
{
    struct mh_kv *kv = section_find(s, key);
    if (!kv)
        return NULL;
    kv->used = true;
    if (recording(s)) {
        char label[4200];
        if (kv->secret)
            snprintf(label, sizeof label, "(secret from %s)", file_label(s->ld, kv->file));
        trace(s, key, kv->secret ? label : kv->value, file_label(s->ld, kv->file), kv->line);
    }
    return kv->value;
}

int mh_section_error(struct mh_section *s, const char *key, const char *fmt, ...)
{
    struct mh_kv *kv = key ? section_find(s, key) : NULL;
    va_list ap;
    va_start(ap, fmt);
    record_error(s->ld, kv ? kv->file : s->file, kv ? kv->line : s->line, s->name, key, fmt, ap);
    va_end(ap);
    return -1;
}

const struct mh_server_conf *mh_section_server(struct mh_section *s)
{
    return &s->ld->cfg->server;
}

/* Reports a parser's complaint about `key`, quoting the value (values here are never secrets:
 * secrets are not accepted inline). */
static int bad_value(struct mh_section *s, const char *key, const char *value, const char *why)
{
    return mh_section_error(s, key, "invalid value \"%.80s\": %s", value, why);
}

int mh_section_duration(struct mh_section *s, const char *key, mh_ms *out)
{
    const char *v = mh_section_get(s, key), *why;
    if (v && mh_parse_duration(v, out, &why) < 0)
        return bad_value(s, key, v, why);
    if (!v)
        trace_ms(s, key, *out);
    return 0;
}

int mh_section_size(struct mh_section *s, const char *key, struct mh_size *out)
{
    const char *v = mh_section_get(s, key), *why;
    if (v && mh_parse_size(v, out, &why) < 0)
        return bad_value(s, key, v, why);
    if (!v)
        trace_default(s, key, out->percent ? "%g%%" : "%.0f", out->value);
    return 0;
}

int mh_section_bool(struct mh_section *s, const char *key, bool *out)
{
    const char *v = mh_section_get(s, key), *why;
    if (v && mh_parse_bool(v, out, &why) < 0)
        return bad_value(s, key, v, why);
    if (!v)
        trace_default(s, key, "%s", *out ? "yes" : "no");
    return 0;
}

int mh_section_uint(struct mh_section *s, const char *key, unsigned long min, unsigned long max,
                    unsigned long *out)
{
    const char *v = mh_section_get(s, key), *why;
    if (v && mh_parse_uint(v, min, max, out, &why) < 0)
        return mh_section_error(s, key, "invalid value \"%.80s\": %s (%lu..%lu)", v, why, min, max);
    if (!v)
        trace_default(s, key, "%lu", *out);
    return 0;
}

int mh_section_affects(struct mh_section *s, const char *key, unsigned *out)
{
    const char *v = mh_section_get(s, key), *why;
    if (v && mh_parse_affects(v, out, &why) < 0)
        return bad_value(s, key, v, why);
    if (!v)
        trace_default(s, key, "%s%s%s", *out & MH_AFFECTS_NODE ? "node" : "",
                      (*out & MH_AFFECTS_NODE) && (*out & MH_AFFECTS_REGION) ? ", " : "",
                      *out & MH_AFFECTS_REGION ? "region"
                      : *out                   ? ""
                                               : "none");
    return 0;
}

int mh_section_string(struct mh_section *s, const char *key, char *out, size_t outlen)
{
    const char *v = mh_section_get(s, key);
    if (!v) {
        trace_default(s, key, "%.100s", out);
        return 0;
    }
    if (strlen(v) >= outlen)
        return mh_section_error(s, key, "value too long (at most %zu characters)", outlen - 1);
    strcpy(out, v);
    return 0;
}

int mh_section_secret(struct mh_section *s, const char *name, char **out)
{
    char file_key[64], env_key[64];
    snprintf(file_key, sizeof file_key, "%s_file", name);
    snprintf(env_key, sizeof env_key, "%s_env", name);
    *out = NULL;
    struct mh_kv *derived = section_find(s, name);
    if (derived && derived->secret) {
        derived->used = true;
        if (!section_find(s, file_key) && !section_find(s, env_key)) {
            /* A password from env.php, not overridden by the section. */
            mh_section_get(s, name);
            *out = strdup(derived->value);
            if (!*out)
                return mh_section_error(s, name, "out of memory");
            s->resolved = fnv_str(fnv_str(s->resolved, name), *out);
            return 0;
        }
    } else if (derived) {
        mh_section_get(s, name);
        /* The value is deliberately not echoed: it is a secret. */
        return mh_section_error(s, name,
                                "secrets are not accepted inline; use %s = /path or %s = VARIABLE",
                                file_key, env_key);
    }
    const char *file = mh_section_get(s, file_key);
    const char *env = mh_section_get(s, env_key);
    if (file && env)
        return mh_section_error(s, env_key, "set either %s or %s, not both", file_key, env_key);
    if (file) {
        const char *why;
        *out = mh_secret_read_file(file, &why);
        if (!*out)
            return mh_section_error(s, file_key, "cannot read \"%.200s\": %s", file, why);
        if (recording(s)) {
            char label[4200];
            struct mh_kv *fk = section_find(s, file_key);
            snprintf(label, sizeof label, "(secret from %s)", file);
            trace(s, name, label, file_label(s->ld, fk->file), fk->line);
        }
    } else if (env) {
        const char *v = getenv(env);
        if (!v || !*v)
            return mh_section_error(s, env_key, "environment variable %.64s is not set", env);
        *out = strdup(v);
        if (!*out)
            return mh_section_error(s, env_key, "out of memory");
        if (recording(s)) {
            char label[128];
            struct mh_kv *ek = section_find(s, env_key);
            snprintf(label, sizeof label, "(secret from $%.64s)", env);
            trace(s, name, label, file_label(s->ld, ek->file), ek->line);
        }
    } else {
        trace_default(s, name, "(none)");
    }
    /* A new password behind the same file name is a new setting: only its hash is kept. */
    if (*out)
        s->resolved = fnv_str(fnv_str(s->resolved, name), *out);
    return 0;
}

/* ---- pass 2: [server] ---- */

/* Records an error on the line of one given `key = value` line (of a list key given on several). */
static int kv_error(struct mh_section *s, const struct mh_kv *kv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int kv_error(struct mh_section *s, const struct mh_kv *kv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_error(s->ld, kv->file, kv->line, s->name, kv->key, fmt, ap);
    va_end(ap);
    return -1;
}

/* The next line after `prev` (the first when NULL) that gives `key`, marked used, or NULL. */
static struct mh_kv *next_line_of(struct mh_section *s, const char *key, struct mh_kv *prev)
{
    for (int i = prev ? (int)(prev - s->kv) + 1 : 0; i < s->n_kv; i++)
        if (strcmp(s->kv[i].key, key) == 0) {
            s->kv[i].used = true;
            return &s->kv[i];
        }
    return NULL;
}

/* Parses one list item into slot `i` of the caller's array; returns 0 or -1 with `why`. */
typedef int (*item_parser)(const char *item, int i, void *out, const char **why);

/* Splits every line of list key `key` into items, in file order, and parses them into `out`. At
 * most `max` (<= MAX_LIST_ITEMS) items in all: one more is an error on the line that holds it.
 * Returns the number of items, or -1 after an error. */
#define MAX_LIST_ITEMS MH_MAX_DETAILS_FROM
_Static_assert(MH_MAX_LISTEN <= MAX_LIST_ITEMS, "listen is parsed by parse_list()");
static int parse_list(struct mh_section *s, const char *key, int max, const char *what,
                      item_parser parse, void *out)
{
    int n = 0;
    for (struct mh_kv *kv = NULL; (kv = next_line_of(s, key, kv));) {
        char buf[2048];
        char *items[MAX_LIST_ITEMS];
        if (strlen(kv->value) >= sizeof buf)
            return kv_error(s, kv, "value too long");
        strcpy(buf, kv->value);
        int k = mh_split_list(buf, items, max - n);
        if (k < 0)
            return kv_error(s, kv, "too many %s: at most %d, counting every %s line", what, max,
                            key);
        for (int i = 0; i < k; i++) {
            const char *why;
            if (parse(items[i], n + i, out, &why) < 0)
                return kv_error(s, kv, "invalid value \"%.80s\": %s", items[i], why);
        }
        n += k;
    }
    return n;
}

static int parse_listen_item(const char *item, int i, void *out, const char **why)
{
    struct mh_server_conf *sv = out;
    return mh_parse_listen(item, &sv->listen[i], &sv->listen_len[i], why);
}

static int parse_cidr_item(const char *item, int i, void *out, const char **why)
{
    return mh_parse_cidr(item, &((struct mh_cidr *)out)[i], why);
}

static int server_listen(struct mh_section *s, struct mh_server_conf *sv)
{
    if (!section_find(s, "listen"))
        return 0;
    int n = parse_list(s, "listen", MH_MAX_LISTEN, "addresses", parse_listen_item, sv);
    if (n == 0)
        return mh_section_error(s, "listen", "expected one to %d addresses", MH_MAX_LISTEN);
    if (n < 0)
        return -1;
    sv->n_listen = n;
    return 0;
}

/* A list of networks. An empty value means none. */
static int server_cidrs(struct mh_section *s, const char *key, struct mh_cidr *out, int *n_out)
{
    if (!section_find(s, key))
        return 0;
    int n = parse_list(s, key, MH_MAX_DETAILS_FROM, "networks", parse_cidr_item, out);
    if (n < 0)
        return -1;
    *n_out = n;
    return 0;
}

static void server_defaults(struct mh_server_conf *sv)
{
    const char *why;
    mh_parse_listen("0.0.0.0:8642", &sv->listen[0], &sv->listen_len[0], &why);
    sv->n_listen = 1;
    if (gethostname(sv->node, sizeof sv->node) < 0 || !sv->node[0])
        strcpy(sv->node, "localhost");
    sv->node[sizeof sv->node - 1] = '\0';
    mh_parse_cidr("127.0.0.0/8", &sv->details_from[0], &why);
    mh_parse_cidr("::1", &sv->details_from[1], &why);
    sv->n_details_from = 2;
    memcpy(sv->trusted_proxies, sv->details_from, 2 * sizeof sv->details_from[0]);
    sv->n_trusted_proxies = 2;
    sv->shutdown_delay = 5000;
    sv->connection_limit = 1024;
    sv->per_ip_connection_limit = 64;
    sv->connection_timeout = 5000;
}

static int server_region_role(struct mh_section *s, struct mh_server_conf *sv)
{
    const char *v = mh_section_get(s, "region_role");
    if (!v)
        return 0;
    if (strcmp(v, "auto") == 0)
        sv->region_role = MH_REGION_AUTO;
    else if (strcmp(v, "primary") == 0)
        sv->region_role = MH_REGION_PRIMARY;
    else if (strcmp(v, "standby") == 0)
        sv->region_role = MH_REGION_STANDBY;
    else
        return bad_value(s, "region_role", v, "expected primary, standby or auto");
    return 0;
}

/* --print-config for a list key: each of its lines, or the default. */
static void trace_list(struct mh_section *s, const char *key, const char *dflt)
{
    if (!recording(s) || !first_trace(s, key))
        return;
    bool any = false;
    for (int i = 0; i < s->n_kv; i++)
        if (strcmp(s->kv[i].key, key) == 0) {
            buf_printf(&s->trace, &s->trace_len, "%s = %.300s  # %s:%d\n", key, s->kv[i].value,
                       file_label(s->ld, s->kv[i].file), s->kv[i].line);
            any = true;
        }
    if (!any)
        buf_printf(&s->trace, &s->trace_len, "%s = %s  # default\n", key, dflt);
}

static int apply_server(struct mh_section *s, struct mh_server_conf *sv)
{
    unsigned long limit = sv->connection_limit, per_ip = sv->per_ip_connection_limit;
    trace_list(s, "listen", "0.0.0.0:8642");
    trace_list(s, "details_from", "127.0.0.0/8, ::1");
    trace_list(s, "trusted_proxies", "127.0.0.0/8, ::1");
    if (!section_find(s, "region_role"))
        trace_default(s, "region_role", "auto");
    if (server_listen(s, sv) < 0 || server_region_role(s, sv) < 0 ||
        server_cidrs(s, "details_from", sv->details_from, &sv->n_details_from) < 0 ||
        server_cidrs(s, "trusted_proxies", sv->trusted_proxies, &sv->n_trusted_proxies) < 0 ||
        mh_section_string(s, "node", sv->node, sizeof sv->node) < 0 ||
        mh_section_string(s, "region", sv->region, sizeof sv->region) < 0 ||
        mh_section_duration(s, "shutdown_delay", &sv->shutdown_delay) < 0 ||
        mh_section_string(s, "magento_root", sv->magento_root, sizeof sv->magento_root) < 0 ||
        mh_section_uint(s, "connection_limit", 16, 60000, &limit) < 0 ||
        mh_section_uint(s, "per_ip_connection_limit", 1, 60000, &per_ip) < 0 ||
        mh_section_duration(s, "connection_timeout", &sv->connection_timeout) < 0 ||
        mh_section_secret(s, "details_token", &sv->details_token) < 0)
        return -1;
    sv->connection_limit = (unsigned)limit;
    sv->per_ip_connection_limit = (unsigned)per_ip;
    if (!sv->node[0])
        return mh_section_error(s, "node", "must not be empty");
    if (sv->connection_timeout < 1000)
        return mh_section_error(s, "connection_timeout", "must be at least 1s");
    if (sv->magento_root[0] && sv->magento_root[0] != '/')
        return mh_section_error(s, "magento_root", "must be an absolute path");
    return 0;
}

/* ---- [magento] and env.php ---- */

static void file_id_from_stat(const struct stat *st, struct mh_file_id *out)
{
    out->exists = true;
    out->dev = (unsigned long long)st->st_dev;
    out->ino = (unsigned long long)st->st_ino;
    out->size = (long long)st->st_size;
    out->mtime_sec = (long long)st->st_mtim.tv_sec;
    out->mtime_nsec = (long long)st->st_mtim.tv_nsec;
}

void mh_file_id_of(const char *path, struct mh_file_id *out)
{
    struct stat st;
    memset(out, 0, sizeof *out);
    if (path[0] && stat(path, &st) == 0)
        file_id_from_stat(&st, out);
}

bool mh_file_id_equal(const struct mh_file_id *a, const struct mh_file_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime_sec == b->mtime_sec && a->mtime_nsec == b->mtime_nsec;
}

/* Reads the whole file, at most MH_ENVPHP_MAX_FILE bytes. Returns a malloc'd buffer (wipe it:
 * it holds passwords) or NULL with `err` set. Never blocks on a FIFO or a device. */
static char *read_bounded(const char *path, size_t *len, struct mh_file_id *id, char *err,
                          size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open: %s%s", path, strerror(e),
                 e == EACCES ? " (env.php is usually group www-data: give the service "
                               "SupplementaryGroups=www-data, see magento-healthd(8))"
                             : "");
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: %s", path,
                 S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        close(fd);
        return NULL;
    }
    file_id_from_stat(&st, id);
    if (st.st_size > MH_ENVPHP_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, MH_ENVPHP_MAX_FILE);
        close(fd);
        return NULL;
    }
    char *buf = malloc(MH_ENVPHP_MAX_FILE + 1);
    size_t n = 0;
    while (buf && n <= MH_ENVPHP_MAX_FILE) {
        ssize_t r = read(fd, buf + n, MH_ENVPHP_MAX_FILE + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!buf) {
        if (!err[0])
            snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    if (n > MH_ENVPHP_MAX_FILE) {
        explicit_bzero(buf, n);
        free(buf);
        snprintf(err, errlen, "%s: larger than %d bytes", path, MH_ENVPHP_MAX_FILE);
        return NULL;
    }
    *len = n;
    return buf;
}

/* How often a load waiting for PHP hands control back to the caller (mh_load_opts.waiting). */
#define WAITING_TICK_MS 100

/* False when the caller wants the load abandoned. */
static bool waiting_tick(const struct mh_load_opts *opts)
{
    return !opts || !opts->waiting || opts->waiting(opts->waiting_arg);
}

/* env_php_reader = php: `php -r 'echo json_encode(include $argv[1]);' PATH` in a child with no
 * shell, its output capped at MH_ENVPHP_MAX_FILE bytes, killed at `timeout`, its exit status
 * checked. Runs on the main thread at (re)load only, calling opts->waiting while it waits.
 * Returns PHP's output or NULL with `err`. */
static char *run_php(const struct mh_magento_conf *mc, const struct mh_load_opts *opts,
                     const char *path, size_t *len, char *err, size_t errlen)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "%s: php: pipe: %s", path, strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "%s: php: fork: %s", path, strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return NULL;
    }
    if (pid == 0) {
        /* The child: stdout to the pipe, stdin and stderr to /dev/null (PHP's warnings may quote
         * the file), the default signal mask, then exec. Only async-signal-safe calls. */
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 2);
        }
        dup2(pipefd[1], 1);
        close_range(3, ~0U, 0); /* not our sockets (systemd's listening ones lack CLOEXEC) */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        char *const argv[] = {(char *)mc->php_binary,
                              "-d",
                              "display_errors=0",
                              "-r",
                              "$c = include $argv[1]; echo is_array($c) ? json_encode($c, "
                              "JSON_INVALID_UTF8_SUBSTITUTE) : 'false'; exit(is_array($c) ? 0 : "
                              "3);",
                              "--",
                              (char *)path,
                              NULL};
        execv(mc->php_binary, argv);
        _exit(127);
    }
    close(pipefd[1]);
    struct timespec deadline;
    mh_deadline_in(&deadline, mc->php_timeout);
    char *buf = malloc(MH_ENVPHP_MAX_FILE + 1);
    size_t n = 0;
    const char *why = NULL;
    while (buf) {
        mh_ms left = mh_deadline_left(&deadline);
        if (left <= 0) {
            why = "timed out";
            break;
        }
        if (!waiting_tick(opts)) {
            why = "abandoned (shutting down)";
            break;
        }
        struct pollfd pfd = {.fd = pipefd[0], .events = POLLIN};
        int pr = poll(&pfd, 1, (int)(left < WAITING_TICK_MS ? left : WAITING_TICK_MS));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue; /* the deadline check above ends it */
        ssize_t r = read(pipefd[0], buf + n, MH_ENVPHP_MAX_FILE + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n > MH_ENVPHP_MAX_FILE) {
            why = "printed more than 1 MiB";
            break;
        }
    }
    close(pipefd[0]);
    int status = 0;
    if (why || !buf)
        kill(pid, SIGKILL);
    /* After EOF (or the kill) the child is gone or going: wait at most 3 s (SIGKILL after 1 s),
     * never blocking, since a child stuck in uninterruptible I/O (a hung network mount) outlives
     * SIGKILL. Such a child is left behind, and its result does not count. */
    for (int tries = 0;; tries++) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (w == 0 && tries == 300) {
            why = why ? why : "PHP did not exit after SIGKILL";
            break;
        }
        if (w == 0 && tries == 100)
            kill(pid, SIGKILL);
        if (w == 0 && tries % 10 == 0)
            (void)waiting_tick(opts); /* the child is being reaped: nothing left to abandon */
        if (w == 0)
            usleep(10000);
    }
    if (!buf)
        why = "out of memory";
    else if (!why && WIFSIGNALED(status))
        why = "killed by a signal";
    else if (!why && WIFEXITED(status) && WEXITSTATUS(status) == 127)
        why = "cannot run the PHP binary (php_binary)";
    else if (!why && WIFEXITED(status) && WEXITSTATUS(status) == 3)
        why = "the file does not return an array";
    else if (!why && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        why = "PHP exited with an error (a syntax error or an exception in env.php?)";
    if (why) {
        snprintf(err, errlen, "%s: env_php_reader = php: %s", path, why);
        if (buf)
            explicit_bzero(buf, n);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Reads, parses and derives env.php into `out`. Returns 0 or -1 with `err` set. A missing file
 * is -2 (the caller decides whether that is an error). */
static int load_envphp(struct mh_magento_conf *mc, const struct mh_load_opts *opts,
                       struct mh_magento *out, char *err, size_t errlen)
{
    err[0] = '\0';
    size_t len = 0;
    char *buf;
    struct stat st;
    if (stat(mc->env_php, &st) < 0 && errno == ENOENT) {
        snprintf(err, errlen, "%s: cannot open: %s", mc->env_php, strerror(errno));
        return -2;
    }
    if (mc->reader == MH_ENVPHP_PHP) {
        /* Checked here too: PHP would wait on a FIFO and read a directory as nothing. */
        if (stat(mc->env_php, &st) == 0 && !S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s: not a regular file", mc->env_php);
            return -1;
        }
        mh_file_id_of(mc->env_php, &mc->id);
        buf = run_php(mc, opts, mc->env_php, &len, err, errlen);
    } else {
        buf = read_bounded(mc->env_php, &len, &mc->id, err, errlen);
    }
    if (!buf)
        return -1;
    struct mh_php_node *root = mc->reader == MH_ENVPHP_PHP
                                   ? mh_envphp_parse_json(buf, len, mc->env_php, err, errlen)
                                   : mh_envphp_parse(buf, len, mc->env_php, err, errlen);
    explicit_bzero(buf, len);
    free(buf);
    if (!root)
        return -1;
    struct mh_magento_opts derive = {
        .credentials_magento = mc->credentials_magento,
        .mysql_socket = MARIADB_SOCKET,
        .have_amqp = mh_check_type_find("amqp") != NULL,
        .have_opensearch = mh_check_type_find("opensearch") != NULL,
    };
    int rc = mh_magento_derive(root, mc->env_php, &derive, out, err, errlen);
    mh_php_free(root);
    return rc;
}

/* env_php defaults to auto only when a [magento] section exists. A configuration from before
 * env.php support (magento_root in [server] for the maintenance flag, its own mysql and redis
 * checks) must keep loading unchanged after an upgrade: deriving checks from an env.php the
 * dynamic user may not even be allowed to read would turn a package upgrade into an outage. */
static int apply_magento(struct loader *ld, struct mh_section *s, struct mh_magento_conf *mc)
{
    struct mh_server_conf *sv = &ld->cfg->server;
    char root[sizeof sv->magento_root] = "", env[4096], reader[16] = "native", cred[16] = "healthd";
    snprintf(env, sizeof env, "%s", s ? "auto" : "no");
    snprintf(mc->php_binary, sizeof mc->php_binary, "/usr/bin/php");
    mc->php_timeout = 5000;
    if (s && (mh_section_string(s, "magento_root", root, sizeof root) < 0 ||
              mh_section_string(s, "env_php", env, sizeof env) < 0 ||
              mh_section_string(s, "env_php_reader", reader, sizeof reader) < 0 ||
              mh_section_string(s, "php_binary", mc->php_binary, sizeof mc->php_binary) < 0 ||
              mh_section_duration(s, "php_timeout", &mc->php_timeout) < 0 ||
              mh_section_string(s, "credentials", cred, sizeof cred) < 0))
        return -1;
    if (root[0]) {
        if (root[0] != '/')
            return mh_section_error(s, "magento_root", "must be an absolute path");
        if (sv->magento_root[0] && strcmp(sv->magento_root, root) != 0)
            return mh_section_error(s, "magento_root",
                                    "differs from [server] magento_root; set it in one place");
        snprintf(sv->magento_root, sizeof sv->magento_root, "%s", root);
    }
    if (strcmp(reader, "native") == 0)
        mc->reader = MH_ENVPHP_NATIVE;
    else if (strcmp(reader, "php") == 0)
        mc->reader = MH_ENVPHP_PHP;
    else
        return bad_value(s, "env_php_reader", reader, "expected native or php");
    if (strcmp(cred, "magento") == 0)
        mc->credentials_magento = true;
    else if (strcmp(cred, "healthd") != 0)
        return bad_value(s, "credentials", cred, "expected healthd or magento");
    /* Read here (so they are known keys), copied into the derived mysql checks later. */
    const char *pw_file = s ? mh_section_get(s, "db_password_file") : NULL;
    const char *pw_env = s ? mh_section_get(s, "db_password_env") : NULL;
    if (s)
        mh_section_get(s, "db_user");
    if (pw_file && pw_env)
        return mh_section_error(s, "db_password_env",
                                "set either db_password_file or "
                                "db_password_env, not both");
    if (mc->php_binary[0] != '/')
        return mh_section_error(s, "php_binary", "must be an absolute path");
    if (mc->php_timeout < 100 || mc->php_timeout > 60000)
        return mh_section_error(s, "php_timeout", "must be between 100ms and 60s");
    if (strcmp(env, "no") == 0)
        return 0;
    if (strcmp(env, "auto") == 0) {
        if (sv->magento_root[0])
            snprintf(mc->env_php, sizeof mc->env_php, "%s/app/etc/env.php", sv->magento_root);
        mc->required = ld->opts && ld->opts->require_env_php;
        return 0;
    }
    if (env[0] != '/')
        return bad_value(s, "env_php", env, "expected auto, no or an absolute path");
    snprintf(mc->env_php, sizeof mc->env_php, "%s", env);
    mc->required = true;
    return 0;
}

static int add_kv(struct loader *ld, struct mh_section *s, const char *key, const char *value,
                  const char *file, int line, bool secret)
{
    if (s->n_kv == MAX_KEYS)
        return loader_error(ld, s->line, s->name, key, "too many keys in section");
    struct mh_kv *kv = &s->kv[s->n_kv];
    kv->key = strdup(key);
    kv->value = strdup(value);
    if (!kv->key || !kv->value) {
        free(kv->key);
        free(kv->value);
        return loader_error(ld, s->line, s->name, key, "out of memory");
    }
    kv->file = file;
    kv->line = line;
    kv->secret = secret;
    s->n_kv++;
    return 0;
}

/* [magento] db_user, db_password_file, db_password_env: the database user of the derived
 * mysql checks when credentials = healthd. Copied into a derived section that does not set its
 * own, with their config file lines. */
static int add_db_credentials(struct loader *ld, struct mh_section *m, struct mh_section *s)
{
    static const char *const keys[][2] = {{"db_user", "user"},
                                          {"db_password_file", "password_file"},
                                          {"db_password_env", "password_env"}};
    bool own = section_find(s, "user") || section_find(s, "password_file") ||
               section_find(s, "password_env");
    for (size_t i = 0; m && !own && i < sizeof keys / sizeof keys[0]; i++) {
        struct mh_kv *kv = section_find(m, keys[i][0]);
        if (kv && add_kv(ld, s, keys[i][1], kv->value, NULL, kv->line, false) < 0)
            return -1;
    }
    if (!section_find(s, "user"))
        return mh_section_error(s, NULL,
                                "derived from env.php: set the database user for the check with "
                                "[magento] db_user and db_password_file, or [check.%s] user, or "
                                "[magento] credentials = magento",
                                s->name + strlen(CHECK_PREFIX));
    return 0;
}

/* Merges one derived check into the sections: a [check.NAME] the operator wrote wins key by key. */
static int merge_derived(struct loader *ld, const struct mh_derived_check *d,
                         struct mh_section *magento, const char *envphp)
{
    char name[SECTION_MAX];
    snprintf(name, sizeof name, CHECK_PREFIX "%s", d->name);
    struct mh_section *s = find_section(ld, name);
    if (s) {
        struct mh_kv *type = section_find(s, "type");
        if (type && strcmp(type->value, d->type) != 0)
            return mh_section_error(s, "type", "may not change: env.php derives this check as %s",
                                    d->type);
        if (!type && add_kv(ld, s, "type", d->type, envphp, d->line, false) < 0)
            return -1;
    } else {
        if (!(s = add_section(ld, name, d->line)))
            return -1;
        s->file = envphp;
        if (add_kv(ld, s, "type", d->type, envphp, d->line, false) < 0)
            return -1;
    }
    bool own_password = section_find(s, "password_file") || section_find(s, "password_env");
    for (int i = 0; i < d->n_kv; i++) {
        const struct mh_derived_kv *kv = &d->kv[i];
        if (section_find(s, kv->key) || (kv->secret && own_password))
            continue;
        if (add_kv(ld, s, kv->key, kv->value, envphp, kv->line, kv->secret) < 0)
            return -1;
    }
    if (strcmp(d->type, "magento") == 0)
        return section_find(s, "env_php") ? 0 : add_kv(ld, s, "env_php", envphp, envphp, 0, false);
    if (strcmp(d->type, "mysql") == 0 && !ld->cfg->magento.credentials_magento) {
        struct mh_kv *en = section_find(s, "enabled");
        bool on = true;
        const char *why;
        if (en && mh_parse_bool(en->value, &on, &why) == 0 && !on)
            return 0;
        return add_db_credentials(ld, magento, s);
    }
    return 0;
}

static int derive_from_envphp(struct loader *ld, struct mh_section *magento)
{
    struct mh_magento_conf *mc = &ld->cfg->magento;
    if (!mc->env_php[0])
        return 0;
    struct mh_magento *m = calloc(1, sizeof *m);
    char err[MH_CONFIG_ERROR_MAX];
    if (!m)
        return loader_error(ld, 0, NULL, NULL, "out of memory");
    int rc = load_envphp(mc, ld->opts, m, err, sizeof err);
    if (rc == -2 && !mc->required) {
        free(m); /* auto, and no env.php there (yet): nothing to derive; it is watched */
        return 0;
    }
    if (rc < 0) {
        free(m);
        if (!ld->failed) {
            ld->failed = true;
            snprintf(ld->err, ld->errlen, "%s", err);
        }
        return -1;
    }
    mc->env_php_used = true;
    /* The path strings the sections point at live as long as the loader: cfg outlives it. */
    for (int i = 0; i < m->n_checks && rc == 0; i++)
        rc = merge_derived(ld, &m->checks[i], magento, mc->env_php);
    mh_magento_clear(m);
    free(m);
    return rc;
}

/* ---- pass 2: [check.NAME] ---- */

static bool valid_check_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= MH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

static int check_common(struct mh_section *s, struct mh_check *c)
{
    unsigned long rise = 1, fall = 1;
    c->interval = 2000;
    c->timeout = 1000;
    c->affects = c->type->default_affects;
    if (mh_section_duration(s, "interval", &c->interval) < 0 ||
        mh_section_duration(s, "timeout", &c->timeout) < 0)
        return -1;
    /* Default: 3 x interval, but never so short that a run which legitimately uses its whole
     * timeout is reported stale before it can post its own reason. */
    c->max_age = 3 * c->interval > c->interval + 2 * c->timeout ? 3 * c->interval
                                                                : c->interval + 2 * c->timeout;
    if (mh_section_duration(s, "max_age", &c->max_age) < 0 ||
        mh_section_uint(s, "rise", 1, 100, &rise) < 0 ||
        mh_section_uint(s, "fall", 1, 100, &fall) < 0 ||
        mh_section_affects(s, "affects", &c->affects) < 0)
        return -1;
    c->rise = (unsigned)rise;
    c->fall = (unsigned)fall;
    c->affects_set = mh_section_get(s, "affects") != NULL;
    if (!c->affects_set)
        c->affects = c->type->default_affects;
    if (c->interval < 10)
        return mh_section_error(s, "interval", "must be at least 10ms");
    if (c->timeout < 10)
        return mh_section_error(s, "timeout", "must be at least 10ms");
    /* A run starts every interval and may take its whole timeout, so just before the next run
     * reports, a healthy result is interval + timeout old: anything shorter flaps to "stale". */
    if (c->max_age < c->interval + c->timeout)
        return mh_section_error(s, "max_age", "must be at least interval + timeout (%lldms)",
                                (long long)(c->interval + c->timeout));
    return 0;
}

/* Everything that decides what a check does, for mh_check_same_settings(): the section's lines
 * in file order (type included), the secrets they resolved (hashed only), the effective common
 * settings (defaults included), and the [server] values checks read to decide what they probe:
 * magento_root (the drain check's maintenance flag) and node (the disk probe's file name, the
 * heartbeat row, the Redis key). [server] region is left out: it only labels the heartbeat row,
 * and renaming a region must not send every check back to "starting". */
static uint64_t settings_hash(const struct mh_section *s, const struct mh_check *c)
{
    uint64_t h = fnv_str(FNV_OFFSET, s->name);
    for (int i = 0; i < s->n_kv; i++)
        h = fnv_str(fnv_str(h, s->kv[i].key), s->kv[i].value);
    h = fnv(h, &s->resolved, sizeof s->resolved);
    h = fnv_str(fnv_str(h, c->server->node), c->server->magento_root);
    const int64_t common[] = {c->interval, c->timeout, c->max_age, c->rise, c->fall, c->affects};
    return fnv(h, common, sizeof common);
}

static int report_unused(struct mh_section *s)
{
    for (int i = 0; i < s->n_kv; i++)
        if (!s->kv[i].used)
            return mh_section_error(s, s->kv[i].key, "unknown key");
    return 0;
}

/* Appends the section's trace to the --print-config text. */
static void emit_section(struct loader *ld, struct mh_section *s)
{
    if (!recording(s))
        return;
    buf_printf(&ld->out, &ld->out_len, "\n[%s]\n%s", s->name, s->trace ? s->trace : "");
}

static int create_check(struct loader *ld, struct mh_section *s)
{
    const char *name = s->name + strlen(CHECK_PREFIX);
    bool enabled = true;
    if (mh_section_bool(s, "enabled", &enabled) < 0)
        return -1;
    if (!enabled) {
        /* Dropped, e.g. a check derived from env.php; its other keys are not read. */
        for (int i = 0; i < s->n_kv; i++)
            s->kv[i].used = true;
        return 0;
    }
    if (!valid_check_name(name))
        return mh_section_error(s, NULL,
                                "check names use letters, digits, '_' and '-' (at most "
                                "%d)",
                                MH_NAME_MAX - 1);
    const char *type = mh_section_get(s, "type");
    if (!type && ld->cfg->magento.env_php_used && mh_magento_is_derived_name(name)) {
        /* Overrides a check env.php no longer implies (say, sessions moved to files): nothing to
         * override, so nothing to check. */
        for (int i = 0; i < s->n_kv; i++)
            s->kv[i].used = true;
        if (recording(s))
            buf_printf(&s->trace, &s->trace_len,
                       "# not derived from env.php: nothing to override\n");
        return 0;
    }
    if (!type)
        return mh_section_error(s, NULL, "missing key \"type\" (one of: %s)",
                                mh_check_type_names());
    struct mh_check *c = calloc(1, sizeof *c);
    if (!c)
        return mh_section_error(s, NULL, "out of memory");
    ld->cfg->checks[ld->cfg->n_checks++] = c; /* owned by cfg from here, also on error */
    snprintf(c->name, sizeof c->name, "%s", name);
    c->server = &ld->cfg->server;
    c->type = mh_check_type_find(type);
    if (!c->type)
        return mh_section_error(s, "type", "unknown check type \"%.40s\" (one of: %s)", type,
                                mh_check_type_names());
    if (check_common(s, c) < 0 || c->type->create(c, s) < 0)
        return -1;
    if (c->n_meas == 0)
        return mh_section_error(s, NULL, "check declares no measurement (internal error)");
    c->settings_hash = settings_hash(s, c);
    for (int i = 0; i < s->n_kv; i++) /* a key no getter read is still shown */
        if (recording(s) && s->kv[i].used)
            mh_section_get(s, s->kv[i].key);
    return report_unused(s);
}

static int apply_sections(struct loader *ld)
{
    struct mh_section *server = find_section(ld, "server");
    if (!server && ld->opts && ld->opts->record && !(server = add_section(ld, "server", 0)))
        return -1;
    if (server && (apply_server(server, &ld->cfg->server) < 0 || report_unused(server) < 0))
        return -1;
    struct mh_section *magento = find_section(ld, "magento");
    if (!magento && ld->opts && ld->opts->record && !(magento = add_section(ld, "magento", 0)))
        return -1;
    if (apply_magento(ld, magento, &ld->cfg->magento) < 0 ||
        (magento && report_unused(magento) < 0))
        return -1;
    if (server)
        emit_section(ld, server);
    if (magento)
        emit_section(ld, magento);
    if (derive_from_envphp(ld, magento) < 0)
        return -1;
    for (int i = 0; i < ld->n_sections; i++) {
        struct mh_section *s = ld->sections[i];
        if (s == server || s == magento)
            continue;
        if (strncmp(s->name, CHECK_PREFIX, strlen(CHECK_PREFIX)) != 0)
            return loader_error(ld, s->line, s->name, NULL,
                                "unknown section (expected [server], [magento] or [check.NAME])");
        if (ld->cfg->n_checks == MH_MAX_CHECKS)
            return loader_error(ld, s->line, s->name, NULL, "too many checks (at most %d)",
                                MH_MAX_CHECKS);
        if (create_check(ld, s) < 0)
            return -1;
        emit_section(ld, s);
    }
    if (ld->cfg->n_checks == 0)
        return loader_error(ld, ld->line, NULL, NULL,
                            "no [check.NAME] section: configure at least one check");
    return 0;
}

static void free_sections(struct loader *ld)
{
    for (int i = 0; i < ld->n_sections; i++) {
        struct mh_section *s = ld->sections[i];
        for (int k = 0; k < s->n_kv; k++) {
            /* Values may hold anything the operator typed: wipe them like secrets. */
            explicit_bzero(s->kv[k].value, strlen(s->kv[k].value));
            free(s->kv[k].key);
            free(s->kv[k].value);
        }
        free(s->trace);
        free(s);
    }
}

static int read_file(struct loader *ld)
{
    ld->fp = fopen(ld->path, "re");
    if (!ld->fp) {
        snprintf(ld->err, ld->errlen, "%s: cannot open config file: %s", ld->path, strerror(errno));
        return -1;
    }
    int rc = ini_parse_stream(line_reader, ld, collect_kv, ld);
    fclose(ld->fp);
    if (ld->failed)
        return -1;
    if (rc > 0)
        return loader_error(ld, rc, NULL, NULL, "syntax error (expected [section] or key = value)");
    if (rc < 0)
        return loader_error(ld, 0, NULL, NULL, "cannot read config file");
    return 0;
}

struct mh_config *mh_config_load(const char *path, char *err, size_t errlen)
{
    return mh_config_load_with(path, NULL, err, errlen);
}

struct mh_config *mh_config_load_with(const char *path, const struct mh_load_opts *opts, char *err,
                                      size_t errlen)
{
    struct loader ld = {.path = path, .err = err, .errlen = errlen, .opts = opts};
    ld.cfg = calloc(1, sizeof *ld.cfg);
    if (!ld.cfg) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    snprintf(ld.cfg->path, sizeof ld.cfg->path, "%s", path);
    server_defaults(&ld.cfg->server);
    int rc = read_file(&ld);
    if (rc == 0)
        rc = apply_sections(&ld);
    free_sections(&ld);
    if (rc < 0) {
        free(ld.out);
        mh_config_free(ld.cfg);
        return NULL;
    }
    ld.cfg->effective = ld.out;
    return ld.cfg;
}

void mh_config_free(struct mh_config *cfg)
{
    if (!cfg)
        return;
    for (int i = 0; i < cfg->n_checks; i++) {
        struct mh_check *c = cfg->checks[i];
        if (c->type && c->type->destroy)
            c->type->destroy(c);
        free(c);
    }
    mh_secret_free(cfg->server.details_token);
    free(cfg->effective);
    free(cfg);
}
