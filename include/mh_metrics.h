/* mh_metrics.h - the /metrics body, in the Prometheus text exposition format (version 0.0.4).
 *
 * Pure: it renders a registry snapshot plus the HTTP request counters. The HTTP layer owns the
 * counters (struct mh_http_counters, atomics, updated per request) and gates /metrics like the
 * detailed view. */
#ifndef MH_METRICS_H
#define MH_METRICS_H

#include "mh_registry.h"

#include <stdatomic.h>

enum mh_http_path {
    MH_PATH_LIVE,
    MH_PATH_NODE,
    MH_PATH_REGION,
    MH_PATH_STANDBY,
    MH_PATH_METRICS,
    MH_PATH_OTHER,
    MH_PATH_COUNT
};
enum mh_http_code {
    MH_CODE_200,
    MH_CODE_400,
    MH_CODE_403,
    MH_CODE_404,
    MH_CODE_405,
    MH_CODE_503,
    MH_CODE_OTHER,
    MH_CODE_COUNT
};

struct mh_http_counters {
    atomic_ullong requests[MH_PATH_COUNT][MH_CODE_COUNT];
};

enum mh_http_code mh_http_code_index(unsigned code);

/* Returns a malloc'd body, or NULL on out of memory. `start_time` is the process start (unix
 * seconds). */
char *mh_metrics_render(const struct mh_snapshot *snap, const struct mh_http_counters *counters,
                        double start_time);

#endif
