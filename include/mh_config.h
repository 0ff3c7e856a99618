/* mh_config.h - the INI configuration: [server] settings and the [check.NAME] sections.
 *
 * The file is read with inih. [server] is parsed here; each [check.NAME] section is collected as
 * key/value lines and handed to its check type's create(), which takes the keys it knows through
 * the mh_section_* helpers below. A key nobody took is reported as unknown. Every error names the
 * file, the line and the key. A key may be given once, except the [server] lists (listen,
 * details_from, trusted_proxies): inih reads at most 198 characters a line, so a list may be given
 * on repeated lines and indented continuation lines, each adding its items. Secrets are read from
 * files or the environment, never from the INI itself, and never appear in an error.
 *
 * [magento] env_php: the checks Magento's app/etc/env.php implies are derived (mh_magento.h) and
 * merged with the [check.NAME] sections: a section with a derived name overrides or extends the
 * derived one key by key (its `type` may not differ; `enabled = no` drops it). Every key keeps
 * its origin (FILE:LINE, env.php:LINE or default) for --print-config; a password from env.php is
 * a secret that only mh_section_secret() hands out. */
#ifndef MH_CONFIG_H
#define MH_CONFIG_H

#include "mh_parse.h"
#include "mh_types.h"

#define MH_DEFAULT_PORT     8642
#define MH_MAX_LISTEN       8
#define MH_MAX_DETAILS_FROM 32 /* networks in details_from, and in trusted_proxies */
#define MH_MAX_CHECKS       64
#define MH_CONFIG_ERROR_MAX 512

struct mh_check;

/* Everything from [server]. Owned by struct mh_config; read-only once loaded. */
struct mh_server_conf {
    struct sockaddr_storage listen[MH_MAX_LISTEN];
    socklen_t listen_len[MH_MAX_LISTEN];
    int n_listen;
    char node[256];                  /* default: the host name */
    char region[128];                /* free text; default empty */
    enum mh_region_role region_role; /* default auto: primary while the database is the writer */
    struct mh_cidr details_from[MH_MAX_DETAILS_FROM];
    int n_details_from;
    /* Peers whose X-Forwarded-For names the real client (the local nginx). */
    struct mh_cidr trusted_proxies[MH_MAX_DETAILS_FROM];
    int n_trusted_proxies;
    char *details_token; /* secret, or NULL. Wiped on free. */
    mh_ms shutdown_delay;
    char magento_root[4096]; /* empty when unset */
    unsigned connection_limit;
    unsigned per_ip_connection_limit;
    mh_ms connection_timeout;
};

/* Which file a poll compares: device, inode, size and mtime (a rewrite changes one of them). */
struct mh_file_id {
    bool exists;
    unsigned long long dev, ino;
    long long size, mtime_sec, mtime_nsec;
};

/* Reads the identity of `path` now (exists = false when stat fails). */
void mh_file_id_of(const char *path, struct mh_file_id *out);
bool mh_file_id_equal(const struct mh_file_id *a, const struct mh_file_id *b);

enum mh_envphp_reader { MH_ENVPHP_NATIVE = 0, MH_ENVPHP_PHP };

/* [magento]: where Magento's env.php is and how it is read (see mh_magento.h). */
struct mh_magento_conf {
    char env_php[4096];   /* the file to follow; empty when env_php = no or nothing to follow */
    bool env_php_used;    /* it was read and its checks derived */
    bool required;        /* a missing file is an error (env_php = PATH, or it was in use) */
    struct mh_file_id id; /* of the file as read */
    enum mh_envphp_reader reader;
    char php_binary[256];
    mh_ms php_timeout;
    bool credentials_magento;
};

/* A loaded configuration. Owns the server settings and the created (not yet started) checks. */
struct mh_config {
    char path[4096];
    struct mh_server_conf server;
    struct mh_magento_conf magento;
    struct mh_check *checks[MH_MAX_CHECKS];
    int n_checks;
    char *effective; /* --print-config text (with mh_load_opts.record), else NULL */
};

struct mh_load_opts {
    bool record;          /* build cfg->effective: every key, its value and its origin */
    bool require_env_php; /* the running configuration used env.php: it must not vanish */
    /* Called about every 100 ms while the load waits for PHP (env_php_reader = php, up to
     * php_timeout), so that the caller's loop goes on with what must never wait: the watchdog
     * and staleness. Returning false abandons the load (PHP is killed; the load fails), e.g.
     * for a shutdown. NULL: nothing to call. */
    bool (*waiting)(void *arg);
    void *waiting_arg;
};

/* Loads and validates `path`. On success returns a config the caller frees with
 * mh_config_free(). On failure returns NULL and writes one line "FILE:LINE: [section] key: what is
 * wrong" into `err`. Performs no network I/O. */
struct mh_config *mh_config_load(const char *path, char *err, size_t errlen);
/* The same with options (NULL: none). */
struct mh_config *mh_config_load_with(const char *path, const struct mh_load_opts *opts, char *err,
                                      size_t errlen);

/* Destroys the checks (which must not be running) and wipes secrets. NULL is fine. */
void mh_config_free(struct mh_config *cfg);

/* ---- For check types: reading the keys of one [check.NAME] section ---- */

/* One section's lines, with line numbers, as collected by the loader. Opaque to check types. */
struct mh_section;

/* The raw value of `key`, or NULL when absent. Marks the key as used. */
const char *mh_section_get(struct mh_section *s, const char *key);

/* Typed getters. Each leaves `*out` untouched when the key is absent (so pre-set defaults stay),
 * returns 0 on success or absence, and -1 after recording an error for a bad value. */
int mh_section_duration(struct mh_section *s, const char *key, mh_ms *out);
int mh_section_size(struct mh_section *s, const char *key, struct mh_size *out);
int mh_section_bool(struct mh_section *s, const char *key, bool *out);
int mh_section_uint(struct mh_section *s, const char *key, unsigned long min, unsigned long max,
                    unsigned long *out);
int mh_section_affects(struct mh_section *s, const char *key, unsigned *out);
/* Copies a string value; an over-long value is an error, not a truncation. */
int mh_section_string(struct mh_section *s, const char *key, char *out, size_t outlen);

/* A secret named NAME comes from `NAME_file` (a path; "%d/x" means $CREDENTIALS_DIRECTORY/x) or
 * `NAME_env` (the name of an environment variable). An inline `NAME = ...` is refused. Leaves
 * *out NULL when neither is set. The caller owns *out and frees it with mh_secret_free().
 * Trailing newlines are stripped. */
int mh_section_secret(struct mh_section *s, const char *name, char **out);

/* Records an error about `key` ("FILE:LINE: [check.NAME] key: ..."), printf-style. Returns -1 so
 * callers can `return mh_section_error(...)`. Never pass a secret value in the message. */
int mh_section_error(struct mh_section *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The [server] settings, for checks that need the node name, region or magento_root. */
const struct mh_server_conf *mh_section_server(struct mh_section *s);

/* Frees a secret after wiping it. NULL is fine. */
void mh_secret_free(char *secret);

/* Reads a secret file as mh_section_secret() does. Returns NULL and sets `why` on failure. */
char *mh_secret_read_file(const char *path, const char **why);

#endif
