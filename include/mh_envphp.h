/* mh_envphp.h - a small, bounded reader of Magento's app/etc/env.php.
 *
 * Magento writes env.php itself as one PHP array literal (`<?php return [ ... ];`). This reads
 * exactly that subset: nested `[...]` and `array(...)`, single- and double-quoted strings with
 * their escapes, integers, floats, true/false/null (any case), `//`, `#` and `/ * * /` comments,
 * trailing commas, `key => value` entries and list items. Anything else (getenv(), constants,
 * concatenation, interpolation, heredoc) is refused with "NAME:LINE:COL: what" rather than
 * guessed at: such a file needs `env_php_reader = php` (mh_envphp_parse_json() reads what PHP
 * printed). Every input size is bounded (MH_ENVPHP_MAX_*). Every node carries the line it is on,
 * for the origins --print-config shows. Pure functions; unit-tested and fuzzed. */
#ifndef MH_ENVPHP_H
#define MH_ENVPHP_H

#include <stdbool.h>
#include <stddef.h>

#define MH_ENVPHP_MAX_FILE   (1024 * 1024) /* bytes */
#define MH_ENVPHP_MAX_DEPTH  32            /* nested arrays */
#define MH_ENVPHP_MAX_STRING (64 * 1024)   /* bytes in one string */
#define MH_ENVPHP_MAX_ITEMS  100000        /* values in the whole file */
#define MH_ENVPHP_ERROR_MAX  256

enum mh_php_type {
    MH_PHP_NULL,
    MH_PHP_BOOL,
    MH_PHP_INT,
    MH_PHP_FLOAT,
    MH_PHP_STRING,
    MH_PHP_ARRAY
};

struct mh_php_entry;

/* One value. Owned by its parent; the root by the caller (mh_php_free()). */
struct mh_php_node {
    enum mh_php_type type;
    int line; /* 1-based; 0 when read from PHP's JSON output (no lines there) */
    bool b;
    long long i;
    double f;
    char *s; /* MH_PHP_STRING: NUL-terminated, valid UTF-8 without NUL bytes */
    size_t len;
    struct mh_php_entry *items; /* MH_PHP_ARRAY, in file order */
    int n_items, cap_items;
};

struct mh_php_entry {
    char *key; /* string keys as written, integer keys in decimal */
    struct mh_php_node *value;
};

/* Parses `len` bytes. `name` (e.g. "env.php") starts every error: "env.php:12:17: a PHP
 * expression (getenv) is not a literal; use env_php_reader = php". Returns NULL with `err` set. */
struct mh_php_node *mh_envphp_parse(const char *buf, size_t len, const char *name, char *err,
                                    size_t errlen);

/* Parses the JSON that `php -r 'echo json_encode(include FILE);'` printed into the same tree
 * (lines 0). The same bounds apply. Returns NULL with `err` set. */
struct mh_php_node *mh_envphp_parse_json(const char *buf, size_t len, const char *name, char *err,
                                         size_t errlen);

void mh_php_free(struct mh_php_node *n);

/* The value at a dotted path ("db.connection.default.host") below `n`, or NULL. With a key given
 * twice, the last wins, as in PHP. */
const struct mh_php_node *mh_php_get(const struct mh_php_node *n, const char *path);

/* The value of entry `key` of array `n` (one level), or NULL. */
const struct mh_php_node *mh_php_child(const struct mh_php_node *n, const char *key);

/* The PHP string form of a scalar (what PHP's (string) cast gives: true "1", false/null "").
 * Writes into `out` and returns it; NULL for an array or when it does not fit. */
const char *mh_php_scalar(const struct mh_php_node *n, char *out, size_t outlen);

const char *mh_php_type_name(enum mh_php_type t);

#endif
