/* mh_text.c - the on-call text view: what is failing now, since when, why, and what flapped.
 *
 * The detailed JSON answers a machine; at 3 a.m. an engineer wants one screen. This renders the
 * same snapshot as a plain-text table that reads well in 100 columns:
 *
 *   node     fail  web-1: drain:drain fail: drained: /run/magento-healthd/drain exists
 *   region   pass  us-east-1 (primary)
 *   standby  pass  us-east-1
 *
 *   STATUS CHECK                    VALUE       AGE    IN STATUS  OUTPUT
 *   fail   drain:drain                          0.2s   3m12s      drained: ...
 *
 *   HISTORY (newest first, 2 of 2 since start; memory only)
 *   2026-12-02T23:01:02Z  drain:drain  pass -> fail  drained: ...
 *
 * Plain text; colour on the status words only when the caller asks (a terminal). Pure: reads
 * the snapshot, returns a string the caller frees. */
#include "mh_render.h"
#include "mh_utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLUMNS 100
/* The CHECK column fits the longest "check:measurement" (derived names such as
 * redis_page_cache:connectivity are 29 characters), within these bounds; the output column
 * takes what is left of the 100. */
#define CHECK_WIDTH_MIN 16
#define CHECK_WIDTH_MAX 32

static const char *color_of(enum mh_status s)
{
    return s == MH_PASS ? "\033[32m" : s == MH_WARN ? "\033[1;33m" : "\033[1;31m";
}

/* The status word, padded to `width`, in colour when asked. */
static void put_status(FILE *f, enum mh_status s, bool color, int width)
{
    if (color)
        fprintf(f, "%s%s\033[0m%*s", color_of(s), mh_status_name(s),
                width - (int)strlen(mh_status_name(s)), "");
    else
        fprintf(f, "%-*s", width, mh_status_name(s));
}

/* Writes at most `cols` characters of `s` (UTF-8 aware), ending in "…" when it had to cut. */
static void put_cut(FILE *f, const char *s, int cols)
{
    size_t len = strlen(s), at = 0;
    int used = 0;
    while (at < len && used < cols) {
        size_t n = mh_utf8_char_len(s + at, len - at);
        if (n == 0)
            n = 1; /* mh_observe() already made it valid; be safe anyway */
        if (used == cols - 1 && at + n < len) {
            fputs("…", f);
            return;
        }
        fwrite(s + at, 1, n, f);
        at += n;
        used++;
    }
}

/* "42s", "3m12s", "2h05m", "3d04h": how long a status has held. */
static void format_span(char *out, size_t outlen, double seconds)
{
    long s = seconds < 0 ? 0 : (long)seconds;
    if (s < 60)
        snprintf(out, outlen, "%lds", s);
    else if (s < 3600)
        snprintf(out, outlen, "%ldm%02lds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, outlen, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else
        snprintf(out, outlen, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
}

static void format_age(char *out, size_t outlen, double ms)
{
    if (ms < 10000)
        snprintf(out, outlen, "%.1fs", ms / 1000);
    else
        format_span(out, outlen, ms / 1000);
}

static double seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void header_line(FILE *f, const char *scope, const struct mh_snapshot *snap, unsigned which,
                        const char *who, bool color)
{
    struct mh_readiness r;
    mh_readiness_compute(snap, which, &r);
    char line[COLUMNS * 4];
    snprintf(line, sizeof line, "%s%s%s", who, r.reason[0] ? ": " : "", r.reason);
    fprintf(f, "%-8s ", scope);
    put_status(f, r.status, color, 4);
    fputs("  ", f);
    put_cut(f, line, COLUMNS - 15);
    fputc('\n', f);
}

static int check_width(const struct mh_snapshot *snap)
{
    size_t w = CHECK_WIDTH_MIN;
    for (int i = 0; i < snap->n_checks; i++) {
        const struct mh_check *c = snap->checks[i].check;
        for (int m = 0; m < c->n_meas; m++) {
            size_t n = strlen(c->name) + 1 + strlen(c->meas[m].name);
            w = n > w ? n : w;
        }
    }
    return w > CHECK_WIDTH_MAX ? CHECK_WIDTH_MAX : (int)w;
}

static void measurement_line(FILE *f, const struct mh_check_view *v, int m, int width, bool color)
{
    const struct mh_meas_state *st = &v->m[m];
    char name[2 * MH_NAME_MAX + 2], value[32] = "", age[16] = "-", held[16] = "-";
    snprintf(name, sizeof name, "%s:%s", v->check->name, v->check->meas[m].name);
    if (st->have_result && st->last.has_value)
        snprintf(value, sizeof value, "%.3g %s", st->last.value,
                 st->last.unit ? st->last.unit : "");
    if (v->have_result)
        format_age(age, sizeof age, v->age_ms);
    if (st->since.tv_sec)
        format_span(held, sizeof held, seconds_since(&st->since));
    const char *output = !st->have_result
                             ? (st->stale ? st->stale_reason : "starting: no result yet")
                         : st->stale ? st->stale_reason
                                     : st->last.output;
    put_status(f, st->have_result ? st->effective : MH_FAIL, color, 6);
    fputc(' ', f);
    put_cut(f, name, width);
    fprintf(f, "%*s %-11.11s %-6s %-10s ",
            width - (int)strlen(name) > 0 ? width - (int)strlen(name) : 0, "", value, age, held);
    put_cut(f, output[0] ? output : "ok", COLUMNS - 6 - 1 - width - 1 - 12 - 7 - 11);
    fputc('\n', f);
}

static void history_lines(FILE *f, const struct mh_snapshot *snap, int width, bool color)
{
    fprintf(f, "\nHISTORY (newest first, %d of %llu since start; memory only)\n", snap->n_history,
            (unsigned long long)snap->history_total);
    for (int i = snap->n_history - 1; i >= 0; i--) {
        const struct mh_transition *t = &snap->history[i];
        struct tm tm;
        char when[32], name[2 * MH_NAME_MAX + 2];
        gmtime_r(&t->when.tv_sec, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        snprintf(name, sizeof name, "%s:%s", t->check, t->measurement);
        fprintf(f, "%s  ", when);
        put_cut(f, name, width);
        fprintf(f, "%*s ", width - (int)strlen(name) > 0 ? width - (int)strlen(name) : 0, "");
        fprintf(f, "%-8s -> ", t->first ? "starting" : mh_status_name(t->from));
        put_status(f, t->to, color, 4);
        fputs("  ", f);
        put_cut(f, t->reason[0] ? t->reason : "ok", COLUMNS - 22 - width - 1 - 12 - 6);
        fputc('\n', f);
    }
}

char *mh_render_text(const struct mh_snapshot *snap, enum mh_view view, bool color,
                     enum mh_status *status)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    *status = mh_view_status(snap, view);
    char who[512];
    const char *region = snap->server->region[0] ? snap->server->region : "-";
    header_line(f, "node", snap, MH_AFFECTS_NODE, snap->server->node, color);
    snprintf(who, sizeof who, "%s (%s)", region, mh_region_role_name(snap));
    header_line(f, "region", snap, MH_AFFECTS_REGION, who, color);
    header_line(f, "standby", snap, MH_AFFECTS_STANDBY, region, color);
    int width = check_width(snap);
    fprintf(f, "\n%-6s %-*s %-11s %-6s %-10s %s\n", "STATUS", width, "CHECK", "VALUE", "AGE",
            "IN STATUS", "OUTPUT");
    for (int i = 0; i < snap->n_checks; i++)
        for (int m = 0; m < snap->checks[i].check->n_meas; m++)
            measurement_line(f, &snap->checks[i], m, width, color);
    history_lines(f, snap, width, color);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
