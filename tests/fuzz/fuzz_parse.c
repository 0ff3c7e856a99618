/* fuzz_parse.c - libFuzzer target for the configuration value parsers (mh_parse.h).
 *
 * Every value in the config file goes through these: durations, sizes, booleans, numbers,
 * affects lists, CIDRs, listen addresses and dependency endpoints. Each must accept or reject
 * any string without reading out of bounds, and what it accepts must be in range. */
#include "mh_parse.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[512];
    if (size >= sizeof s)
        size = sizeof s - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    const char *why;

    mh_ms ms;
    if (mh_parse_duration(s, &ms, &why) == 0 && (ms < 0 || ms > 24LL * 3600 * 1000))
        abort();
    struct mh_size sz;
    if (mh_parse_size(s, &sz, &why) == 0 && (sz.value < 0 || (sz.percent && sz.value > 100)))
        abort();
    bool b;
    mh_parse_bool(s, &b, &why);
    unsigned long u;
    if (mh_parse_uint(s, 1, 65535, &u, &why) == 0 && (u < 1 || u > 65535))
        abort();
    unsigned affects;
    if (mh_parse_affects(s, &affects, &why) == 0 && affects > 3)
        abort();
    struct mh_cidr net;
    if (mh_parse_cidr(s, &net, &why) == 0) {
        if (net.prefix > (net.family == AF_INET ? 32u : 128u))
            abort();
        struct sockaddr_in6 probe = {.sin6_family = AF_INET6};
        mh_cidr_contains(&net, (struct sockaddr *)&probe);
    }
    struct sockaddr_storage addr;
    socklen_t len;
    mh_parse_listen(s, &addr, &len, &why);
    char host[256];
    unsigned port;
    if (mh_parse_endpoint(s, host, sizeof host, &port, &why) == 0 && port > 65535)
        abort();
    char copy[512];
    memcpy(copy, s, size + 1);
    char *items[8];
    mh_split_list(copy, items, 8);
    return 0;
}
