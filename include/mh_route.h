/* mh_route.h - pure request classification for the HTTP layer: which view a path and query
 * ask for, and who the client is behind a trusted proxy.
 *
 * Kept out of mh_http.c so it can be fuzzed and unit-tested without a server. */
#ifndef MH_ROUTE_H
#define MH_ROUTE_H

#include "mh_metrics.h"
#include "mh_render.h"

#include <sys/socket.h>

#define MH_ROUTE_METRICS 100 /* the view number for /metrics */

/* Maps a path (without the query) and the value of its `role` query argument (NULL when
 * absent) to a view (enum mh_view, or MH_ROUTE_METRICS) and its metrics label. Returns -1 for
 * an unknown path. */
int mh_route(const char *path, const char *role_arg, enum mh_http_path *label);

/* Parses the last address in an X-Forwarded-For value: the one our own proxy appended. Returns
 * false when it is not a plain IPv4 or IPv6 address. */
bool mh_forwarded_for_last(const char *xff, struct sockaddr_storage *out);

#endif
