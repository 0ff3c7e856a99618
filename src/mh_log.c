/* mh_log.c - see mh_log.h.
 *
 * Callers never touch stderr. A line is formatted on the caller's stack and copied into a fixed
 * ring; one writer thread takes lines out and write()s them. A stalled reader (a full pipe, a
 * wedged journald) therefore stalls only the writer: callers keep going, holding whatever lock
 * they hold for no longer than a memcpy. When the ring is full the line is dropped and counted,
 * and the writer reports the count as soon as it can write again. */
#include "mh_log.h"

#include "mh_check.h"
#include "mh_thread.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define RING_LINES     128

struct line {
    size_t len;
    char text[LINE_MAX_BYTES];
};

/* `lock` guards every field of the ring. Held only to copy a line in or out: the write(2)
 * happens outside it, so mh_log() never waits on stderr. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* a line was queued */
    pthread_cond_t drained; /* the writer finished a line */
    unsigned head, count;   /* ring of RING_LINES */
    unsigned long dropped;  /* lines lost to a full ring, not yet reported */
    bool writing;           /* the writer holds a line outside the lock */
    bool started;
    struct line ring[RING_LINES];
} logq = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

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

/* The "<N>" priority under journald, else an ISO 8601 time and the level name. */
static int format_prefix(char *out, size_t outlen, enum mh_log_level level)
{
    if (getenv("JOURNAL_STREAM"))
        return snprintf(out, outlen, "<%d>", (int)level);
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = (int)strftime(out, outlen, "%Y-%m-%dT%H:%M:%S", &tm);
    return n + snprintf(out + n, outlen - (size_t)n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
                        level_name(level));
}

static size_t format_line(char *line, enum mh_log_level level, const char *fmt, va_list ap)
{
    int n = format_prefix(line, LINE_MAX_BYTES, level);
    int m = vsnprintf(line + n, LINE_MAX_BYTES - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > LINE_MAX_BYTES - 2)
        len = LINE_MAX_BYTES - 2;
    line[len++] = '\n';
    return len;
}

static void write_all(const char *text, size_t len)
{
    /* One write() per line so that lines never interleave with anything else on stderr. */
    ssize_t ignored = write(STDERR_FILENO, text, len);
    (void)ignored;
}

/* Takes the next line, or the report of dropped lines, out of the ring. Caller holds the lock. */
static void take_line(struct line *out)
{
    if (logq.dropped > 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%lu log lines were dropped: stderr was not being read",
                 logq.dropped);
        logq.dropped = 0;
        char fmt_line[LINE_MAX_BYTES];
        int n = format_prefix(fmt_line, sizeof fmt_line, MH_LOG_WARNING);
        out->len = (size_t)snprintf(out->text, sizeof out->text, "%.*s%s\n", n, fmt_line, msg);
        return;
    }
    *out = logq.ring[logq.head];
    logq.head = (logq.head + 1) % RING_LINES;
    logq.count--;
}

static void *writer_main(void *arg)
{
    (void)arg;
    static struct line current; /* only this thread uses it */
    pthread_setname_np(pthread_self(), "mh-log");
    pthread_mutex_lock(&logq.lock);
    for (;;) {
        while (logq.count == 0 && logq.dropped == 0)
            pthread_cond_wait(&logq.wake, &logq.lock);
        take_line(&current);
        logq.writing = true;
        pthread_mutex_unlock(&logq.lock);
        write_all(current.text, current.len);
        pthread_mutex_lock(&logq.lock);
        logq.writing = false;
        pthread_cond_broadcast(&logq.drained);
    }
    return NULL;
}

static void start_writer(void)
{
    mh_cond_init_monotonic(&logq.drained);
    pthread_cond_init(&logq.wake, NULL);
    logq.started = mh_thread_spawn(writer_main, NULL, 64 * 1024) == 0;
}

void mh_log(enum mh_log_level level, const char *fmt, ...)
{
    char line[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    size_t len = format_line(line, level, fmt, ap);
    va_end(ap);
    pthread_once(&init_once, start_writer);
    if (!logq.started) { /* no thread could be made: write directly rather than lose the line */
        write_all(line, len);
        return;
    }
    pthread_mutex_lock(&logq.lock);
    if (logq.count == RING_LINES) {
        logq.dropped++;
    } else {
        struct line *slot = &logq.ring[(logq.head + logq.count) % RING_LINES];
        memcpy(slot->text, line, len);
        slot->len = len;
        logq.count++;
        pthread_cond_signal(&logq.wake);
    }
    pthread_mutex_unlock(&logq.lock);
}

bool mh_log_flush(mh_ms ms)
{
    struct timespec until;
    mh_deadline_in(&until, ms);
    pthread_mutex_lock(&logq.lock);
    while (logq.started && (logq.count > 0 || logq.dropped > 0 || logq.writing))
        if (pthread_cond_timedwait(&logq.drained, &logq.lock, &until) != 0)
            break;
    bool empty = !logq.started || (logq.count == 0 && logq.dropped == 0 && !logq.writing);
    pthread_mutex_unlock(&logq.lock);
    return empty;
}
