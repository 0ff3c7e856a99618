/* mh_utf8.h - making outside text (a server's reply, a path, a cut made by byte count) valid
 * UTF-8, which JSON requires and jansson enforces. Pure functions; unit-tested in test_utf8.c.
 *
 * The rule: a well-formed character (RFC 3629: shortest form, no surrogates, at most U+10FFFF)
 * is copied as is; every other byte becomes U+FFFD, and decoding resumes at the next byte. So
 * Latin-1 "caf\xe9" reads "caf\uFFFD", and a sequence cut short turns into one U+FFFD per byte. */
#ifndef MH_UTF8_H
#define MH_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1 to 4) of the well-formed character that starts `s`, reading at most `n` bytes; 0 when
 * the bytes there do not start one (or n is 0). */
size_t mh_utf8_char_len(const char *s, size_t n);

/* True when the `n` bytes at `s` are well-formed UTF-8 (NUL bytes included). */
bool mh_utf8_valid(const char *s, size_t n);

/* Copies the first `srclen` bytes of `src`, up to a NUL, into `dst` (`dstsize` >= 1 bytes, always
 * NUL-terminated) as valid UTF-8, following the rule above. When `dst` is too small, the copy
 * stops before the first character (or U+FFFD) that does not fit whole, never inside one. Returns
 * the length written. `dst` and `src` must not overlap. */
size_t mh_utf8_clean(char *dst, size_t dstsize, const char *src, size_t srclen);

#endif
