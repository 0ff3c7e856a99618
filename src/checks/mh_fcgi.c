/* mh_fcgi.c - a minimal FastCGI client for PHP-FPM's ping and status pages. See mh_fcgi.h.
 *
 * Why our own client: shelling out to cgi-fcgi costs a fork per probe and has no timeout (the
 * most wanted fix of php-fpm-healthcheck), and a general FastCGI library brings far more than a
 * GET. The protocol half is pure and incremental so that it can be fuzzed; the socket half is
 * non-blocking throughout, so one deadline bounds connect, write and read together. */
#include "mh_fcgi.h"

#include "mh_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define NV_LEN_MAX 0x7fffffffUL

/* ---------------------------------------------------------------------------------------------
 * Encoding */

void mh_fcgi_header_encode(uint8_t out[MH_FCGI_HEADER_LEN], const struct mh_fcgi_header *h)
{
    out[0] = h->version;
    out[1] = h->type;
    out[2] = (uint8_t)(h->request_id >> 8);
    out[3] = (uint8_t)(h->request_id & 0xff);
    out[4] = (uint8_t)(h->content_length >> 8);
    out[5] = (uint8_t)(h->content_length & 0xff);
    out[6] = h->padding_length;
    out[7] = 0;
}

int mh_fcgi_header_decode(const uint8_t in[MH_FCGI_HEADER_LEN], struct mh_fcgi_header *h)
{
    h->version = in[0];
    h->type = in[1];
    h->request_id = (uint16_t)(in[2] << 8 | in[3]);
    h->content_length = (uint16_t)(in[4] << 8 | in[5]);
    h->padding_length = in[6];
    return h->version == MH_FCGI_VERSION ? 0 : -1;
}

/* Writes a name-value length: one byte up to 127, else four with the top bit set. */
static size_t nv_length_encode(uint8_t *out, size_t len)
{
    if (len <= 127) {
        out[0] = (uint8_t)len;
        return 1;
    }
    out[0] = (uint8_t)(0x80 | (len >> 24));
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    return 4;
}

size_t mh_fcgi_nv_encode(uint8_t *out, size_t cap, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);
    if (nlen > NV_LEN_MAX || vlen > NV_LEN_MAX)
        return 0;
    size_t need = (nlen > 127 ? 4 : 1) + (vlen > 127 ? 4 : 1) + nlen + vlen;
    if (need > cap)
        return 0;
    size_t pos = nv_length_encode(out, nlen);
    pos += nv_length_encode(out + pos, vlen);
    memcpy(out + pos, name, nlen);
    memcpy(out + pos + nlen, value, vlen);
    return need;
}

/* Appends a record header for `len` content bytes; the content follows it. */
static int put_header(uint8_t *out, size_t cap, size_t *pos, uint8_t type, uint16_t id, size_t len)
{
    if (len > MH_FCGI_RECORD_MAX || cap - *pos < MH_FCGI_HEADER_LEN + len)
        return -1;
    struct mh_fcgi_header h = {MH_FCGI_VERSION, type, id, (uint16_t)len, 0};
    mh_fcgi_header_encode(out + *pos, &h);
    *pos += MH_FCGI_HEADER_LEN;
    return 0;
}

int mh_fcgi_encode_request(uint8_t *out, size_t cap, uint16_t request_id,
                           const struct mh_fcgi_param *params, size_t n_params)
{
    size_t pos = 0;
    /* BEGIN_REQUEST: role RESPONDER, flags 0 (php-fpm closes the connection after the reply). */
    if (put_header(out, cap, &pos, MH_FCGI_BEGIN_REQUEST, request_id, 8) < 0)
        return -1;
    static const uint8_t begin_body[8] = {0, MH_FCGI_RESPONDER, 0, 0, 0, 0, 0, 0};
    memcpy(out + pos, begin_body, sizeof begin_body);
    pos += sizeof begin_body;

    /* The pairs are written first, then their header in front of them, once the length is known. */
    if (cap - pos < MH_FCGI_HEADER_LEN)
        return -1;
    size_t params_at = pos;
    size_t body = params_at + MH_FCGI_HEADER_LEN, len = 0;
    for (size_t i = 0; i < n_params; i++) {
        size_t n =
            mh_fcgi_nv_encode(out + body + len, cap - body - len, params[i].name, params[i].value);
        if (n == 0)
            return -1;
        len += n;
    }
    if (put_header(out, cap, &pos, MH_FCGI_PARAMS, request_id, len) < 0)
        return -1;
    pos += len;

    if (put_header(out, cap, &pos, MH_FCGI_PARAMS, request_id, 0) < 0 ||
        put_header(out, cap, &pos, MH_FCGI_STDIN, request_id, 0) < 0)
        return -1;
    return pos > (size_t)INT32_MAX ? -1 : (int)pos;
}

/* ---------------------------------------------------------------------------------------------
 * Decoding */

void mh_fcgi_decoder_init(struct mh_fcgi_decoder *d, uint16_t request_id, char *out, size_t out_cap)
{
    memset(d, 0, sizeof *d);
    d->request_id = request_id;
    d->out = out;
    d->out_cap = out_cap;
    if (out_cap > 0)
        out[0] = '\0';
}

static int decode_fail(struct mh_fcgi_decoder *d, const char *why)
{
    d->error = why;
    return -1;
}

/* Checks a complete header against what this reply may contain, before any content is read. */
static int start_record(struct mh_fcgi_decoder *d)
{
    if (mh_fcgi_header_decode(d->head, &d->rec) < 0)
        return decode_fail(d, "unsupported FastCGI version (is this a FastCGI socket?)");
    if (d->rec.request_id != d->request_id)
        return decode_fail(d, "record for another request id");
    size_t len = d->rec.content_length;
    switch (d->rec.type) {
    case MH_FCGI_STDOUT:
        if (len > d->out_cap - 1 - d->out_len)
            return decode_fail(d, "STDOUT larger than the reply buffer");
        /* fall through */
    case MH_FCGI_STDERR:
        if (len > MH_FCGI_RESPONSE_MAX - d->total)
            return decode_fail(d, "reply larger than 64 KiB");
        d->total += len;
        break;
    case MH_FCGI_END_REQUEST:
        if (len != sizeof d->end_body)
            return decode_fail(d, "END_REQUEST body is not 8 bytes");
        break;
    default:
        return decode_fail(d, "unexpected record type in reply");
    }
    d->content_left = len;
    d->padding_left = d->rec.padding_length;
    return 0;
}

static void take_content(struct mh_fcgi_decoder *d, const uint8_t *in, size_t n)
{
    switch (d->rec.type) {
    case MH_FCGI_STDOUT:
        memcpy(d->out + d->out_len, in, n);
        d->out_len += n;
        d->out[d->out_len] = '\0';
        break;
    case MH_FCGI_STDERR: {
        size_t keep = MH_FCGI_STDERR_MAX - d->err_len;
        if (keep > n)
            keep = n;
        memcpy(d->err + d->err_len, in, keep);
        d->err_len += keep;
        d->err[d->err_len] = '\0';
        break;
    }
    default: /* END_REQUEST; its length was checked to be 8 */
        memcpy(d->end_body + d->end_len, in, n);
        d->end_len += n;
        break;
    }
}

/* Called once the content and padding of a record are consumed. Returns 1 after END_REQUEST. */
static int finish_record(struct mh_fcgi_decoder *d)
{
    d->head_len = 0;
    if (d->rec.type != MH_FCGI_END_REQUEST)
        return 0;
    const uint8_t *b = d->end_body;
    d->app_status = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    d->protocol_status = b[4];
    d->done = true;
    return 1;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

int mh_fcgi_decode(struct mh_fcgi_decoder *d, const uint8_t *in, size_t len, size_t *used)
{
    size_t i = 0;
    int rc = d->error ? -1 : d->done ? 1 : 0;
    while (rc == 0 && i < len) {
        if (d->head_len < MH_FCGI_HEADER_LEN) {
            size_t n = min_size(MH_FCGI_HEADER_LEN - d->head_len, len - i);
            memcpy(d->head + d->head_len, in + i, n);
            d->head_len += n;
            i += n;
            if (d->head_len < MH_FCGI_HEADER_LEN)
                continue;
            rc = start_record(d);
        } else if (d->content_left > 0) {
            size_t n = min_size(d->content_left, len - i);
            take_content(d, in + i, n);
            d->content_left -= n;
            i += n;
        } else {
            size_t n = min_size(d->padding_left, len - i);
            d->padding_left -= n;
            i += n;
        }
        if (rc == 0 && d->content_left == 0 && d->padding_left == 0)
            rc = finish_record(d);
    }
    if (used)
        *used = i;
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * CGI headers */

static bool header_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp(line, name, n) == 0;
}

/* The value after "Name:", without surrounding blanks. */
static const char *header_value(const char *line, size_t len, size_t *vlen)
{
    const char *v = memchr(line, ':', len) + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *vlen = (size_t)(end - v);
    return v;
}

static int parse_status(const char *v, size_t n, int *status)
{
    if (n < 3 || (n > 3 && v[3] != ' '))
        return -1;
    int code = 0;
    for (int k = 0; k < 3; k++) {
        if (v[k] < '0' || v[k] > '9')
            return -1;
        code = code * 10 + (v[k] - '0');
    }
    if (code < 100 || code > 599)
        return -1;
    *status = code;
    return 0;
}

int mh_fcgi_parse_cgi(const char *out, size_t len, struct mh_fcgi_cgi *cgi, const char **why)
{
    cgi->status = 200;
    cgi->content_type[0] = '\0';
    cgi->body = NULL;
    cgi->body_len = 0;
    size_t pos = 0;
    for (;;) {
        const char *line = out + pos;
        const char *nl = memchr(line, '\n', len - pos);
        if (!nl) {
            *why = "no blank line after the CGI headers";
            return -1;
        }
        size_t n = (size_t)(nl - line);
        pos += n + 1;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (n == 0) {
            cgi->body = out + pos;
            cgi->body_len = len - pos;
            return 0;
        }
        size_t vlen;
        if (header_is(line, n, "Status")) {
            const char *v = header_value(line, n, &vlen);
            if (parse_status(v, vlen, &cgi->status) < 0) {
                *why = "malformed Status header";
                return -1;
            }
        } else if (header_is(line, n, "Content-Type")) {
            const char *v = header_value(line, n, &vlen);
            size_t keep = min_size(vlen, sizeof cgi->content_type - 1);
            memcpy(cgi->content_type, v, keep);
            cgi->content_type[keep] = '\0';
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Endpoint */

int mh_fcgi_endpoint_parse(const char *s, struct mh_fcgi_endpoint *ep, const char **why)
{
    char host[256];
    unsigned port;
    if (mh_parse_endpoint(s, host, sizeof host, &port, why) < 0)
        return -1;
    if (port == 0) {
        if (strlen(host) >= sizeof ep->host) {
            *why = "unix socket path too long";
            return -1;
        }
        strcpy(ep->host, host);
        ep->port = 0;
        return 0;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, host, addr) != 1 && inet_pton(AF_INET6, host, addr) != 1) {
        *why = "use a numeric IP address or a socket path (a name lookup cannot be bounded by "
               "the check's timeout)";
        return -1;
    }
    strcpy(ep->host, host);
    ep->port = port;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The socket exchange */

/* Milliseconds until `deadline`, rounded up so a poll never spins on 0; -1 once it has passed. */
static int ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t ns =
        (int64_t)(deadline->tv_sec - now.tv_sec) * 1000000000LL + (deadline->tv_nsec - now.tv_nsec);
    if (ns <= 0)
        return -1;
    int64_t ms = (ns + 999999) / 1000000;
    return ms > 3600000 ? 3600000 : (int)ms;
}

static int fail_errno(struct mh_fcgi_error *err, const char *stage, int errnum)
{
    err->stage = stage;
    err->errnum = errnum;
    err->timed_out = false;
    char buf[128];
    /* The GNU strerror_r (the project builds with _GNU_SOURCE): thread-safe, returns the text. */
    snprintf(err->message, sizeof err->message, "%s", strerror_r(errnum, buf, sizeof buf));
    return -1;
}

static int fail_timeout(struct mh_fcgi_error *err, const char *stage)
{
    fail_errno(err, stage, ETIMEDOUT);
    err->timed_out = true;
    return -1;
}

static int fail_text(struct mh_fcgi_error *err, const char *stage, const char *text)
{
    err->stage = stage;
    err->errnum = 0;
    err->timed_out = false;
    snprintf(err->message, sizeof err->message, "%s", text);
    return -1;
}

/* Waits for `events` on fd until the deadline. Returns 0 when ready, -1 with errno set
 * (ETIMEDOUT when the deadline passed). */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
    for (;;) {
        int left = ms_left(deadline);
        if (left < 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static socklen_t endpoint_sockaddr(const struct mh_fcgi_endpoint *ep, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (ep->port == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)ss;
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, ep->host, strlen(ep->host) + 1);
        return sizeof *un;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, ep->host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)ep->port);
        return sizeof *in4;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, ep->host, &in6->sin6_addr) != 1)
        return 0;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)ep->port);
    return sizeof *in6;
}

/* A unix socket whose listen backlog is full refuses a non-blocking connect with EAGAIN, and
 * there is nothing to poll on: retry every few milliseconds until the deadline. */
static int connect_unix(int fd, const struct sockaddr *sa, socklen_t len,
                        const struct timespec *deadline, struct mh_fcgi_error *err)
{
    for (;;) {
        if (connect(fd, sa, len) == 0)
            return 0;
        int e = errno;
        if (e != EAGAIN && e != EINTR)
            return fail_errno(err, "connect", e);
        int left = ms_left(deadline);
        if (left < 0 && e == EAGAIN) {
            fail_errno(err, "connect", EAGAIN);
            err->timed_out = true;
            strcat(err->message, " (listen backlog full)");
            return -1;
        }
        if (left < 0)
            return fail_timeout(err, "connect");
        poll(NULL, 0, left < 5 ? left : 5);
    }
}

static int connect_tcp(int fd, const struct sockaddr *sa, socklen_t len,
                       const struct timespec *deadline, struct mh_fcgi_error *err)
{
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return fail_errno(err, "connect", errno);
    if (wait_fd(fd, POLLOUT, deadline) < 0)
        return errno == ETIMEDOUT ? fail_timeout(err, "connect")
                                  : fail_errno(err, "connect", errno);
    int so_error = 0;
    socklen_t sl = sizeof so_error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) < 0)
        return fail_errno(err, "connect", errno);
    return so_error ? fail_errno(err, "connect", so_error) : 0;
}

static int open_connection(const struct mh_fcgi_endpoint *ep, const struct timespec *deadline,
                           struct mh_fcgi_error *err)
{
    struct sockaddr_storage ss;
    socklen_t len = endpoint_sockaddr(ep, &ss);
    if (len == 0)
        return fail_text(err, "connect", "bad address");
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail_errno(err, "connect", errno);
    int rc = ep->port == 0 ? connect_unix(fd, (struct sockaddr *)&ss, len, deadline, err)
                           : connect_tcp(fd, (struct sockaddr *)&ss, len, deadline, err);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const uint8_t *buf, size_t len, const struct timespec *deadline,
                    struct mh_fcgi_error *err)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            return fail_errno(err, "write", errno);
        if (wait_fd(fd, POLLOUT, deadline) < 0)
            return errno == ETIMEDOUT ? fail_timeout(err, "write")
                                      : fail_errno(err, "write", errno);
    }
    return 0;
}

/* Reads records until END_REQUEST. The decoder bounds every length it accepts. */
static int read_reply(int fd, struct mh_fcgi_decoder *dec, const struct timespec *deadline,
                      struct mh_fcgi_error *err)
{
    uint8_t chunk[4096];
    for (;;) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            int rc = mh_fcgi_decode(dec, chunk, (size_t)n, NULL);
            if (rc < 0)
                return fail_text(err, "protocol", dec->error);
            if (rc > 0)
                return 0;
            continue;
        }
        if (n == 0)
            return fail_text(err, "read", "php-fpm closed the connection before END_REQUEST");
        if (errno != EAGAIN && errno != EINTR)
            return fail_errno(err, "read", errno);
        if (wait_fd(fd, POLLIN, deadline) < 0)
            return errno == ETIMEDOUT ? fail_timeout(err, "read") : fail_errno(err, "read", errno);
    }
}

static const char *protocol_status_text(uint8_t s)
{
    switch (s) {
    case MH_FCGI_CANT_MPX_CONN:
        return "php-fpm refused the request: cannot multiplex connections";
    case MH_FCGI_OVERLOADED:
        return "php-fpm refused the request: overloaded";
    case MH_FCGI_UNKNOWN_ROLE:
        return "php-fpm refused the request: unknown role";
    default:
        return "php-fpm refused the request: unknown protocol status";
    }
}

static int encode_get(uint8_t *buf, size_t cap, const char *path, const char *query)
{
    char uri[MH_FCGI_REQUEST_MAX / 4];
    int n = snprintf(uri, sizeof uri, "%s%s%s", path, *query ? "?" : "", query);
    if (n < 0 || (size_t)n >= sizeof uri)
        return -1;
    const struct mh_fcgi_param params[] = {
        {"GATEWAY_INTERFACE", "CGI/1.1"},
        {"SERVER_SOFTWARE", "magento-healthd"},
        {"SERVER_PROTOCOL", "HTTP/1.1"},
        {"REQUEST_METHOD", "GET"},
        {"SCRIPT_NAME", path},
        {"SCRIPT_FILENAME", path},
        {"DOCUMENT_URI", path},
        {"REQUEST_URI", uri},
        {"QUERY_STRING", query},
        {"CONTENT_LENGTH", "0"},
    };
    return mh_fcgi_encode_request(buf, cap, 1, params, sizeof params / sizeof params[0]);
}

int mh_fcgi_get(const struct mh_fcgi_endpoint *ep, const char *path, const char *query,
                const struct timespec *deadline, struct mh_fcgi_reply *reply,
                struct mh_fcgi_error *err)
{
    uint8_t req[MH_FCGI_REQUEST_MAX];
    int req_len = encode_get(req, sizeof req, path, query);
    if (req_len < 0)
        return fail_text(err, "write", "path or query too long for one request");
    mh_fcgi_decoder_init(&reply->dec, 1, reply->stdout_buf, sizeof reply->stdout_buf);

    int fd = open_connection(ep, deadline, err);
    if (fd < 0)
        return -1;
    int rc = send_all(fd, req, (size_t)req_len, deadline, err);
    if (rc == 0)
        rc = read_reply(fd, &reply->dec, deadline, err);
    close(fd);
    if (rc < 0)
        return -1;

    if (reply->dec.protocol_status != MH_FCGI_REQUEST_COMPLETE)
        return fail_text(err, "protocol", protocol_status_text(reply->dec.protocol_status));
    const char *why;
    if (mh_fcgi_parse_cgi(reply->dec.out, reply->dec.out_len, &reply->cgi, &why) < 0)
        return fail_text(err, "protocol", why);
    return 0;
}
