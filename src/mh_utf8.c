/* mh_utf8.c - validating and cleaning UTF-8. See mh_utf8.h. */
#include "mh_utf8.h"

#include <string.h>

#define REPLACEMENT     "\xef\xbf\xbd" /* U+FFFD */
#define REPLACEMENT_LEN 3

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

size_t mh_utf8_char_len(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (n == 0)
        return 0;
    unsigned char c = u[0];
    if (c < 0x80)
        return 1;
    /* The allowed range of the second byte is what rules out overlong forms (after E0 and F0),
     * surrogates (after ED) and code points past U+10FFFF (after F4). C0, C1 and F5..FF never
     * start a character. */
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (!is_cont(u[i]))
            return 0;
    return len;
}

bool mh_utf8_valid(const char *s, size_t n)
{
    for (size_t i = 0, len; i < n; i += len)
        if ((len = mh_utf8_char_len(s + i, n - i)) == 0)
            return false;
    return true;
}

size_t mh_utf8_clean(char *dst, size_t dstsize, const char *src, size_t srclen)
{
    size_t in = 0, out = 0;
    while (in < srclen && src[in] != '\0') {
        size_t len = mh_utf8_char_len(src + in, srclen - in);
        const char *piece = len ? src + in : REPLACEMENT;
        size_t piece_len = len ? len : REPLACEMENT_LEN;
        if (out + piece_len >= dstsize)
            break; /* whole characters only */
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
        in += len ? len : 1;
    }
    dst[out] = '\0';
    return out;
}
