/* aws_credentials.c - AWS access keys from a shared credentials file or the environment. See
 * mh_aws_credentials.h.
 *
 * Only what the opensearch check's SigV4 signing needs: static keys and a session token. A
 * credential_process, SSO, role_arn/source_profile (assume-role) or the instance metadata service
 * are not followed; the file must hold the keys themselves. */
#include "mh_aws_credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Printable ASCII without spaces: nothing that could break a header or a log line. */
static bool valid_value(const char *v, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return false;
    return true;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

/* One line, [start, end), without its surrounding blanks. */
static void trim(const char **start, const char **end)
{
    while (*start < *end && is_blank(**start))
        (*start)++;
    while (*end > *start && is_blank((*end)[-1]))
        (*end)--;
}

/* Is the section header line "[NAME]" or "[profile NAME]" for `profile`? */
static bool header_names(const char *s, const char *e, const char *profile)
{
    s++; /* '[' */
    if (e <= s || e[-1] != ']')
        return false;
    e--;
    trim(&s, &e);
    if ((size_t)(e - s) > 8 && strncmp(s, "profile ", 8) == 0) {
        s += 8;
        trim(&s, &e);
    }
    size_t n = strlen(profile);
    return (size_t)(e - s) == n && strncmp(s, profile, n) == 0;
}

struct field {
    const char *key;
    char *out;
    size_t cap;
    bool seen;
};

/* Stores `value` into the field named `key`, if it is one of ours. */
static int take_value(struct field *fields, size_t nf, const char *key, size_t klen,
                      const char *value, size_t vlen, const char *profile, char *err, size_t errlen)
{
    for (size_t i = 0; i < nf; i++) {
        if (strlen(fields[i].key) != klen || strncasecmp(fields[i].key, key, klen) != 0)
            continue;
        if (vlen >= fields[i].cap) {
            snprintf(err, errlen, "profile %s: %s is too long", profile, fields[i].key);
            return -1;
        }
        if (!valid_value(value, vlen)) {
            snprintf(err, errlen, "profile %s: %s is empty or has spaces or control characters",
                     profile, fields[i].key);
            return -1;
        }
        memcpy(fields[i].out, value, vlen);
        fields[i].out[vlen] = '\0';
        fields[i].seen = true;
        return 0;
    }
    return 0;
}

/* A "key = value" line inside the profile. Lines without '=' are ignored. */
static int parse_pair(struct field *fields, size_t nf, const char *s, const char *e,
                      const char *profile, char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq)
        return 0;
    const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    return take_value(fields, nf, ks, (size_t)(ke - ks), vs, (size_t)(ve - vs), profile, err,
                      errlen);
}

int mh_aws_credentials_parse(const char *text, size_t len, const char *profile,
                             struct mh_aws_credentials *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct field fields[] = {
        {"aws_access_key_id", out->access_key_id, sizeof out->access_key_id, false},
        {"aws_secret_access_key", out->secret_access_key, sizeof out->secret_access_key, false},
        {"aws_session_token", out->session_token, sizeof out->session_token, false},
    };
    const size_t nf = sizeof fields / sizeof fields[0];
    bool in_profile = false, found = false;
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *s = p, *e = nl ? nl : end;
        p = nl ? nl + 1 : end;
        trim(&s, &e);
        if (s == e || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            in_profile = header_names(s, e, profile);
            found = found || in_profile;
        } else if (in_profile && parse_pair(fields, nf, s, e, profile, err, errlen) < 0) {
            mh_aws_credentials_wipe(out);
            return -1;
        }
    }
    const char *missing = !found            ? "the profile"
                          : !fields[0].seen ? "aws_access_key_id"
                          : !fields[1].seen ? "aws_secret_access_key"
                                            : NULL;
    if (missing) {
        snprintf(err, errlen, "profile %s: %s is missing", profile, missing);
        mh_aws_credentials_wipe(out);
        return -1;
    }
    return 0;
}

static int env_value(const char *name, char *out, size_t cap, bool required, char *err,
                     size_t errlen)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        if (required)
            snprintf(err, errlen, "%s is not set", name);
        return required ? -1 : 0;
    }
    size_t n = strlen(v);
    if (n >= cap || !valid_value(v, n)) {
        snprintf(err, errlen, "%s is too long or has spaces or control characters", name);
        return -1;
    }
    memcpy(out, v, n + 1);
    return 0;
}

int mh_aws_credentials_from_env(struct mh_aws_credentials *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (env_value("AWS_ACCESS_KEY_ID", out->access_key_id, sizeof out->access_key_id, true, err,
                  errlen) < 0 ||
        env_value("AWS_SECRET_ACCESS_KEY", out->secret_access_key, sizeof out->secret_access_key,
                  true, err, errlen) < 0 ||
        env_value("AWS_SESSION_TOKEN", out->session_token, sizeof out->session_token, false, err,
                  errlen) < 0) {
        mh_aws_credentials_wipe(out);
        return -1;
    }
    return 0;
}

bool mh_aws_credentials_equal(const struct mh_aws_credentials *a,
                              const struct mh_aws_credentials *b)
{
    return strcmp(a->access_key_id, b->access_key_id) == 0 &&
           strcmp(a->secret_access_key, b->secret_access_key) == 0 &&
           strcmp(a->session_token, b->session_token) == 0;
}

void mh_aws_credentials_wipe(struct mh_aws_credentials *c)
{
    explicit_bzero(c, sizeof *c);
}
