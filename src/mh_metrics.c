/* mh_metrics.c - Prometheus text format for /metrics. See mh_metrics.h.
 *
 * Label values are check and measurement names, which the config loader restricts to
 * [A-Za-z0-9_-], and fixed strings, so no escaping is needed. The body is built in a growing
 * buffer; a few KiB per check at most. */
#include "mh_metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    char *data;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2 && !b->oom; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
}

static void header(struct buf *b, const char *name, const char *type, const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

enum mh_http_code mh_http_code_index(unsigned code)
{
    switch (code) {
    case 200:
        return MH_CODE_200;
    case 400:
        return MH_CODE_400;
    case 403:
        return MH_CODE_403;
    case 404:
        return MH_CODE_404;
    case 405:
        return MH_CODE_405;
    case 503:
        return MH_CODE_503;
    default:
        return MH_CODE_OTHER;
    }
}

typedef void (*meas_metric_fn)(struct buf *b, const struct mh_check_view *v, int m,
                               const char *labels);

static void each_measurement(struct buf *b, const struct mh_snapshot *snap, meas_metric_fn fn)
{
    for (int i = 0; i < snap->n_checks; i++) {
        const struct mh_check_view *v = &snap->checks[i];
        for (int m = 0; m < v->check->n_meas; m++) {
            char labels[256];
            snprintf(labels, sizeof labels, "check=\"%s\",measurement=\"%s\",type=\"%s\"",
                     v->check->name, v->check->meas[m].name, v->check->type->name);
            fn(b, v, m, labels);
        }
    }
}

static void status_metric(struct buf *b, const struct mh_check_view *v, int m, const char *l)
{
    put(b, "magento_healthd_check_status{%s} %d\n", l,
        v->m[m].have_result ? (int)v->m[m].effective : 2);
}

static void value_metric(struct buf *b, const struct mh_check_view *v, int m, const char *l)
{
    const struct mh_observation *o = &v->m[m].last;
    if (v->m[m].have_result && o->has_value)
        put(b, "magento_healthd_check_observed_value{%s,unit=\"%s\"} %.17g\n", l,
            o->unit ? o->unit : "", o->value);
}

static void failures_metric(struct buf *b, const struct mh_check_view *v, int m, const char *l)
{
    put(b, "magento_healthd_check_consecutive_failures{%s} %u\n", l, v->m[m].consecutive_fail);
}

static void transitions_metric(struct buf *b, const struct mh_check_view *v, int m, const char *l)
{
    put(b, "magento_healthd_check_transitions_total{%s} %llu\n", l,
        (unsigned long long)v->m[m].transitions);
}

static void last_transition_metric(struct buf *b, const struct mh_check_view *v, int m,
                                   const char *l)
{
    const struct timespec *t = &v->m[m].since;
    if (t->tv_sec)
        put(b, "magento_healthd_check_last_transition_timestamp_seconds{%s} %.3f\n", l,
            (double)t->tv_sec + (double)t->tv_nsec / 1e9);
}

static void per_check(struct buf *b, const struct mh_snapshot *snap)
{
    header(b, "magento_healthd_check_duration_seconds", "gauge", "Duration of the last run.");
    for (int i = 0; i < snap->n_checks; i++)
        put(b, "magento_healthd_check_duration_seconds{check=\"%s\",type=\"%s\"} %.6f\n",
            snap->checks[i].check->name, snap->checks[i].check->type->name,
            snap->checks[i].duration_ms / 1000.0);
    header(b, "magento_healthd_check_age_seconds", "gauge", "Time since the last completed run.");
    for (int i = 0; i < snap->n_checks; i++)
        put(b, "magento_healthd_check_age_seconds{check=\"%s\",type=\"%s\"} %.3f\n",
            snap->checks[i].check->name, snap->checks[i].check->type->name,
            snap->checks[i].age_ms / 1000.0);
    header(b, "magento_healthd_check_runs_total", "counter", "Completed runs.");
    for (int i = 0; i < snap->n_checks; i++)
        put(b, "magento_healthd_check_runs_total{check=\"%s\",type=\"%s\"} %llu\n",
            snap->checks[i].check->name, snap->checks[i].check->type->name,
            (unsigned long long)snap->checks[i].runs);
}

static void readiness(struct buf *b, const struct mh_snapshot *snap)
{
    header(b, "magento_healthd_ready", "gauge",
           "1 when the scope is ready (pass or warn), 0 when it is not.");
    static const struct {
        const char *name;
        unsigned which;
    } scopes[] = {
        {"node", MH_AFFECTS_NODE}, {"region", MH_AFFECTS_REGION}, {"standby", MH_AFFECTS_STANDBY}};
    for (size_t s = 0; s < sizeof scopes / sizeof scopes[0]; s++) {
        struct mh_readiness r;
        mh_readiness_compute(snap, scopes[s].which, &r);
        put(b, "magento_healthd_ready{scope=\"%s\"} %d\n", scopes[s].name, r.status != MH_FAIL);
    }
}

static void http_requests(struct buf *b, const struct mh_http_counters *c)
{
    static const char *const paths[MH_PATH_COUNT] = {
        "/healthcheck/live",           "/healthcheck", "/healthcheck/region",
        "/healthcheck/region/standby", "/metrics",     "other"};
    static const char *const codes[MH_CODE_COUNT] = {"200", "400", "403",  "404",
                                                     "405", "503", "other"};
    header(b, "magento_healthd_http_requests_total", "counter", "HTTP requests by path and code.");
    for (int p = 0; p < MH_PATH_COUNT; p++)
        for (int k = 0; k < MH_CODE_COUNT; k++) {
            unsigned long long n = atomic_load(&c->requests[p][k]);
            if (n)
                put(b, "magento_healthd_http_requests_total{path=\"%s\",code=\"%s\"} %llu\n",
                    paths[p], codes[k], n);
        }
}

char *mh_metrics_render(const struct mh_snapshot *snap, const struct mh_http_counters *counters,
                        double start_time)
{
    struct buf b = {0};
    header(&b, "magento_healthd_build_info", "gauge", "Version of magento-healthd.");
    put(&b, "magento_healthd_build_info{version=\"%s\"} 1\n", MH_VERSION);
    header(&b, "magento_healthd_start_time_seconds", "gauge", "Process start, unix time.");
    put(&b, "magento_healthd_start_time_seconds %.3f\n", start_time);
    readiness(&b, snap);
    header(&b, "magento_healthd_check_status", "gauge",
           "Effective status: 0 pass, 1 warn, 2 fail.");
    each_measurement(&b, snap, status_metric);
    header(&b, "magento_healthd_check_observed_value", "gauge",
           "The last observed value, in the unit of the unit label.");
    each_measurement(&b, snap, value_metric);
    header(&b, "magento_healthd_check_consecutive_failures", "gauge",
           "Failing runs in a row (0 when the last run passed).");
    each_measurement(&b, snap, failures_metric);
    header(&b, "magento_healthd_check_transitions_total", "counter",
           "Changes of effective status since start.");
    each_measurement(&b, snap, transitions_metric);
    header(&b, "magento_healthd_check_last_transition_timestamp_seconds", "gauge",
           "Unix time of the last change of effective status (or of the first result).");
    each_measurement(&b, snap, last_transition_metric);
    per_check(&b, snap);
    http_requests(&b, counters);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
