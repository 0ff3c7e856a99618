/* mh_log.c - see mh_log.h. */
#include "mh_log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *level_name(enum mh_log_level level)
{
    switch (level) {
    case MH_LOG_ERR:
        return "error";
    case MH_LOG_WARNING:
        return "warning";
    case MH_LOG_NOTICE:
        return "notice";
    default:
        return "info";
    }
}

void mh_log(enum mh_log_level level, const char *fmt, ...)
{
    char line[1024];
    int n;
    if (getenv("JOURNAL_STREAM")) {
        n = snprintf(line, sizeof line, "<%d>", (int)level);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
                      level_name(level));
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write() per line so lines from several threads never interleave. */
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
