/* mh_parse.h - pure parsers for configuration values: durations, sizes, booleans, lists, CIDRs
 * and listen addresses.
 *
 * None of these allocate or print. Each returns 0 on success and -1 on bad input, with `why`
 * (when not NULL) pointed at a static explanation fit for an error message. They are fuzzed. */
#ifndef MH_PARSE_H
#define MH_PARSE_H

#include "mh_types.h"

#include <netinet/in.h>
#include <sys/socket.h>

/* "250ms", "2s", "1m", "1.5s". A bare number is rejected: the unit is always written.
 * Range: 0 .. 24h. */
int mh_parse_duration(const char *s, mh_ms *out, const char **why);

/* A size is either an absolute byte count ("512", "64K", "1.5G"; K/M/G/T are powers of 1024)
 * or a percentage of a whole ("10%"). */
struct mh_size {
    bool percent;
    double value; /* bytes, or 0..100 when percent */
};
int mh_parse_size(const char *s, struct mh_size *out, const char **why);

/* True when `available` of `total` is below the threshold. */
bool mh_size_below(const struct mh_size *threshold, double available, double total);

/* yes/no, true/false, on/off, 1/0. */
int mh_parse_bool(const char *s, bool *out, const char **why);

/* A decimal integer in [min, max]. */
int mh_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                  const char **why);

/* "node", "region", "node, region", "none". */
int mh_parse_affects(const char *s, unsigned *out, const char **why);

/* An IPv4 or IPv6 network: "10.0.0.0/8", "::1", "127.0.0.1" (a bare address is a /32 or /128). */
struct mh_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};
int mh_parse_cidr(const char *s, struct mh_cidr *out, const char **why);

/* Does `sa` fall inside `net`? IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 nets. */
bool mh_cidr_contains(const struct mh_cidr *net, const struct sockaddr *sa);

/* "127.0.0.1:8642", "[::1]:8642", "*:8642" (all IPv4), "[::]:8642". The port is required. */
int mh_parse_listen(const char *s, struct sockaddr_storage *out, socklen_t *len, const char **why);

/* "host:port", "[v6]:port" or "/unix/path" for a dependency's address. `host` receives the host
 * without brackets; `port` is 0 when the address is a unix socket path (then `host` holds it). */
int mh_parse_endpoint(const char *s, char *host, size_t hostlen, unsigned *port, const char **why);

/* Splits a comma-separated list in place. Trims blanks around each item and skips empty items.
 * Returns the number of items stored in `items` (at most `max`), or -1 when there are more. */
int mh_split_list(char *s, char **items, int max);

#endif
