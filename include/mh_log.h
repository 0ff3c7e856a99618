/* mh_log.h - one-line log messages to stderr, in the form journald understands.
 *
 * Only the edges of the program (main, the HTTP layer, the transition logger) log; library code
 * returns errors. Under systemd (JOURNAL_STREAM set) each line carries a "<N>" priority prefix
 * and no timestamp; otherwise an ISO 8601 timestamp. Thread-safe: each line is one write(). */
#ifndef MH_LOG_H
#define MH_LOG_H

enum mh_log_level { MH_LOG_ERR = 3, MH_LOG_WARNING = 4, MH_LOG_NOTICE = 5, MH_LOG_INFO = 6 };

void mh_log(enum mh_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
