/* check_text: one-line outputs for the check types, and scrubbing secrets out of them (see
 * mh_check_text.h). Kept in one place so every type cuts and scrubs the same way. */
#include "mh_check_text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mh_say(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

void mh_stage_error(char *buf, size_t len, const char *stage, const char *fmt, ...)
{
    int n = snprintf(buf, len, "%s: ", stage);
    if (n < 0 || (size_t)n >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, len - (size_t)n, fmt, ap);
    va_end(ap);
}

void mh_scrub(char *text, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0)
        return;
    for (char *p = strstr(text, secret); p; p = strstr(p + n, secret))
        memset(p, '*', n);
}
