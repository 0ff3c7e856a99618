/* mh_fpm_status.h - PHP-FPM's status page (pm.status_path?json): parsing and judging it.
 *
 * Pure functions, apart from the fpm check's socket work, so that the JSON parser can be fuzzed
 * and the thresholds unit-tested. They live in src/check_fpm.c. */
#ifndef MH_FPM_STATUS_H
#define MH_FPM_STATUS_H

#include "mh_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fields of the JSON status that matter for health. Counts missing from an older php-fpm
 * are 0; the required ones (see mh_fpm_status_parse) are always present. */
struct mh_fpm_status {
    char pool[64];
    char process_manager[16];
    uint64_t accepted_conn;
    uint64_t listen_queue; /* requests waiting for a worker now (php-fpm measures it on TCP only) */
    uint64_t max_listen_queue;
    uint64_t listen_queue_len; /* the backlog size, not a live value */
    uint64_t idle;
    uint64_t active;
    uint64_t total;
    uint64_t max_active;
    uint64_t max_children_reached;
    uint64_t slow_requests;
};

/* Parses the `json` status format. Requires "listen queue", "idle processes", "active
 * processes", "total processes" and "accepted conn" as non-negative integers. Returns 0, or -1
 * with a one-line reason in `err`. Never reads past `len`; `text` need not be NUL-terminated. */
int mh_fpm_status_parse(const char *text, size_t len, struct mh_fpm_status *st, char *err,
                        size_t errlen);

/* When the status page is served by the pool itself (no pm.status_listen), the worker answering
 * it counts as active. Moves that one worker back to idle. */
void mh_fpm_status_discount_self(struct mh_fpm_status *st);

/* Active workers as a percentage of all workers; 0 when there are none. */
double mh_fpm_utilisation(const struct mh_fpm_status *st);

/* Thresholds; 0 turns one off. */
struct mh_fpm_limits {
    unsigned long listen_queue_warn;
    unsigned long listen_queue_fail;
    unsigned long utilisation_warn; /* percent */
    unsigned long utilisation_fail; /* percent */
};

/* Judges a status. Saturated (fail) means no idle worker while requests wait: either php-fpm's
 * listen queue is non-empty, or `request_waited` says our own request sat unanswered until its
 * deadline (php-fpm cannot measure the queue of a unix socket on Linux). Then the fail and warn
 * thresholds, worst first. Writes a one-line explanation (a summary on pass) into `why`. */
enum mh_status mh_fpm_status_assess(const struct mh_fpm_status *st, const struct mh_fpm_limits *lim,
                                    bool request_waited, char *why, size_t whylen);

#endif
