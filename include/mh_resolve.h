/* mh_resolve.h - host name lookups bounded by a run's deadline, shared by the check types.
 *
 * getaddrinfo() blocks for as long as the resolver likes (5 s per server and attempt by default,
 * forever on a resolver that swallows queries). A lookup here runs on glibc's getaddrinfo_a()
 * helper thread; the caller waits only until its deadline. A lookup slower than that is kept and
 * picked up by the next run instead of started again, so a dead resolver costs one helper thread,
 * not one per run. Freeing never waits: a lookup still in flight is abandoned and frees itself
 * when glibc finishes it.
 *
 * Ownership: one struct mh_lookup per check, used by that check's worker thread only (create,
 * run and destroy are never concurrent); the abandoned remainder belongs to glibc's thread. */
#ifndef MH_RESOLVE_H
#define MH_RESOLVE_H

#include "mh_types.h"

#include <netdb.h>
#include <stddef.h>
#include <time.h>

struct mh_lookup;

enum mh_lookup_result { MH_LOOKUP_OK, MH_LOOKUP_ERROR, MH_LOOKUP_TIMEOUT };

/* Looks up `host` for TCP (both families, the resolver's order), starting a lookup or continuing
 * the one an earlier run left running, and waits no later than `deadline` (CLOCK_MONOTONIC).
 * `*slot` holds the lookup between calls (NULL at first). On MH_LOOKUP_OK, `*res` is a list the
 * caller frees with freeaddrinfo(). Otherwise `err` says why, as "HOST: reason". */
enum mh_lookup_result mh_lookup_host(struct mh_lookup **slot, const char *host,
                                     const struct timespec *deadline, struct addrinfo **res,
                                     char *err, size_t errlen);

/* Releases `*slot` without waiting and sets it to NULL. NULL is fine. */
void mh_lookup_abandon(struct mh_lookup **slot);

/* True for a numeric IPv4 or IPv6 address, which needs no lookup. */
bool mh_is_numeric_host(const char *host);

#endif
