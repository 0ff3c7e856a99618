/* mh_check_text: the small text helpers every check type writes its outputs with.
 *
 * Outputs are one line, cut to the buffer (a long host name or server message is cut, never
 * overflows), and never carry a secret: servers and libraries may quote what was sent to them,
 * so a check scrubs each of its secrets from any text it did not write itself. */
#ifndef MH_CHECK_TEXT_H
#define MH_CHECK_TEXT_H

#include <stddef.h>

/* snprintf() into buf, where cutting is intended. */
void mh_say(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Writes "STAGE: text" into buf: every failure names the step that failed. */
void mh_stage_error(char *buf, size_t len, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Overwrites every occurrence of secret in text with '*'. A NULL or empty secret does nothing. */
void mh_scrub(char *text, const char *secret);

#endif
