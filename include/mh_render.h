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
    MH_VIEW_LIVE,   /* /healthcheck/live: the process answers */
    MH_VIEW_NODE,   /* /healthcheck: node readiness, for the ALB */
    MH_VIEW_REGION, /* /healthcheck/region: region readiness, for Route 53 */
    MH_VIEW_REPORT, /* --check: every check, node and region readiness */
};

/* Renders `view`. `detailed` adds outputs and values. Sets *status to the body's status.
 * Returns NULL only on out of memory. */
char *mh_render(const struct mh_snapshot *snap, enum mh_view view, bool detailed,
                enum mh_status *status);

/* The HTTP status for a health status: 200 for pass and warn, 503 for fail. */
unsigned mh_render_http_code(enum mh_status status);

#endif
