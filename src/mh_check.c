/* mh_check.c - helpers for check types: declaring measurements, recording observations, deadlines.
 * See mh_check.h. */
#include "mh_check.h"
#include "mh_utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int declare(struct mh_check *check, const char *measurement, unsigned affects)
{
    if (check->n_meas == MH_MEASUREMENTS_MAX)
        return -1;
    struct mh_measurement *m = &check->meas[check->n_meas];
    snprintf(m->name, sizeof m->name, "%s", measurement);
    m->affects = affects;
    return check->n_meas++;
}

int mh_check_declare(struct mh_check *check, const char *measurement, unsigned affects)
{
    if (affects & MH_AFFECTS_REGION)
        affects |= MH_AFFECTS_STANDBY;
    return declare(check, measurement, affects);
}

int mh_check_declare_write(struct mh_check *check, const char *measurement, unsigned affects)
{
    return declare(check, measurement, affects & ~(unsigned)MH_AFFECTS_STANDBY);
}

/* Output is one line of printable text: logs and JSON stay tidy whatever a server sent us. */
static void sanitize_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = ' ';
}

/* Formats into `out` as one line of valid UTF-8 (jansson refuses anything else, and the key would
 * be lost). The text is formatted whole first, so that the cut to `outlen` is made by
 * mh_utf8_clean() between characters, not by vsnprintf() inside one. Each input byte yields at
 * least one output byte, so `raw` only needs to be longer than `out`. */
static void format_line(char *out, size_t outlen, const char *fmt, va_list ap)
{
    char raw[2 * MH_OUTPUT_MAX];
    vsnprintf(raw, sizeof raw, fmt, ap);
    mh_utf8_clean(out, outlen, raw, sizeof raw);
    sanitize_line(out);
}

bool mh_check_same_settings(const struct mh_check *a, const struct mh_check *b)
{
    return a->type == b->type && strcmp(a->name, b->name) == 0 &&
           a->settings_hash == b->settings_hash;
}

void mh_observe(struct mh_run *run, int i, enum mh_status status, const char *fmt, ...)
{
    if (i < 0 || i >= MH_MEASUREMENTS_MAX)
        return;
    struct mh_observation *o = &run->obs[i];
    o->status = status;
    va_list ap;
    va_start(ap, fmt);
    format_line(o->output, sizeof o->output, fmt, ap);
    va_end(ap);
    mh_now(&o->answered);
}

void mh_observe_answered_at(struct mh_run *run, int i, const struct timespec *at)
{
    if (i >= 0 && i < MH_MEASUREMENTS_MAX)
        run->obs[i].answered = *at;
}

void mh_observe_value(struct mh_run *run, int i, double value, const char *unit)
{
    if (i < 0 || i >= MH_MEASUREMENTS_MAX)
        return;
    run->obs[i].has_value = true;
    run->obs[i].value = value;
    run->obs[i].unit = unit;
}

void mh_run_fact(struct mh_run *run, const char *key, const char *fmt, ...)
{
    if (run->n_facts >= MH_FACTS_MAX)
        return;
    struct mh_fact *f = &run->facts[run->n_facts++];
    mh_utf8_clean(f->key, sizeof f->key, key, strlen(key));
    sanitize_line(f->key);
    va_list ap;
    va_start(ap, fmt);
    format_line(f->value, sizeof f->value, fmt, ap);
    va_end(ap);
}

void mh_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

void mh_timespec_add_ms(struct timespec *t, mh_ms ms)
{
    t->tv_sec += ms / 1000;
    t->tv_nsec += (ms % 1000) * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

void mh_deadline_in(struct timespec *deadline, mh_ms ms)
{
    mh_now(deadline);
    mh_timespec_add_ms(deadline, ms);
}

void mh_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(cond, &attr);
    pthread_condattr_destroy(&attr);
}

double mh_ms_since(const struct timespec *start)
{
    struct timespec now;
    mh_now(&now);
    return (double)(now.tv_sec - start->tv_sec) * 1000.0 +
           (double)(now.tv_nsec - start->tv_nsec) / 1e6;
}

mh_ms mh_deadline_left(const struct timespec *deadline)
{
    double left = -mh_ms_since(deadline);
    return left <= 0 ? 0 : (mh_ms)left;
}
