/* mh_check.c - helpers for check types: declaring measurements, recording observations, deadlines.
 * See mh_check.h. */
#include "mh_check.h"

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

void mh_observe(struct mh_run *run, int i, enum mh_status status, const char *fmt, ...)
{
    if (i < 0 || i >= MH_MEASUREMENTS_MAX)
        return;
    struct mh_observation *o = &run->obs[i];
    o->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->output, sizeof o->output, fmt, ap);
    va_end(ap);
    sanitize_line(o->output);
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
    snprintf(f->key, sizeof f->key, "%s", key);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->value, sizeof f->value, fmt, ap);
    va_end(ap);
    sanitize_line(f->value);
}

void mh_now(struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
}

void mh_deadline_in(struct timespec *deadline, mh_ms ms)
{
    mh_now(deadline);
    deadline->tv_sec += ms / 1000;
    deadline->tv_nsec += (ms % 1000) * 1000000L;
    if (deadline->tv_nsec >= 1000000000L) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000L;
    }
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
