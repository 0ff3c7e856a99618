/* mh_fcgi.h - a minimal FastCGI client: just enough to ask PHP-FPM for its ping and status pages.
 *
 * Two layers, kept apart so the protocol can be unit-tested and fuzzed without sockets:
 *   - pure functions that encode a request (BEGIN_REQUEST, PARAMS, STDIN) into a buffer and
 *     decode the reply stream (STDOUT, STDERR, END_REQUEST) incrementally, plus a parser for the
 *     CGI headers at the start of STDOUT;
 *   - mh_fcgi_get(), one request over a unix or TCP socket, bounded as a whole (connect, write and
 *     read) by a single CLOCK_MONOTONIC deadline.
 * Nothing here allocates or prints. Every length read from the peer is checked against a fixed
 * cap before it is used. */
#ifndef MH_FCGI_H
#define MH_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MH_FCGI_VERSION      1
#define MH_FCGI_HEADER_LEN   8
#define MH_FCGI_RECORD_MAX   65535 /* contentLength is 16 bits */
#define MH_FCGI_RESPONSE_MAX 65536 /* all STDOUT and STDERR content of one reply, at most */
#define MH_FCGI_STDERR_MAX   256   /* the part of STDERR kept for error messages */
#define MH_FCGI_REQUEST_MAX  4096  /* an encoded request never needs more */
#define MH_FCGI_CTYPE_MAX    64

/* Record types (FastCGI 1.0, section 8). */
enum mh_fcgi_type {
    MH_FCGI_BEGIN_REQUEST = 1,
    MH_FCGI_ABORT_REQUEST = 2,
    MH_FCGI_END_REQUEST = 3,
    MH_FCGI_PARAMS = 4,
    MH_FCGI_STDIN = 5,
    MH_FCGI_STDOUT = 6,
    MH_FCGI_STDERR = 7,
};

#define MH_FCGI_RESPONDER 1

/* END_REQUEST protocolStatus values. */
enum mh_fcgi_protocol_status {
    MH_FCGI_REQUEST_COMPLETE = 0,
    MH_FCGI_CANT_MPX_CONN = 1,
    MH_FCGI_OVERLOADED = 2,
    MH_FCGI_UNKNOWN_ROLE = 3,
};

struct mh_fcgi_header {
    uint8_t version;
    uint8_t type;
    uint16_t request_id;
    uint16_t content_length;
    uint8_t padding_length;
};

struct mh_fcgi_param {
    const char *name;
    const char *value;
};

/* ---- Pure encoding ---- */

/* Writes the 8-byte record header. */
void mh_fcgi_header_encode(uint8_t out[MH_FCGI_HEADER_LEN], const struct mh_fcgi_header *h);
/* Reads an 8-byte record header. Returns -1 when the version is not 1. */
int mh_fcgi_header_decode(const uint8_t in[MH_FCGI_HEADER_LEN], struct mh_fcgi_header *h);

/* Appends one name-value pair (1- or 4-byte lengths) at out[0..cap). Returns the bytes written,
 * or 0 when it does not fit or a length exceeds 2^31-1. */
size_t mh_fcgi_nv_encode(uint8_t *out, size_t cap, const char *name, const char *value);

/* Encodes a whole RESPONDER request without keep-alive: BEGIN_REQUEST, one PARAMS record with
 * every pair, the empty PARAMS record and the empty STDIN record. Returns the length, or -1 when it
 * does not fit in `cap` or the pairs exceed one record. */
int mh_fcgi_encode_request(uint8_t *out, size_t cap, uint16_t request_id,
                           const struct mh_fcgi_param *params, size_t n_params);

/* ---- Pure decoding ---- */

/* Incremental decoder of the records answering one request. STDOUT content goes to a buffer the
 * caller provides; STDERR is kept up to MH_FCGI_STDERR_MAX bytes; END_REQUEST ends the reply. */
struct mh_fcgi_decoder {
    uint16_t request_id;
    char *out; /* STDOUT content, NUL-terminated; out_cap includes the NUL */
    size_t out_len;
    size_t out_cap;
    char err[MH_FCGI_STDERR_MAX + 1]; /* first STDERR bytes, NUL-terminated */
    size_t err_len;
    size_t total; /* STDOUT + STDERR content bytes seen, capped at MH_FCGI_RESPONSE_MAX */
    bool done;    /* END_REQUEST decoded */
    uint32_t app_status;
    uint8_t protocol_status;
    const char *error; /* static text after a -1 */
    /* parser state */
    uint8_t head[MH_FCGI_HEADER_LEN];
    size_t head_len;
    struct mh_fcgi_header rec;
    size_t content_left;
    size_t padding_left;
    uint8_t end_body[8];
    size_t end_len;
};

/* `out` must hold at least 1 byte. */
void mh_fcgi_decoder_init(struct mh_fcgi_decoder *d, uint16_t request_id, char *out,
                          size_t out_cap);

/* Feeds `len` bytes. Returns 1 once END_REQUEST is complete (bytes after it are not consumed),
 * 0 when more input is needed, -1 on a protocol violation or an over-long reply (d->error says
 * which; the decoder then stays failed). `*used` (may be NULL) receives the bytes consumed. */
int mh_fcgi_decode(struct mh_fcgi_decoder *d, const uint8_t *in, size_t len, size_t *used);

/* What the CGI headers at the start of STDOUT say. `body` points into the parsed buffer. */
struct mh_fcgi_cgi {
    int status; /* from "Status: NNN ..."; 200 when absent, as CGI says */
    char content_type[MH_FCGI_CTYPE_MAX];
    const char *body;
    size_t body_len;
};

/* Splits STDOUT into headers and body. Lines end in CRLF or LF; a blank line ends the headers.
 * Returns -1 with *why set when the blank line is missing or a Status header is malformed. */
int mh_fcgi_parse_cgi(const char *out, size_t len, struct mh_fcgi_cgi *cgi, const char **why);

/* ---- One request over a socket ---- */

/* Where php-fpm listens: a unix socket path (port 0) or a numeric IPv4/IPv6 address and port.
 * Only numeric addresses: a name lookup could not be bounded by the deadline. */
struct mh_fcgi_endpoint {
    char host[108]; /* the unix path, or the address without brackets */
    unsigned port;
};

/* Parses "/path/to/socket", "127.0.0.1:9000", "[::1]:9000" or "localhost:9000". */
int mh_fcgi_endpoint_parse(const char *s, struct mh_fcgi_endpoint *ep, const char **why);

/* Why a request failed. `stage` is "connect", "write", "read" or "protocol". */
struct mh_fcgi_error {
    const char *stage;
    int errnum;     /* errno for connect/write/read; 0 for protocol errors */
    bool timed_out; /* the deadline passed: php-fpm is saturated or unreachable */
    char message[160];
};

/* A decoded reply. Large (the STDOUT buffer), so callers keep it off small stacks. */
struct mh_fcgi_reply {
    struct mh_fcgi_decoder dec;
    struct mh_fcgi_cgi cgi;
    char stdout_buf[MH_FCGI_RESPONSE_MAX + 1];
};

/* Sends GET `path` with QUERY_STRING `query` (may be "") as a RESPONDER request and reads the
 * whole reply. Every step is bounded by `deadline` (CLOCK_MONOTONIC). Returns 0 with `reply`
 * filled (any HTTP status), or -1 with `err` filled. */
int mh_fcgi_get(const struct mh_fcgi_endpoint *ep, const char *path, const char *query,
                const struct timespec *deadline, struct mh_fcgi_reply *reply,
                struct mh_fcgi_error *err);

#endif
