/* mh_route.c - see mh_route.h. */
#include "mh_route.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <string.h>

int mh_route(const char *path, const char *role_arg, enum mh_http_path *label)
{
    static const struct {
        const char *path;
        int view;
        enum mh_http_path label;
    } routes[] = {
        {"/healthcheck", MH_VIEW_NODE, MH_PATH_NODE},
        {"/healthcheck/node", MH_VIEW_NODE, MH_PATH_NODE},
        {"/healthcheck/live", MH_VIEW_LIVE, MH_PATH_LIVE},
        {"/healthcheck/region", MH_VIEW_REGION, MH_PATH_REGION},
        {"/healthcheck/region/standby", MH_VIEW_STANDBY, MH_PATH_STANDBY},
        {"/metrics", MH_ROUTE_METRICS, MH_PATH_METRICS},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        /* Route 53's ResourcePath may carry a query: /healthcheck/region?role=standby. */
        if (routes[i].view == MH_VIEW_REGION && role_arg && strcmp(role_arg, "standby") == 0) {
            *label = MH_PATH_STANDBY;
            return MH_VIEW_STANDBY;
        }
        *label = routes[i].label;
        return routes[i].view;
    }
    *label = MH_PATH_OTHER;
    return -1;
}

bool mh_forwarded_for_last(const char *xff, struct sockaddr_storage *out)
{
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (isspace((unsigned char)*last))
        last++;
    char addr[INET6_ADDRSTRLEN];
    size_t n = strcspn(last, " \t");
    if (n == 0 || n >= sizeof addr || last[n + strspn(last + n, " \t")] != '\0')
        return false;
    memcpy(addr, last, n);
    addr[n] = '\0';
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}
