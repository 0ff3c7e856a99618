/* fuzz_fcgi_decode.c - libFuzzer target for the FastCGI reply decoder and the CGI header parser.
 *
 * The decoder reads what php-fpm (or whatever listens on the configured socket) sends, so it
 * must hold any byte stream to its bounds. The first input byte picks a chunk size, so the
 * incremental paths (a header or a body split across reads) are exercised; the result must match
 * decoding the same bytes in one call. */
#include "mh_fcgi.h"

#include <stdlib.h>
#include <string.h>

static char whole_out[MH_FCGI_RESPONSE_MAX + 1];
static char chunk_out[MH_FCGI_RESPONSE_MAX + 1];

static void check_invariants(const struct mh_fcgi_decoder *d)
{
    if (d->out_len >= d->out_cap || d->out[d->out_len] != '\0')
        abort();
    if (d->total > MH_FCGI_RESPONSE_MAX || d->err_len > MH_FCGI_STDERR_MAX)
        abort();
    if (d->err[d->err_len] != '\0')
        abort();
}

/* Feeds `len` bytes `step` at a time, as successive reads would. */
static int decode_in_steps(struct mh_fcgi_decoder *d, const uint8_t *in, size_t len, size_t step)
{
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0; off += step) {
        size_t n = len - off < step ? len - off : step;
        size_t used = 0;
        rc = mh_fcgi_decode(d, in + off, n, &used);
        if (used > n || (rc == 0 && used != n))
            abort();
    }
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;

    struct mh_fcgi_decoder whole, chunked;
    mh_fcgi_decoder_init(&whole, 1, whole_out, sizeof whole_out);
    mh_fcgi_decoder_init(&chunked, 1, chunk_out, sizeof chunk_out);
    int rc_whole = mh_fcgi_decode(&whole, data, size, NULL);
    int rc_chunked = decode_in_steps(&chunked, data, size, step);
    check_invariants(&whole);
    check_invariants(&chunked);
    if (rc_whole != rc_chunked || whole.out_len != chunked.out_len ||
        memcmp(whole_out, chunk_out, whole.out_len) != 0)
        abort();

    if (rc_whole == 1) {
        struct mh_fcgi_cgi cgi;
        const char *why = NULL;
        if (mh_fcgi_parse_cgi(whole.out, whole.out_len, &cgi, &why) == 0) {
            if (cgi.body < whole.out || cgi.body + cgi.body_len != whole.out + whole.out_len)
                abort();
            if (cgi.status < 100 || cgi.status > 599)
                abort();
        } else if (!why) {
            abort();
        }
    }
    return 0;
}
