/* mh_types.h - small value types shared by every module: statuses, roles, what a check affects.
 *
 * Kept apart so that pure modules (parsers, rendering) need not pull in threads or libraries. */
#ifndef MH_TYPES_H
#define MH_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Ordered by severity, so the worst of several is their maximum. */
enum mh_status { MH_PASS = 0, MH_WARN = 1, MH_FAIL = 2 };

/* What a database or cache node says it is. UNKNOWN until a run has found out. */
enum mh_role { MH_ROLE_UNKNOWN = 0, MH_ROLE_WRITER, MH_ROLE_READER };

/* Bit set: which readiness a measurement takes part in. STANDBY is derived, never configured:
 * every region measurement counts for the standby view except those that prove writability
 * (declared with mh_check_declare_write), since a healthy standby is read-only by design. */
enum mh_affects {
    MH_AFFECTS_NONE = 0,
    MH_AFFECTS_NODE = 1,
    MH_AFFECTS_REGION = 2,
    MH_AFFECTS_STANDBY = 4,
};

/* The role the operator intends for this region ([server] region_role). */
enum mh_region_role { MH_REGION_AUTO = 0, MH_REGION_PRIMARY, MH_REGION_STANDBY };

/* Durations are whole milliseconds everywhere in the project. */
typedef int64_t mh_ms;

const char *mh_status_name(enum mh_status s); /* "pass", "warn", "fail" */
const char *mh_role_name(enum mh_role r);     /* "writer", "reader", "unknown" */

#endif
