/* fuzz_http.c - libFuzzer target for HTTP path, query and X-Forwarded-For handling (mh_route.h).
 *
 * libmicrohttpd parses the request line and headers; what reaches our code is the decoded path,
 * the `role` query argument and the X-Forwarded-For header, all attacker-controlled. The input is
 * split at the first two NUL bytes into those three strings. */
#include "mh_route.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[4096];
    if (size >= sizeof buf)
        size = sizeof buf - 1;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *path = buf;
    const char *role = NULL, *xff = "";
    size_t n = strlen(buf);
    if (n < size) {
        role = buf + n + 1;
        size_t m = strlen(role);
        if (n + 1 + m < size)
            xff = role + m + 1;
    }
    enum mh_http_path label;
    int view = mh_route(path, role, &label);
    if (view != -1 && view != MH_ROUTE_METRICS && (view < 0 || view >= MH_PUBLIC_VIEWS))
        abort();
    if (label < 0 || label >= MH_PATH_COUNT)
        abort();
    struct sockaddr_storage ss;
    if (mh_forwarded_for_last(xff, &ss) && ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        abort();
    return 0;
}
