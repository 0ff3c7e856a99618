/* fuzz_http.c - libFuzzer target for HTTP path, query and X-Forwarded-For handling (mh_route.h).
 *
 * libmicrohttpd parses the request line and headers; what reaches our code is the decoded path,
 * the `role` query argument and the X-Forwarded-For header, all attacker-controlled. The input is
 * split at the first two NUL bytes into those three strings; newlines in the third separate
 * repeated X-Forwarded-For lines. */
#include "mh_route.h"

#include <stdlib.h>
#include <string.h>

/* `xff` holds X-Forwarded-For field lines separated by '\n'. The HTTP layer parses only the
 * last line; RFC 9110 5.3 says the lines are one list. Both must name the same client. */
static void check_forwarded_for(const char *xff)
{
    char joined[4096];
    size_t n = strlen(xff);
    memcpy(joined, xff, n + 1);
    for (char *p = joined; (p = strchr(p, '\n')); p++)
        *p = ',';
    const char *nl = strrchr(xff, '\n');
    const char *last = nl ? nl + 1 : xff;
    struct sockaddr_storage a, b;
    bool ok = mh_forwarded_for_last(joined, &a);
    if (ok != mh_forwarded_for_last(last, &b))
        abort();
    if (ok && (a.ss_family != AF_INET && a.ss_family != AF_INET6))
        abort();
    if (ok && memcmp(&a, &b, sizeof a) != 0)
        abort();
}

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
    check_forwarded_for(xff);
    return 0;
}
