/* mh_magento.h - what Magento's env.php says the node depends on, as check sections.
 *
 * mh_magento_derive() turns the parsed env.php tree (mh_envphp.h) into the sections of the
 * derived checks, with stable names: `db` and `db_replica` (type mysql), `redis_session`,
 * `redis_cache` and `redis_page_cache` (type redis), `amqp` and `opensearch` where those types
 * exist, and `magento` (type magento: the env.php status and facts such as MAGE_MODE and a
 * session handler other than redis). Each key carries the env.php line it came from; passwords
 * are flagged secret. The loader (mh_config.c) merges them with the operator's [check.NAME]
 * sections. Pure; unit-tested in test_envphp.c.
 *
 * Also the process-wide env.php status (the last load error, or none) that the magento check
 * shows in the detailed view: set by the main thread after each (re)load, read by that check. */
#ifndef MH_MAGENTO_H
#define MH_MAGENTO_H

#include "mh_envphp.h"

#include <stdbool.h>
#include <stddef.h>

#define MH_DERIVED_MAX      8
#define MH_DERIVED_KEYS_MAX 24
#define MH_DERIVED_VALUE    1024

struct mh_derived_kv {
    char key[32];
    char value[MH_DERIVED_VALUE]; /* wiped by mh_magento_clear() */
    int line;                     /* in env.php; 0 when unknown (the php reader) */
    bool secret;                  /* never printed */
};

struct mh_derived_check {
    char name[32];
    char type[16];
    int line;
    struct mh_derived_kv kv[MH_DERIVED_KEYS_MAX];
    int n_kv;
};

struct mh_magento_opts {
    bool credentials_magento; /* use Magento's own database user and password */
    const char *mysql_socket; /* what PDO MySQL means by "localhost" */
    bool have_amqp;           /* the amqp / opensearch check types exist */
    bool have_opensearch;
};

struct mh_magento {
    struct mh_derived_check checks[MH_DERIVED_MAX];
    int n_checks;
};

/* Derives the checks. Returns 0, or -1 with "NAME:LINE: what" in `err` (e.g. a wrong type at a
 * key: "env.php:14: db.connection.default.host: expected a string, found array"). */
int mh_magento_derive(const struct mh_php_node *root, const char *name,
                      const struct mh_magento_opts *opts, struct mh_magento *out, char *err,
                      size_t errlen);

/* True for the names checks are derived under (db, db_replica, redis_session, ...). */
bool mh_magento_is_derived_name(const char *name);

/* Wipes every value (passwords among them). */
void mh_magento_clear(struct mh_magento *m);

/* The env.php status for the detailed view. `err` NULL or "" clears it. Thread-safe; the lock
 * only guards a copy, no I/O under it. */
void mh_magento_status_set(const char *err);
/* Copies the current error ("" when none) into `out`. */
void mh_magento_status_get(char *out, size_t outlen);

#endif
