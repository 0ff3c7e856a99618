/* opensearch_health.c - parsing and judging OpenSearch / Elasticsearch replies. See
 * mh_opensearch_health.h.
 *
 * Everything here is pure: bytes in, a struct or a line of text out. The bodies come from whatever
 * answers on the cluster's port, so every field is type-checked and every copy is bounded. */
#include "mh_opensearch_health.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static void copy_text(char *out, size_t outlen, const char *text, size_t n)
{
    if (outlen == 0)
        return;
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, text, n);
    out[n] = '\0';
}

/* An optional non-negative integer count; -1 when absent. */
static int count_field(json_t *root, const char *key, int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    *out = -1;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(err, errlen, "health reply: \"%s\" is not a non-negative integer", key);
        return -1;
    }
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int parse_color(json_t *root, enum mh_os_color *color, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, "status");
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s) {
        snprintf(err, errlen, "health reply has no \"status\" string");
        return -1;
    }
    if (strcmp(s, "green") == 0)
        *color = MH_OS_GREEN;
    else if (strcmp(s, "yellow") == 0)
        *color = MH_OS_YELLOW;
    else if (strcmp(s, "red") == 0)
        *color = MH_OS_RED;
    else {
        snprintf(err, errlen, "health reply: unknown status \"%.40s\"", s);
        return -1;
    }
    return 0;
}

static int parse_fields(json_t *root, struct mh_os_health *h, char *err, size_t errlen)
{
    if (parse_color(root, &h->color, err, errlen) < 0)
        return -1;
    json_t *t = json_object_get(root, "timed_out");
    if (!json_is_boolean(t)) {
        snprintf(err, errlen, "health reply has no \"timed_out\" boolean");
        return -1;
    }
    h->timed_out = json_is_true(t);
    const struct {
        const char *key;
        int64_t *out;
    } counts[] = {
        {"number_of_nodes", &h->nodes},
        {"number_of_data_nodes", &h->data_nodes},
        {"active_shards", &h->active_shards},
        {"unassigned_shards", &h->unassigned_shards},
        {"initializing_shards", &h->initializing_shards},
        {"relocating_shards", &h->relocating_shards},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (count_field(root, counts[i].key, counts[i].out, err, errlen) < 0)
            return -1;
    json_t *pct = json_object_get(root, "active_shards_percent_as_number");
    if (json_is_number(pct)) {
        double v = json_number_value(pct);
        if (isfinite(v) && v >= 0 && v <= 100) {
            h->has_active_percent = true;
            h->active_percent = v;
        }
    }
    json_t *name = json_object_get(root, "cluster_name");
    if (json_is_string(name))
        copy_text(h->cluster_name, sizeof h->cluster_name, json_string_value(name),
                  json_string_length(name));
    return 0;
}

int mh_os_health_parse(const char *text, size_t len, struct mh_os_health *h, char *err,
                       size_t errlen)
{
    memset(h, 0, sizeof *h);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "health reply is not JSON: %s", jerr.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root))
        snprintf(err, errlen, "health reply is not a JSON object");
    else
        rc = parse_fields(root, h, err, errlen);
    json_decref(root);
    return rc;
}

static const char *color_name(enum mh_os_color c)
{
    return c == MH_OS_GREEN ? "green" : c == MH_OS_YELLOW ? "yellow" : "red";
}

/* "cluster NAME, 3 nodes (2 data), 12 active shards, 1 unassigned", leaving out what is unknown. */
static void summary(const struct mh_os_health *h, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (n < outlen) {                                                                          \
            int k = snprintf(out + n, outlen - n, __VA_ARGS__);                                    \
            n += k > 0 ? (size_t)k : 0;                                                            \
        }                                                                                          \
    } while (0)
    ADD("cluster %s", h->cluster_name[0] ? h->cluster_name : "(unnamed)");
    if (h->nodes >= 0)
        ADD(", %lld node%s", (long long)h->nodes, h->nodes == 1 ? "" : "s");
    if (h->nodes >= 0 && h->data_nodes >= 0)
        ADD(" (%lld data)", (long long)h->data_nodes);
    if (h->active_shards >= 0)
        ADD(", %lld active shards", (long long)h->active_shards);
    if (h->unassigned_shards >= 0)
        ADD(", %lld unassigned", (long long)h->unassigned_shards);
    if (h->initializing_shards > 0)
        ADD(", %lld initializing", (long long)h->initializing_shards);
#undef ADD
}

enum mh_status mh_os_health_assess(const struct mh_os_health *h, enum mh_status yellow, char *why,
                                   size_t whylen)
{
    char sum[160];
    summary(h, sum, sizeof sum);
    if (h->timed_out) {
        snprintf(why, whylen, "timed out: the cluster did not complete the health request (%s; %s)",
                 color_name(h->color), sum);
        return MH_FAIL;
    }
    switch (h->color) {
    case MH_OS_GREEN:
        snprintf(why, whylen, "green: %s", sum);
        return MH_PASS;
    case MH_OS_YELLOW:
        snprintf(why, whylen, "yellow: replica shards unassigned; %s", sum);
        return yellow;
    case MH_OS_RED:
    default:
        snprintf(why, whylen, "red: primary shards unassigned, searches miss data; %s", sum);
        return MH_FAIL;
    }
}

/* {"error":{"type":T,"reason":R}} -> "T: R"; {"error":"text"} -> "text". */
static bool error_member(json_t *root, char *out, size_t outlen)
{
    json_t *e = json_object_get(root, "error");
    if (json_is_string(e)) {
        copy_text(out, outlen, json_string_value(e), json_string_length(e));
        return true;
    }
    if (!json_is_object(e))
        return false;
    json_t *type = json_object_get(e, "type"), *reason = json_object_get(e, "reason");
    const char *t = json_is_string(type) ? json_string_value(type) : NULL;
    const char *r = json_is_string(reason) ? json_string_value(reason) : NULL;
    if (!t && !r)
        return false;
    snprintf(out, outlen, "%s%s%s", t ? t : "", t && r ? ": " : "", r ? r : "");
    return true;
}

static bool message_member(json_t *root, char *out, size_t outlen)
{
    static const char *const keys[] = {"message", "Message"};
    for (size_t i = 0; i < 2; i++) {
        json_t *m = json_object_get(root, keys[i]);
        if (json_is_string(m)) {
            copy_text(out, outlen, json_string_value(m), json_string_length(m));
            return true;
        }
    }
    return false;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* The first line with anything but white space in it, trimmed. */
static void first_line(const char *body, size_t len, char *out, size_t outlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && is_space(body[i]))
            i++;
        size_t start = i;
        while (i < len && body[i] != '\n' && body[i] != '\r' && body[i] != '\0')
            i++;
        size_t end = i;
        while (end > start && is_space(body[end - 1]))
            end--;
        if (end > start) {
            copy_text(out, outlen, body + start, end - start);
            return;
        }
        if (i < len && body[i] == '\0')
            break;
    }
}

void mh_os_error_reason(const char *body, size_t len, char *out, size_t outlen)
{
    if (outlen == 0)
        return;
    out[0] = '\0';
    json_t *root = json_loadb(body, len, 0, NULL);
    bool done = false;
    if (json_is_object(root))
        done = error_member(root, out, outlen) || message_member(root, out, outlen);
    json_decref(root);
    if (!done)
        first_line(body, len, out, outlen);
}
