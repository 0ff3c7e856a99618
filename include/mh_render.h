/* mh_render.h - application/health+json bodies (draft-inadarei-api-health-check).
 *
 * Every body starts with {"status":"pass"|"warn"|"fail" so that a Route 53 string match on the
 * first bytes works, followed by node and region. The public view carries statuses only; the
 * detailed view adds output, observed values, timing and facts. All functions are pure: they read
 * a snapshot and return a string the caller frees with free(). */
#ifndef MH_RENDER_H
#define MH_RENDER_H

#include "mh_registry.h"

enum mh_view {
    MH_VIEW_LIVE,    /* /healthcheck/live: the process answers */
    MH_VIEW_NODE,    /* /healthcheck: node readiness, for the ALB */
    MH_VIEW_REGION,  /* /healthcheck/region: ready for primary traffic, for Route 53 */
    MH_VIEW_STANDBY, /* /healthcheck/region?role=standby: a healthy standby region */
    MH_VIEW_REPORT,  /* --check: every check, node, region and standby readiness */
};

#define MH_PUBLIC_VIEWS 4 /* LIVE, NODE, REGION, STANDBY: the views pre-rendered for probes */

/* The region's role as bodies report it: "primary", "standby" or "unknown". With region_role =
 * auto it follows the mysql checks: writer -> primary, any reader -> standby. */
const char *mh_region_role_name(const struct mh_snapshot *snap);

/* Renders `view`. `detailed` adds outputs and values. Sets *status to the body's status.
 * Region and standby bodies put "region" and "role" right after "status", inside the first
 * bytes Route 53 reads.
 * Returns NULL only on out of memory. */
char *mh_render(const struct mh_snapshot *snap, enum mh_view view, bool detailed,
                enum mh_status *status);

/* The status a view reports: its readiness, or for the report the worst measurement. */
enum mh_status mh_view_status(const struct mh_snapshot *snap, enum mh_view view);

/* The on-call text view (mh_text.c): a header line per scope (node, region with its role,
 * standby), a table with one line per measurement, and the recent history, in at most 100
 * columns. `color` puts ANSI colour on the status words (for a terminal; never over HTTP).
 * Sets *status as mh_render() does for `view`. Returns NULL only on out of memory. */
char *mh_render_text(const struct mh_snapshot *snap, enum mh_view view, bool color,
                     enum mh_status *status);

/* The HTTP status for a health status: 200 for pass and warn, 503 for fail. */
unsigned mh_render_http_code(enum mh_status status);

#endif
