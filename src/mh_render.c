/* mh_render.c - health+json rendering with jansson. See mh_render.h.
 *
 * jansson keeps object keys in insertion order, which is what puts "status" first. */
#include "mh_render.h"
#include "mh_utf8.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

unsigned mh_render_http_code(enum mh_status status)
{
    return status == MH_FAIL ? 503 : 200;
}

/* A JSON string for text that may come from outside: a server's reply, a path, the node name, or
 * text cut by byte count elsewhere. jansson refuses anything but UTF-8 and json_object_set_new()
 * then silently drops the key; instead the text is shown with U+FFFD for the bad bytes. NULL only
 * on out of memory. */
static json_t *text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    size_t len = strlen(s), size = 3 * len + 1; /* each byte becomes at most one U+FFFD */
    char *clean = malloc(size);
    if (!clean)
        return NULL;
    size_t n = mh_utf8_clean(clean, size, s, len);
    j = json_stringn_nocheck(clean, n);
    free(clean);
    return j;
}

/* Sets obj[key] for a key that may come from outside (a fact's name), cleaned like text(). */
static void set_outside_key(json_t *obj, const char *key, json_t *value)
{
    size_t len = strlen(key);
    if (mh_utf8_valid(key, len)) {
        json_object_set_new(obj, key, value);
        return;
    }
    char clean[3 * MH_FACT_KEY_MAX + 1];
    mh_utf8_clean(clean, sizeof clean, key, len);
    json_object_set_new_nocheck(obj, clean, value);
}

static json_t *iso_time(const struct timespec *ts)
{
    struct tm tm;
    char buf[40];
    gmtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts->tv_nsec / 1000000);
    return json_string(buf);
}

/* Numbers are rounded to what is meaningful, so bodies stay short and readable. */
static json_t *rounded(double v, double scale)
{
    return json_real(round(v * scale) / scale);
}

static json_t *affects_array(unsigned affects)
{
    json_t *a = json_array();
    if (affects & MH_AFFECTS_NODE)
        json_array_append_new(a, json_string("node"));
    if (affects & MH_AFFECTS_REGION)
        json_array_append_new(a, json_string("region"));
    if (affects & MH_AFFECTS_STANDBY)
        json_array_append_new(a, json_string("standby"));
    return a;
}

static json_t *details_object(const struct mh_check_view *v)
{
    json_t *d = json_object();
    if (v->role != MH_ROLE_UNKNOWN)
        json_object_set_new(d, "role", json_string(mh_role_name(v->role)));
    for (int i = 0; i < v->n_facts; i++)
        set_outside_key(d, v->facts[i].key, text(v->facts[i].value));
    return d;
}

static json_t *measurement_entry(const struct mh_check_view *v, int m, bool detailed)
{
    const struct mh_meas_state *st = &v->m[m];
    json_t *e = json_object();
    const char *status = st->have_result ? mh_status_name(st->effective) : "fail";
    if (!detailed) {
        json_object_set_new(e, "status", json_string(status));
        return e;
    }
    json_object_set_new(e, "componentId", json_string(v->check->name));
    json_object_set_new(e, "componentType", json_string(v->check->type->component_type));
    json_object_set_new(e, "status", json_string(status));
    if (st->have_result && st->last.has_value) {
        json_object_set_new(e, "observedValue", rounded(st->last.value, 1000));
        json_object_set_new(e, "observedUnit", json_string(st->last.unit ? st->last.unit : ""));
    }
    /* No result at all: "starting", or past max_age the registry's "no result after ..." */
    const char *output = !st->have_result
                             ? (st->stale ? st->stale_reason : "starting: no result yet")
                             : st->last.output;
    char buf[MH_OUTPUT_MAX + 128]; /* room for the whole output: never cut inside a character */
    bool stale_result = st->stale && st->have_result;
    if (stale_result)
        snprintf(buf, sizeof buf, "stale: last result %.1f s ago (max_age %.1f s); last: %s",
                 v->age_ms / 1000.0, (double)v->check->max_age / 1000.0, st->last.output);
    if (output[0] || stale_result)
        json_object_set_new(e, "output", text(stale_result ? buf : output));
    if (v->have_result) {
        json_object_set_new(e, "time", iso_time(&v->last_real));
        json_object_set_new(e, "duration", rounded(v->duration_ms / 1000.0, 1e6));
        json_object_set_new(e, "age", rounded(v->age_ms / 1000.0, 1000));
    }
    if (st->since.tv_sec)
        json_object_set_new(e, "since", iso_time(&st->since));
    json_object_set_new(e, "affects", affects_array(v->check->meas[m].affects));
    if (v->role != MH_ROLE_UNKNOWN || v->n_facts > 0)
        json_object_set_new(e, "details", details_object(v));
    return e;
}

/* Public views list what affects them; detailed views and the report list everything. */
static json_t *checks_object(const struct mh_snapshot *snap, unsigned which, bool detailed)
{
    json_t *checks = json_object();
    for (int i = 0; i < snap->n_checks; i++) {
        const struct mh_check_view *v = &snap->checks[i];
        for (int m = 0; m < v->check->n_meas; m++) {
            if (!detailed && !(v->check->meas[m].affects & which))
                continue;
            char key[2 * MH_NAME_MAX + 2];
            snprintf(key, sizeof key, "%s:%s", v->check->name, v->check->meas[m].name);
            json_t *arr = json_array();
            json_array_append_new(arr, measurement_entry(v, m, detailed));
            json_object_set_new(checks, key, arr);
        }
    }
    return checks;
}

/* The recent transitions, newest first: what flapped in the last hour. */
static json_t *history_array(const struct mh_snapshot *snap)
{
    json_t *arr = json_array();
    for (int i = snap->n_history - 1; i >= 0; i--) {
        const struct mh_transition *t = &snap->history[i];
        char key[2 * MH_NAME_MAX + 2];
        snprintf(key, sizeof key, "%s:%s", t->check, t->measurement);
        json_t *e = json_object();
        json_object_set_new(e, "time", iso_time(&t->when));
        json_object_set_new(e, "check", text(key));
        json_object_set_new(e, "from",
                            json_string(t->first ? "starting" : mh_status_name(t->from)));
        json_object_set_new(e, "to", json_string(mh_status_name(t->to)));
        json_object_set_new(e, "output", text(t->reason));
        json_array_append_new(arr, e);
    }
    return arr;
}

static enum mh_status worst_measurement(const struct mh_snapshot *snap)
{
    enum mh_status worst = MH_PASS;
    for (int i = 0; i < snap->n_checks; i++)
        for (int m = 0; m < snap->checks[i].check->n_meas; m++) {
            const struct mh_meas_state *st = &snap->checks[i].m[m];
            enum mh_status s = st->have_result ? st->effective : MH_FAIL;
            if (s > worst)
                worst = s;
        }
    return worst;
}

static json_t *readiness_object(const struct mh_snapshot *snap, unsigned which)
{
    struct mh_readiness r;
    mh_readiness_compute(snap, which, &r);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(mh_status_name(r.status)));
    if (r.reason[0])
        json_object_set_new(o, "output", text(r.reason));
    return o;
}

const char *mh_region_role_name(const struct mh_snapshot *snap)
{
    if (snap->server->region_role == MH_REGION_PRIMARY)
        return "primary";
    if (snap->server->region_role == MH_REGION_STANDBY)
        return "standby";
    int writers = 0, readers = 0;
    for (int i = 0; i < snap->n_checks; i++) {
        const struct mh_check_view *v = &snap->checks[i];
        if (strcmp(v->check->type->name, "mysql") != 0 || !v->have_result)
            continue;
        writers += v->role == MH_ROLE_WRITER;
        readers += v->role == MH_ROLE_READER;
    }
    return readers ? "standby" : writers ? "primary" : "unknown";
}

static unsigned view_scope(enum mh_view view)
{
    switch (view) {
    case MH_VIEW_REGION:
        return MH_AFFECTS_REGION;
    case MH_VIEW_STANDBY:
        return MH_AFFECTS_STANDBY;
    default:
        return MH_AFFECTS_NODE;
    }
}

enum mh_status mh_view_status(const struct mh_snapshot *snap, enum mh_view view)
{
    if (view == MH_VIEW_LIVE)
        return MH_PASS;
    if (view == MH_VIEW_REPORT)
        return worst_measurement(snap);
    struct mh_readiness r;
    mh_readiness_compute(snap, view_scope(view), &r);
    return r.status;
}

char *mh_render(const struct mh_snapshot *snap, enum mh_view view, bool detailed,
                enum mh_status *status)
{
    struct mh_readiness r = {.status = MH_PASS};
    unsigned which = view_scope(view);
    bool regional = view == MH_VIEW_REGION || view == MH_VIEW_STANDBY;
    if (view == MH_VIEW_NODE || regional)
        mh_readiness_compute(snap, which, &r);
    else if (view == MH_VIEW_REPORT)
        r.status = worst_measurement(snap);
    *status = r.status;

    json_t *root = json_object();
    json_object_set_new(root, "status", json_string(mh_status_name(r.status)));
    if (regional) {
        json_object_set_new(root, "region", text(snap->server->region));
        json_object_set_new(root, "role", json_string(mh_region_role_name(snap)));
        json_object_set_new(root, "node", text(snap->server->node));
    } else {
        json_object_set_new(root, "node", text(snap->server->node));
        json_object_set_new(root, "region", text(snap->server->region));
    }
    if (view == MH_VIEW_REPORT)
        json_object_set_new(root, "role", json_string(mh_region_role_name(snap)));
    if (detailed) {
        json_object_set_new(root, "serviceId", json_string("magento-healthd"));
        json_object_set_new(root, "version", json_string(MH_VERSION));
        if (r.reason[0])
            json_object_set_new(root, "output", text(r.reason));
    }
    if (view == MH_VIEW_REPORT) {
        json_object_set_new(root, "node_readiness", readiness_object(snap, MH_AFFECTS_NODE));
        json_object_set_new(root, "region_readiness", readiness_object(snap, MH_AFFECTS_REGION));
        json_object_set_new(root, "standby_readiness", readiness_object(snap, MH_AFFECTS_STANDBY));
    }
    if (view != MH_VIEW_LIVE)
        json_object_set_new(root, "checks", checks_object(snap, which, detailed));
    if (detailed && view != MH_VIEW_LIVE) {
        json_object_set_new(root, "history", history_array(snap));
        json_object_set_new(root, "history_total", json_integer((json_int_t)snap->history_total));
    }
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(root);
    return out;
}
