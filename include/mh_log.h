/* mh_log.h - one-line log messages to stderr, in the form journald understands.
 *
 * Only the edges of the program (main, the HTTP layer, the transition logger) log; library code
 * returns errors. Under systemd (JOURNAL_STREAM set) each line carries a "<N>" priority prefix
 * and no timestamp; otherwise an ISO 8601 timestamp.
 *
 * mh_log() never blocks on stderr: it queues the line for a writer thread (see mh_log.c), so it
 * may be called under any lock. Lines that do not fit in the queue are dropped and counted, and
 * the count is logged once stderr drains. */
#ifndef MH_LOG_H
#define MH_LOG_H

#include "mh_types.h"

#include <stdbool.h>

enum mh_log_level { MH_LOG_ERR = 3, MH_LOG_WARNING = 4, MH_LOG_NOTICE = 5, MH_LOG_INFO = 6 };

void mh_log(enum mh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Waits up to `ms` for queued lines to be written. Returns false if some are still queued (the
 * writer is stuck on stderr); the process may exit anyway. */
bool mh_log_flush(mh_ms ms);

#endif
