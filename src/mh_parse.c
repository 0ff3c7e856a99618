/* mh_parse.c - pure parsers for configuration values. See mh_parse.h.
 *
 * Written to be fuzzed: no allocation, no locale, every input length handled, numbers range-checked
 * before they are converted. */
#include "mh_parse.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_MS (24LL * 3600 * 1000)

static int fail(const char **why, const char *msg)
{
    if (why)
        *why = msg;
    return -1;
}

/* Parses a non-negative decimal number with an optional fraction, as strtod would, but without
 * accepting hex, infinities, exponents or a sign. Sets *end after the number. */
static int parse_decimal(const char *s, double *out, const char **end)
{
    const char *p = s;
    double v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p)) {
        if (digits++ > 15)
            return -1;
        v = v * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        double scale = 0.1;
        int frac = 0;
        while (isdigit((unsigned char)*p)) {
            if (frac++ < 9)
                v += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
        digits += frac;
    }
    if (digits == 0)
        return -1;
    *out = v;
    *end = p;
    return 0;
}

int mh_parse_duration(const char *s, mh_ms *out, const char **why)
{
    double v;
    const char *unit;
    if (!s || parse_decimal(s, &v, &unit) < 0)
        return fail(why, "expected a duration such as 500ms, 2s or 1m");
    double ms;
    if (strcmp(unit, "ms") == 0)
        ms = v;
    else if (strcmp(unit, "s") == 0)
        ms = v * 1000;
    else if (strcmp(unit, "m") == 0)
        ms = v * 60000;
    else if (*unit == '\0')
        return fail(why, "a duration needs a unit: ms, s or m (e.g. 2s)");
    else
        return fail(why, "unknown duration unit (use ms, s or m)");
    if (ms > (double)DAY_MS)
        return fail(why, "duration is longer than 24h");
    *out = (mh_ms)llround(ms);
    return 0;
}

int mh_parse_size(const char *s, struct mh_size *out, const char **why)
{
    double v;
    const char *unit;
    if (!s || parse_decimal(s, &v, &unit) < 0)
        return fail(why, "expected a size such as 512M, 2G or 10%");
    if (strcmp(unit, "%") == 0) {
        if (v > 100)
            return fail(why, "a percentage must be between 0% and 100%");
        out->percent = true;
        out->value = v;
        return 0;
    }
    double mult;
    if (*unit == '\0')
        mult = 1;
    else if (strcasecmp(unit, "K") == 0 || strcasecmp(unit, "KB") == 0 || strcmp(unit, "KiB") == 0)
        mult = 1024.0;
    else if (strcasecmp(unit, "M") == 0 || strcasecmp(unit, "MB") == 0 || strcmp(unit, "MiB") == 0)
        mult = 1024.0 * 1024;
    else if (strcasecmp(unit, "G") == 0 || strcasecmp(unit, "GB") == 0 || strcmp(unit, "GiB") == 0)
        mult = 1024.0 * 1024 * 1024;
    else if (strcasecmp(unit, "T") == 0 || strcasecmp(unit, "TB") == 0 || strcmp(unit, "TiB") == 0)
        mult = 1024.0 * 1024 * 1024 * 1024;
    else
        return fail(why, "unknown size unit (use K, M, G, T or %)");
    out->percent = false;
    out->value = v * mult;
    return 0;
}

bool mh_size_below(const struct mh_size *threshold, double available, double total)
{
    if (threshold->percent)
        return total > 0 && available * 100.0 / total < threshold->value;
    return available < threshold->value;
}

int mh_parse_bool(const char *s, bool *out, const char **why)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; s && i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return fail(why, "expected yes or no");
}

int mh_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                  const char **why)
{
    if (!s || !isdigit((unsigned char)*s))
        return fail(why, "expected a whole number");
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '\0')
        return fail(why, "expected a whole number");
    if (errno == ERANGE || v < min || v > max)
        return fail(why, "number out of range");
    *out = v;
    return 0;
}

int mh_parse_affects(const char *s, unsigned *out, const char **why)
{
    char buf[64];
    char *items[4];
    if (!s || strlen(s) >= sizeof buf)
        return fail(why, "expected node, region, \"node, region\" or none");
    strcpy(buf, s);
    int n = mh_split_list(buf, items, 4);
    if (n <= 0)
        return fail(why, "expected node, region, \"node, region\" or none");
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(items[i], "node") == 0)
            v |= MH_AFFECTS_NODE;
        else if (strcmp(items[i], "region") == 0)
            v |= MH_AFFECTS_REGION;
        else if (strcmp(items[i], "none") == 0 && n == 1)
            v = MH_AFFECTS_NONE;
        else
            return fail(why, "expected node, region, \"node, region\" or none");
    }
    *out = v;
    return 0;
}

int mh_parse_cidr(const char *s, struct mh_cidr *out, const char **why)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (!s || strlen(s) >= sizeof buf)
        return fail(why, "expected an address or network such as 10.0.0.0/8 or ::1");
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash)
        *slash = '\0';
    memset(out, 0, sizeof *out);
    unsigned maxprefix;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        maxprefix = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        maxprefix = 128;
    } else {
        return fail(why, "expected an address or network such as 10.0.0.0/8 or ::1");
    }
    out->prefix = maxprefix;
    if (slash) {
        unsigned long p;
        if (mh_parse_uint(slash + 1, 0, maxprefix, &p, NULL) < 0)
            return fail(why, "bad prefix length after '/'");
        out->prefix = (unsigned)p;
    }
    return 0;
}

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;
    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool mh_cidr_contains(const struct mh_cidr *net, const struct sockaddr *sa)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!sa)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return net->family == AF_INET &&
               prefix_equal(net->addr, (const uint8_t *)&in->sin_addr, net->prefix);
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (net->family == AF_INET6)
            return prefix_equal(net->addr, a, net->prefix);
        if (net->family == AF_INET && memcmp(a, v4mapped, 12) == 0)
            return prefix_equal(net->addr, a + 12, net->prefix);
    }
    return false;
}

/* Splits "host:port" or "[v6]:port" into its parts. */
static int split_host_port(const char *s, char *host, size_t hostlen, unsigned long *port,
                           const char **why)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return fail(why, "expected [IPv6]:port");
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return fail(why, "a port is required (host:port)");
        if (memchr(s, ':', (size_t)(colon - s)))
            return fail(why, "write IPv6 addresses in brackets: [::1]:port");
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= hostlen)
        return fail(why, "missing or over-long host");
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    if (mh_parse_uint(colon + 1, 1, 65535, port, NULL) < 0)
        return fail(why, "port must be a number from 1 to 65535");
    return 0;
}

int mh_parse_listen(const char *s, struct sockaddr_storage *out, socklen_t *len, const char **why)
{
    char host[INET6_ADDRSTRLEN];
    unsigned long port;
    if (!s || split_host_port(s, host, sizeof host, &port, why) < 0)
        return -1;
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    bool bracketed = s[0] == '[';
    if (strcmp(host, "*") == 0 && !bracketed) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
    } else if (!bracketed && inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
    } else if (bracketed && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
    } else {
        return fail(why, "listen needs a numeric address such as 127.0.0.1:8642 or [::1]:8642");
    }
    if (out->ss_family == AF_INET) {
        in4->sin_port = htons((uint16_t)port);
        *len = sizeof *in4;
    } else {
        in6->sin6_port = htons((uint16_t)port);
        *len = sizeof *in6;
    }
    return 0;
}

int mh_parse_endpoint(const char *s, char *host, size_t hostlen, unsigned *port, const char **why)
{
    if (!s || !*s)
        return fail(why, "expected host:port or /path/to/socket");
    if (s[0] == '/') {
        if (strlen(s) >= hostlen || strlen(s) >= 108)
            return fail(why, "unix socket path too long");
        strcpy(host, s);
        *port = 0;
        return 0;
    }
    unsigned long p;
    if (split_host_port(s, host, hostlen, &p, why) < 0)
        return -1;
    *port = (unsigned)p;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int mh_split_list(char *s, char **items, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok)
            continue;
        if (n == max)
            return -1;
        items[n++] = tok;
    }
    return n;
}
