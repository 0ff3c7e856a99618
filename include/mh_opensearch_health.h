/* mh_opensearch_health.h - OpenSearch / Elasticsearch replies: _cluster/health and error bodies.
 *
 * Pure functions, kept apart from the opensearch check's HTTP work so that the JSON handling can be
 * fuzzed (tests/fuzz/fuzz_opensearch_health.c) and unit-tested. They live in
 * src/checks/opensearch_health.c. */
#ifndef MH_OPENSEARCH_HEALTH_H
#define MH_OPENSEARCH_HEALTH_H

#include "mh_types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The cluster's colour, as `status` in _cluster/health. */
enum mh_os_color { MH_OS_GREEN, MH_OS_YELLOW, MH_OS_RED };

/* The fields of _cluster/health that matter for health. Counts the server left out are -1. */
struct mh_os_health {
    char cluster_name[96];
    enum mh_os_color color;
    bool timed_out;
    int64_t nodes;
    int64_t data_nodes;
    int64_t active_shards;
    int64_t unassigned_shards;
    int64_t initializing_shards;
    int64_t relocating_shards;
    bool has_active_percent;
    double active_percent; /* active_shards_percent_as_number */
};

/* Parses a _cluster/health body (OpenSearch 1-3, Elasticsearch 7-8). Requires "status" (green,
 * yellow or red) and "timed_out" (a boolean); the counts are optional but must be non-negative
 * integers when present. Returns 0, or -1 with a one-line reason in `err`. Never reads past
 * `len`; `text` need not be NUL-terminated. */
int mh_os_health_parse(const char *text, size_t len, struct mh_os_health *h, char *err,
                       size_t errlen);

/* Judges a parsed health: green passes, yellow is `yellow` (warn by default), red fails, and a
 * health request that timed out on the server fails whatever its colour. Writes a one-line
 * explanation (a summary on pass) into `why`. */
enum mh_status mh_os_health_assess(const struct mh_os_health *h, enum mh_status yellow, char *why,
                                   size_t whylen);

/* The reason an error body gives, as one line in `out` (empty when there is none):
 *   {"error":{"type":T,"reason":R,...},"status":N}  -> "T: R"   (OpenSearch, Elasticsearch)
 *   {"error":"text","status":N}                      -> "text"
 *   {"message":"text"} or {"Message":"text"}         -> "text"   (Amazon OpenSearch Service)
 *   anything else                                    -> its first non-empty line, trimmed
 *                                                       ("Unauthorized", an HTML title line).
 * Never reads past `len`. */
void mh_os_error_reason(const char *body, size_t len, char *out, size_t outlen);

#endif
