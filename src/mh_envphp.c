/* mh_envphp.c - the bounded reader of Magento's env.php array literal. See mh_envphp.h.
 *
 * A hand-written recursive-descent parser over a byte buffer with a line/column cursor. The
 * recursion depth is capped (MH_ENVPHP_MAX_DEPTH), so is every string and the number of values;
 * the caller caps the file size. The first error stops the parse and is the one reported. */
#include "mh_envphp.h"
#include "mh_utf8.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct parser {
    const char *p, *end;
    int line;
    const char *line_start;
    const char *name;
    char *err;
    size_t errlen;
    bool failed;
    int depth;
    long items;
};

static int perr(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *ps, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    ps->failed = true;
    int col = (int)(ps->p - ps->line_start) + 1;
    int n = snprintf(ps->err, ps->errlen, "%s:%d:%d: ", ps->name, ps->line, col);
    if (n >= 0 && (size_t)n < ps->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

const char *mh_php_type_name(enum mh_php_type t)
{
    static const char *const names[] = {"null", "bool", "int", "float", "string", "array"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

/* ---- the tree ---- */

void mh_php_free(struct mh_php_node *n)
{
    if (!n)
        return;
    for (int i = 0; i < n->n_items; i++) {
        free(n->items[i].key);
        mh_php_free(n->items[i].value);
    }
    free(n->items);
    if (n->s) {
        explicit_bzero(n->s, n->len); /* may be a password */
        free(n->s);
    }
    free(n);
}

static struct mh_php_node *new_node(struct parser *ps, enum mh_php_type type, int line)
{
    if (++ps->items > MH_ENVPHP_MAX_ITEMS) {
        perr(ps, "more than %d values", MH_ENVPHP_MAX_ITEMS);
        return NULL;
    }
    struct mh_php_node *n = calloc(1, sizeof *n);
    if (!n) {
        perr(ps, "out of memory");
        return NULL;
    }
    n->type = type;
    n->line = line;
    return n;
}

/* Takes ownership of `key` and `value` (freed on failure). */
static int add_entry(struct parser *ps, struct mh_php_node *arr, char *key,
                     struct mh_php_node *value)
{
    if (arr->n_items == arr->cap_items) {
        int cap = arr->cap_items ? arr->cap_items * 2 : 8;
        struct mh_php_entry *items = realloc(arr->items, (size_t)cap * sizeof *items);
        if (!items) {
            free(key);
            mh_php_free(value);
            return perr(ps, "out of memory");
        }
        arr->items = items;
        arr->cap_items = cap;
    }
    arr->items[arr->n_items].key = key;
    arr->items[arr->n_items].value = value;
    arr->n_items++;
    return 0;
}

const struct mh_php_node *mh_php_child(const struct mh_php_node *n, const char *key)
{
    if (!n || n->type != MH_PHP_ARRAY)
        return NULL;
    for (int i = n->n_items - 1; i >= 0; i--)
        if (strcmp(n->items[i].key, key) == 0)
            return n->items[i].value;
    return NULL;
}

const struct mh_php_node *mh_php_get(const struct mh_php_node *n, const char *path)
{
    char key[256];
    while (n && *path) {
        size_t k = strcspn(path, ".");
        if (k >= sizeof key)
            return NULL;
        memcpy(key, path, k);
        key[k] = '\0';
        n = mh_php_child(n, key);
        path += k + (path[k] == '.');
    }
    return n;
}

const char *mh_php_scalar(const struct mh_php_node *n, char *out, size_t outlen)
{
    int r;
    switch (n ? n->type : MH_PHP_ARRAY) {
    case MH_PHP_NULL:
        r = snprintf(out, outlen, "%s", "");
        break;
    case MH_PHP_BOOL:
        r = snprintf(out, outlen, "%s", n->b ? "1" : "");
        break;
    case MH_PHP_INT:
        r = snprintf(out, outlen, "%lld", n->i);
        break;
    case MH_PHP_FLOAT:
        r = snprintf(out, outlen, "%.17g", n->f);
        break;
    case MH_PHP_STRING:
        r = snprintf(out, outlen, "%s", n->s);
        break;
    default:
        return NULL;
    }
    return r >= 0 && (size_t)r < outlen ? out : NULL;
}

/* ---- the lexer ---- */

static void advance(struct parser *ps)
{
    if (*ps->p == '\n') {
        ps->line++;
        ps->line_start = ps->p + 1;
    }
    ps->p++;
}

static bool at(struct parser *ps, const char *s)
{
    size_t n = strlen(s);
    return (size_t)(ps->end - ps->p) >= n && memcmp(ps->p, s, n) == 0;
}

/* Skips blanks and comments. */
static int skip_space(struct parser *ps)
{
    while (ps->p < ps->end) {
        unsigned char c = (unsigned char)*ps->p;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            advance(ps);
        } else if (c == '#' || at(ps, "//")) {
            while (ps->p < ps->end && *ps->p != '\n')
                advance(ps);
        } else if (at(ps, "/*")) {
            const char *start = ps->p;
            int line = ps->line;
            const char *ls = ps->line_start;
            ps->p += 2;
            while (ps->p < ps->end && !at(ps, "*/"))
                advance(ps);
            if (ps->p >= ps->end) {
                ps->p = start;
                ps->line = line;
                ps->line_start = ls;
                return perr(ps, "unterminated /* comment (truncated?)");
            }
            ps->p += 2;
        } else {
            break;
        }
    }
    return 0;
}

static bool ident_char(int c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

/* Copies the identifier at the cursor (without moving it) for messages. */
static void peek_word(struct parser *ps, char *out, size_t outlen)
{
    size_t n = 0;
    const char *q = ps->p;
    while (q < ps->end && n + 1 < outlen && ident_char((unsigned char)*q) &&
           (unsigned char)*q < 0x80)
        out[n++] = *q++;
    out[n] = '\0';
}

static int not_literal(struct parser *ps, const char *what)
{
    return perr(ps, "a PHP expression (%s) is not a literal; use env_php_reader = php", what);
}

/* ---- strings ---- */

struct sbuf {
    char *s;
    size_t len, cap;
};

static int sb_put(struct parser *ps, struct sbuf *b, const char *data, size_t n)
{
    if (b->len + n > MH_ENVPHP_MAX_STRING)
        return perr(ps, "string longer than %d bytes", MH_ENVPHP_MAX_STRING);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return perr(ps, "out of memory");
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

static int sb_utf8(struct parser *ps, struct sbuf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else if (cp <= 0x10FFFF) {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    } else {
        return perr(ps, "\\u{...} escape beyond U+10FFFF");
    }
    return sb_put(ps, b, u, n);
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* One escape in a double-quoted string; the cursor is on the backslash. */
static int dq_escape(struct parser *ps, struct sbuf *b)
{
    const char *q = ps->p + 1;
    if (q >= ps->end)
        return sb_put(ps, b, "\\", 1) < 0 ? -1 : (advance(ps), 0);
    static const char simple_from[] = "ntrvef\\$\"";
    static const char simple_to[] = "\n\t\r\v\x1b\f\\$\"";
    const char *hit = strchr(simple_from, *q);
    if (hit && *q) {
        ps->p += 2;
        return sb_put(ps, b, &simple_to[hit - simple_from], 1);
    }
    if (*q >= '0' && *q <= '7') {
        unsigned v = 0;
        int k = 0;
        for (; k < 3 && q + k < ps->end && q[k] >= '0' && q[k] <= '7'; k++)
            v = v * 8 + (unsigned)(q[k] - '0');
        ps->p += 1 + k;
        char c = (char)(v & 0xFF);
        return sb_put(ps, b, &c, 1);
    }
    if (*q == 'x' && q + 1 < ps->end && hexval((unsigned char)q[1]) >= 0) {
        unsigned v = (unsigned)hexval((unsigned char)q[1]);
        int k = 1;
        if (q + 2 < ps->end && hexval((unsigned char)q[2]) >= 0)
            v = v * 16 + (unsigned)hexval((unsigned char)q[2]), k = 2;
        ps->p += 2 + k;
        char c = (char)v;
        return sb_put(ps, b, &c, 1);
    }
    if (*q == 'u' && q + 1 < ps->end && q[1] == '{') {
        unsigned long cp = 0;
        const char *r = q + 2;
        int digits = 0;
        for (; r < ps->end && hexval((unsigned char)*r) >= 0 && digits < 8; r++, digits++)
            cp = cp * 16 + (unsigned long)hexval((unsigned char)*r);
        if (digits == 0 || r >= ps->end || *r != '}')
            return perr(ps, "invalid \\u{...} escape");
        ps->p = r + 1;
        return sb_utf8(ps, b, cp);
    }
    /* Any other backslash stays as written, as in PHP. */
    advance(ps);
    return sb_put(ps, b, "\\", 1);
}

/* A quoted string; the cursor is on the opening quote. Fills `b`. */
static int parse_quoted(struct parser *ps, struct sbuf *b)
{
    char quote = *ps->p;
    const char *open = ps->p;
    int line = ps->line;
    const char *ls = ps->line_start;
    advance(ps);
    while (ps->p < ps->end && *ps->p != quote) {
        if (*ps->p == '\\' && quote == '\'') {
            if (ps->p + 1 < ps->end && (ps->p[1] == '\\' || ps->p[1] == '\'')) {
                if (sb_put(ps, b, ps->p + 1, 1) < 0)
                    return -1;
                ps->p += 2;
                continue;
            }
        } else if (*ps->p == '\\') {
            if (dq_escape(ps, b) < 0)
                return -1;
            continue;
        } else if (*ps->p == '$' && quote == '"' && ps->p + 1 < ps->end &&
                   (ident_char((unsigned char)ps->p[1]) || ps->p[1] == '{') &&
                   !isdigit((unsigned char)ps->p[1])) {
            return not_literal(ps, "variable in a string");
        } else if (*ps->p == '{' && quote == '"' && ps->p + 1 < ps->end && ps->p[1] == '$') {
            return not_literal(ps, "variable in a string");
        }
        if (sb_put(ps, b, ps->p, 1) < 0)
            return -1;
        advance(ps);
    }
    if (ps->p >= ps->end) {
        ps->p = open;
        ps->line = line;
        ps->line_start = ls;
        return perr(ps, "unterminated string (truncated?)");
    }
    advance(ps);
    if (b->len && memchr(b->s, '\0', b->len)) {
        ps->p = open, ps->line = line, ps->line_start = ls;
        return perr(ps, "string holds a NUL byte");
    }
    if (!mh_utf8_valid(b->s ? b->s : "", b->len)) {
        ps->p = open, ps->line = line, ps->line_start = ls;
        return perr(ps, "string is not valid UTF-8");
    }
    if (!b->s && sb_put(ps, b, "", 0) < 0)
        return -1;
    return 0;
}

/* ---- values ---- */

static struct mh_php_node *parse_value(struct parser *ps);

static struct mh_php_node *parse_number(struct parser *ps)
{
    char buf[80];
    size_t n = 0;
    int line = ps->line;
    const char *start = ps->p;
    if (*ps->p == '-' || *ps->p == '+')
        buf[n++] = *ps->p++;
    while (ps->p < ps->end && n + 1 < sizeof buf &&
           (isalnum((unsigned char)*ps->p) || *ps->p == '.' || *ps->p == '_' ||
            ((*ps->p == '-' || *ps->p == '+') && (ps->p[-1] == 'e' || ps->p[-1] == 'E')))) {
        if (*ps->p != '_')
            buf[n++] = *ps->p;
        ps->p++;
    }
    buf[n] = '\0';
    const char *digits = buf + (buf[0] == '-' || buf[0] == '+');
    bool neg = buf[0] == '-';
    char *endp;
    errno = 0;
    bool hexbin = digits[0] == '0' && strchr("xXbBoO", digits[1] ? digits[1] : '\x01');
    bool isfloat = !hexbin && strpbrk(digits, ".eE") != NULL;
    struct mh_php_node *node;
    if (!isdigit((unsigned char)digits[0]) && digits[0] != '.') {
        ps->p = start;
        perr(ps, "expected a value");
        return NULL;
    }
    if (isfloat) {
        double f = strtod(digits, &endp);
        if (*endp || !isfinite(f))
            goto bad;
        if (!(node = new_node(ps, MH_PHP_FLOAT, line)))
            return NULL;
        node->f = neg ? -f : f;
        return node;
    }
    int base = 10;
    const char *d = digits;
    if (hexbin) {
        base = strchr("xX", digits[1]) ? 16 : strchr("bB", digits[1]) ? 2 : 8;
        d = digits + 2;
    } else if (digits[0] == '0' && digits[1]) {
        base = 8;
    }
    if (!*d || *d == '-' || *d == '+')
        goto bad;
    unsigned long long v = strtoull(d, &endp, base);
    if (*endp)
        goto bad;
    if (errno == ERANGE || v > (unsigned long long)9223372036854775807ULL + neg) {
        /* PHP turns an integer that overflows into a float. */
        if (!(node = new_node(ps, MH_PHP_FLOAT, line)))
            return NULL;
        node->f = neg ? -(double)v : (double)v;
        return node;
    }
    if (!(node = new_node(ps, MH_PHP_INT, line)))
        return NULL;
    node->i = neg ? (long long)(0 - v) : (long long)v;
    return node;
bad:
    ps->p = start;
    perr(ps, "invalid number"); /* not quoted: it may be a password written without quotes */
    return NULL;
}

static bool word_is(const char *w, const char *s)
{
    return strcasecmp(w, s) == 0;
}

static struct mh_php_node *parse_array(struct parser *ps, char close);

/* A bare word: true, false, null, array(...); anything else is an expression. */
static struct mh_php_node *parse_word(struct parser *ps)
{
    char w[48];
    peek_word(ps, w, sizeof w);
    int line = ps->line;
    if (word_is(w, "true") || word_is(w, "false") || word_is(w, "null")) {
        const char *save = ps->p;
        ps->p += strlen(w);
        if (ps->p < ps->end && (ident_char((unsigned char)*ps->p) || *ps->p == '(' ||
                                *ps->p == ':' || *ps->p == '\\')) {
            ps->p = save;
            goto expr;
        }
        struct mh_php_node *n = new_node(ps, word_is(w, "null") ? MH_PHP_NULL : MH_PHP_BOOL, line);
        if (n)
            n->b = word_is(w, "true");
        return n;
    }
    if (word_is(w, "array")) {
        const char *save = ps->p;
        int sl = ps->line;
        const char *sls = ps->line_start;
        ps->p += 5;
        if (skip_space(ps) < 0)
            return NULL;
        if (ps->p < ps->end && *ps->p == '(') {
            advance(ps);
            return parse_array(ps, ')');
        }
        ps->p = save, ps->line = sl, ps->line_start = sls;
    }
expr:
    /* A function or class is named (getenv); any other bare word is not echoed: PHP would take
     * it for a constant, but it may well be a password someone forgot to quote. */
    {
        const char *q = ps->p + strlen(w);
        while (q < ps->end && (*q == ' ' || *q == '\t'))
            q++;
        if (!w[0] || !(q < ps->end && (*q == '(' || *q == ':' || *q == '\\')))
            snprintf(w, sizeof w, "%s", "a constant or bare word");
    }
    not_literal(ps, w);
    return NULL;
}

static struct mh_php_node *parse_string_node(struct parser *ps)
{
    struct sbuf b = {0};
    int line = ps->line;
    if (parse_quoted(ps, &b) < 0) {
        if (b.s)
            explicit_bzero(b.s, b.len);
        free(b.s);
        return NULL;
    }
    struct mh_php_node *n = new_node(ps, MH_PHP_STRING, line);
    if (!n) {
        explicit_bzero(b.s, b.len);
        free(b.s);
        return NULL;
    }
    n->s = b.s;
    n->len = b.len;
    return n;
}

static struct mh_php_node *parse_value(struct parser *ps)
{
    if (skip_space(ps) < 0)
        return NULL;
    if (ps->p >= ps->end) {
        perr(ps, "unexpected end of file (truncated?)");
        return NULL;
    }
    unsigned char c = (unsigned char)*ps->p;
    if (c == '[') {
        advance(ps);
        return parse_array(ps, ']');
    }
    if (c == '\'' || c == '"')
        return parse_string_node(ps);
    if (isdigit(c) || c == '-' || c == '+' || c == '.')
        return parse_number(ps);
    if (isalpha(c) || c == '_' || c == '\\')
        return parse_word(ps);
    if (c == '$') {
        not_literal(ps, "a variable");
        return NULL;
    }
    if (at(ps, "<<<")) {
        not_literal(ps, "heredoc");
        return NULL;
    }
    if (c == '(') {
        not_literal(ps, "parentheses");
        return NULL;
    }
    if (c >= 0x20 && c < 0x7f)
        perr(ps, "expected a value, found '%c'", c);
    else
        perr(ps, "expected a value, found byte 0x%02x", c);
    return NULL;
}

/* After a value: what an unexpected character means. */
static int after_value_error(struct parser *ps, char close)
{
    if (ps->p >= ps->end)
        return perr(ps, "unexpected end of file (truncated?)");
    unsigned char c = (unsigned char)*ps->p;
    if (c == '.')
        return not_literal(ps, "concatenation");
    if (c == '?' || c == ':')
        return not_literal(ps, "conditional");
    if (strchr("+-*/%|&^<>!=(", c))
        return not_literal(ps, "an operator");
    if (c >= 0x20 && c < 0x7f)
        return perr(ps, "expected ',' or '%c', found '%c'", close, c);
    return perr(ps, "expected ',' or '%c', found byte 0x%02x", close, c);
}

/* The key of `key => value`, from a scalar node; next_index for auto-keys. */
static char *key_of(struct parser *ps, struct mh_php_node *k, long long *next_index)
{
    char buf[64];
    if (k->type == MH_PHP_STRING) {
        /* PHP casts a decimal integer string key to an integer. */
        char *endp;
        errno = 0;
        long long v = strtoll(k->s, &endp, 10);
        if (k->s[0] && !*endp && errno == 0 && isdigit((unsigned char)k->s[k->s[0] == '-']) &&
            (k->s[0] != '0' || !k->s[1]) && v >= *next_index && v < 9223372036854775807LL)
            *next_index = v + 1;
        char *s = strdup(k->s);
        if (!s)
            perr(ps, "out of memory");
        return s;
    }
    long long v;
    if (k->type == MH_PHP_INT)
        v = k->i;
    else if (k->type == MH_PHP_BOOL)
        v = k->b;
    else if (k->type == MH_PHP_FLOAT && k->f > -9.2e18 && k->f < 9.2e18)
        v = (long long)k->f;
    else if (k->type == MH_PHP_FLOAT) {
        perr(ps, "a number out of range as a key");
        return NULL;
    } else if (k->type == MH_PHP_NULL) {
        char *s = strdup("");
        if (!s)
            perr(ps, "out of memory");
        return s;
    } else {
        perr(ps, "an array cannot be a key");
        return NULL;
    }
    if (v >= *next_index && v < 9223372036854775807LL)
        *next_index = v + 1;
    snprintf(buf, sizeof buf, "%lld", v);
    char *s = strdup(buf);
    if (!s)
        perr(ps, "out of memory");
    return s;
}

static struct mh_php_node *parse_array(struct parser *ps, char close)
{
    int line = ps->line;
    if (++ps->depth > MH_ENVPHP_MAX_DEPTH) {
        perr(ps, "arrays nested deeper than %d", MH_ENVPHP_MAX_DEPTH);
        return NULL;
    }
    struct mh_php_node *arr = new_node(ps, MH_PHP_ARRAY, line);
    if (!arr)
        return NULL;
    long long next_index = 0;
    for (;;) {
        if (skip_space(ps) < 0)
            goto fail;
        if (ps->p < ps->end && *ps->p == close) {
            advance(ps);
            break;
        }
        struct mh_php_node *v = parse_value(ps);
        if (!v)
            goto fail;
        if (skip_space(ps) < 0) {
            mh_php_free(v);
            goto fail;
        }
        char *key;
        if (at(ps, "=>")) {
            ps->p += 2;
            key = key_of(ps, v, &next_index);
            mh_php_free(v);
            if (!key)
                goto fail;
            v = parse_value(ps);
            if (!v || skip_space(ps) < 0) {
                free(key);
                mh_php_free(v);
                goto fail;
            }
        } else {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", next_index++);
            if (!(key = strdup(buf))) {
                mh_php_free(v);
                perr(ps, "out of memory");
                goto fail;
            }
        }
        if (add_entry(ps, arr, key, v) < 0)
            goto fail;
        if (ps->p < ps->end && *ps->p == ',') {
            advance(ps);
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            advance(ps);
            break;
        }
        after_value_error(ps, close);
        goto fail;
    }
    ps->depth--;
    return arr;
fail:
    mh_php_free(arr);
    return NULL;
}

/* `<?php`, then `return VALUE;`, then nothing but blanks, comments and an optional `?>`. */
static struct mh_php_node *parse_file(struct parser *ps)
{
    if (at(ps, "\xEF\xBB\xBF"))
        ps->p += 3;
    if ((size_t)(ps->end - ps->p) < 5 || strncasecmp(ps->p, "<?php", 5) != 0) {
        perr(ps, "expected \"<?php\" at the start");
        return NULL;
    }
    ps->p += 5;
    if (skip_space(ps) < 0)
        return NULL;
    char w[16];
    peek_word(ps, w, sizeof w);
    if (!word_is(w, "return")) {
        if (ps->p >= ps->end)
            perr(ps, "unexpected end of file (truncated?)");
        else if (w[0])
            not_literal(ps, w);
        else
            perr(ps, "expected \"return [\" (a PHP statement is not a literal; use env_php_reader "
                     "= php)");
        return NULL;
    }
    ps->p += 6;
    struct mh_php_node *root = parse_value(ps);
    if (!root)
        return NULL;
    if (root->type != MH_PHP_ARRAY) {
        mh_php_free(root);
        perr(ps, "env.php must return an array");
        return NULL;
    }
    if (skip_space(ps) < 0)
        goto fail;
    if (ps->p >= ps->end) {
        perr(ps, "missing ';' after the array (truncated?)");
        goto fail;
    }
    if (*ps->p != ';') {
        after_value_error(ps, ';');
        goto fail;
    }
    advance(ps);
    if (skip_space(ps) < 0)
        goto fail;
    if (at(ps, "?>")) {
        ps->p += 2;
        while (ps->p < ps->end && isspace((unsigned char)*ps->p))
            advance(ps);
    }
    if (ps->p < ps->end) {
        perr(ps, "unexpected text after the returned array");
        goto fail;
    }
    return root;
fail:
    mh_php_free(root);
    return NULL;
}

/* A parser at the start of buf, with err cleared. */
static struct parser parser_start(const char *buf, size_t len, const char *name, char *err,
                                  size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    return (struct parser){.p = buf,
                           .end = buf + len,
                           .line = 1,
                           .line_start = buf,
                           .name = name,
                           .err = err,
                           .errlen = errlen};
}

struct mh_php_node *mh_envphp_parse(const char *buf, size_t len, const char *name, char *err,
                                    size_t errlen)
{
    struct parser ps = parser_start(buf, len, name, err, errlen);
    if (len > MH_ENVPHP_MAX_FILE) {
        snprintf(err, errlen, "%s: larger than %d bytes", name, MH_ENVPHP_MAX_FILE);
        return NULL;
    }
    return parse_file(&ps);
}

/* ---- PHP's JSON output ---- */

static struct mh_php_node *from_json(struct parser *ps, json_t *j, int depth)
{
    if (depth > MH_ENVPHP_MAX_DEPTH) {
        perr(ps, "arrays nested deeper than %d", MH_ENVPHP_MAX_DEPTH);
        return NULL;
    }
    struct mh_php_node *n;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        if (!(n = new_node(ps, MH_PHP_ARRAY, 0)))
            return NULL;
        size_t count = json_is_object(j) ? json_object_size(j) : json_array_size(j);
        void *iter = json_is_object(j) ? json_object_iter(j) : NULL;
        for (size_t i = 0; i < count; i++) {
            char idx[32];
            const char *k = idx;
            json_t *v;
            if (iter) {
                k = json_object_iter_key(iter);
                v = json_object_iter_value(iter);
                iter = json_object_iter_next(j, iter);
            } else {
                snprintf(idx, sizeof idx, "%zu", i);
                v = json_array_get(j, i);
            }
            char *key = strdup(k);
            struct mh_php_node *c = key ? from_json(ps, v, depth + 1) : NULL;
            if (!key)
                perr(ps, "out of memory");
            if (!c || add_entry(ps, n, key, c) < 0) {
                if (!c)
                    free(key);
                mh_php_free(n);
                return NULL;
            }
        }
        return n;
    }
    case JSON_STRING:
        if (json_string_length(j) > MH_ENVPHP_MAX_STRING ||
            memchr(json_string_value(j), '\0', json_string_length(j))) {
            perr(ps, "string too long or holding a NUL byte");
            return NULL;
        }
        if (!(n = new_node(ps, MH_PHP_STRING, 0)))
            return NULL;
        n->len = json_string_length(j);
        if (!(n->s = strdup(json_string_value(j)))) {
            mh_php_free(n);
            perr(ps, "out of memory");
            return NULL;
        }
        return n;
    case JSON_INTEGER:
        if ((n = new_node(ps, MH_PHP_INT, 0)))
            n->i = (long long)json_integer_value(j);
        return n;
    case JSON_REAL:
        if ((n = new_node(ps, MH_PHP_FLOAT, 0)))
            n->f = json_real_value(j);
        return n;
    case JSON_TRUE:
    case JSON_FALSE:
        if ((n = new_node(ps, MH_PHP_BOOL, 0)))
            n->b = json_is_true(j);
        return n;
    default:
        return new_node(ps, MH_PHP_NULL, 0);
    }
}

struct mh_php_node *mh_envphp_parse_json(const char *buf, size_t len, const char *name, char *err,
                                         size_t errlen)
{
    struct parser ps = parser_start(buf, len, name, err, errlen);
    json_error_t je;
    /* JSON_DECODE_ANY: PHP prints `false` when include failed. Depth: jansson has its own cap. */
    json_t *j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j) {
        /* je.text may quote the output, which holds passwords: only the position. */
        snprintf(err, errlen, "%s: PHP printed no valid JSON (at byte %d)", name, je.position);
        return NULL;
    }
    struct mh_php_node *root = NULL;
    if (!json_is_object(j) && !json_is_array(j))
        snprintf(err, errlen, "%s: does not return an array", name);
    else
        root = from_json(&ps, j, 1);
    json_decref(j);
    if (root && root->type != MH_PHP_ARRAY) {
        mh_php_free(root);
        root = NULL;
    }
    return root;
}
