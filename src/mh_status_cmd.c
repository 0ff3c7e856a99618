/* mh_status_cmd.c - `magento-healthd status`: ask the running daemon, print the on-call view.
 *
 * An on-call engineer on the node (or a bastion with the token) wants the table, not 200 lines
 * of JSON. This reads the [server] section of the same config for the listen address, the node
 * name and the details token, asks the daemon over HTTP with libcurl (connect and read bounded:
 * it never hangs), and prints the text view, or the detailed JSON with --json. The exit code
 * follows --check: 0 pass, 1 warn, 2 fail (the worst measurement), 3 when the daemon cannot be
 * asked, with a one-line reason.
 *
 * Only [server] is read, with inih directly: the checks' secrets (LoadCredential= files that
 * exist only inside the unit) are none of this command's business. This is an edge of the
 * program, so it prints. */
#include "mh_status_cmd.h"

#include "mh_check.h"
#include "mh_config.h"
#include "mh_parse.h"
#include "mh_types.h"

#include <arpa/inet.h>

#include <curl/curl.h>
#include <getopt.h>
#include <ini.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define BODY_MAX         (1024 * 1024)
#define EXIT_UNREACHABLE 3

struct server_keys {
    char listen[256];
    char node[256];
    char token_file[4096];
    char token_env[256];
};

struct body {
    char *data;
    size_t len;
    bool too_big;
};

static int take_server_key(void *ctx, const char *section, const char *key, const char *value)
{
    struct server_keys *k = ctx;
    if (strcmp(section, "server") != 0)
        return 1;
    if (strcmp(key, "listen") == 0 && !k->listen[0]) { /* the first address of the list */
        snprintf(k->listen, sizeof k->listen, "%.*s", (int)strcspn(value, ", \t"), value);
    } else if (strcmp(key, "node") == 0) {
        snprintf(k->node, sizeof k->node, "%s", value);
    } else if (strcmp(key, "details_token_file") == 0) {
        snprintf(k->token_file, sizeof k->token_file, "%s", value);
    } else if (strcmp(key, "details_token_env") == 0) {
        snprintf(k->token_env, sizeof k->token_env, "%s", value);
    }
    return 1;
}

/* The base URL to reach the daemon at: a wildcard listen address is asked on loopback. */
static int base_url(const char *listen, char *out, size_t outlen, const char **why)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (mh_parse_listen(listen[0] ? listen : "0.0.0.0:8642", &ss, &len, why) < 0)
        return -1;
    char host[INET6_ADDRSTRLEN];
    unsigned port;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_UNSPECIFIED(&a->sin6_addr))
            a->sin6_addr = in6addr_loopback;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, outlen, "http://[%s]:%u", host, port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        if (a->sin_addr.s_addr == htonl(INADDR_ANY))
            a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, outlen, "http://%s:%u", host, port);
    }
    return 0;
}

/* The details token, if the config names one this user can read, read as the daemon reads it
 * (mh_secret_read_file). "%d/" is systemd's credentials directory, which exists only inside
 * the unit: outside it the token is simply not available. Free with mh_secret_free(). */
static char *read_token(const struct server_keys *k)
{
    if (k->token_env[0] && getenv(k->token_env))
        return strdup(getenv(k->token_env));
    if (!k->token_file[0])
        return NULL;
    const char *why;
    char *token = mh_secret_read_file(k->token_file, &why);
    if (!token && strncmp(k->token_file, "%d/", 3) != 0)
        fprintf(stderr, "magento-healthd status: details_token_file %s: %s\n", k->token_file, why);
    return token;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct body *b = ctx;
    size_t add = size * n;
    if (b->len + add > BODY_MAX) {
        b->too_big = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + b->len, data, add);
    b->data = grown;
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

/* GETs `url` within `timeout_ms`. Returns the HTTP code, or 0 with `err` set. */
static long fetch(const char *url, const char *token, long timeout_ms, struct body *out, char *err,
                  size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(err, errlen, "cannot start an HTTP client");
        return 0;
    }
    char curl_err[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    char auth[4200];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    /* Never through http_proxy / ALL_PROXY: the token would go to another host in clear text,
     * and the answer (and its timing) would be the proxy's, not the daemon's. */
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    long code = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else
        snprintf(err, errlen, "%s",
                 out->too_big  ? "answer over 1 MiB"
                 : curl_err[0] ? curl_err
                               : curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    explicit_bzero(auth, sizeof auth);
    return code;
}

static enum mh_status status_of(const char *name)
{
    return strcmp(name, "pass") == 0 ? MH_PASS : strcmp(name, "warn") == 0 ? MH_WARN : MH_FAIL;
}

/* The worst status among the measurements of a detailed body: what --check exits with. */
static int worst_status(json_t *root)
{
    enum mh_status worst = MH_PASS;
    const char *key;
    json_t *entries;
    json_object_foreach(json_object_get(root, "checks"), key, entries)
    {
        const char *s = json_string_value(json_object_get(json_array_get(entries, 0), "status"));
        if (s && status_of(s) > worst)
            worst = status_of(s);
    }
    return (int)worst;
}

/* Colours the status words of the text view in the columns where it puts them. */
static void print_colored(const char *text)
{
    static const char *const words[] = {"pass", "warn", "fail"};
    static const char *const colors[] = {"\033[32m", "\033[1;33m", "\033[1;31m"};
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        size_t at = len; /* where the status word starts, or len for none */
        if (strncmp(line, "node ", 5) == 0 || strncmp(line, "region ", 7) == 0 ||
            strncmp(line, "standby ", 8) == 0)
            at = len > 9 ? 9 : len;
        else if (len >= 4 && line[4] == ' ')
            at = 0;
        else if (strstr(line, "-> ") && (size_t)(strstr(line, "-> ") - line) < len)
            at = (size_t)(strstr(line, "-> ") - line) + 3;
        int w = -1;
        for (int i = 0; i < 3 && at + 4 <= len; i++)
            if (strncmp(line + at, words[i], 4) == 0)
                w = i;
        if (w < 0)
            printf("%.*s\n", (int)len, line);
        else
            printf("%.*s%s%s\033[0m%.*s\n", (int)at, line, colors[w], words[w], (int)(len - at - 4),
                   line + at + 4);
        line += len + (line[len] == '\n');
    }
}

static void usage(FILE *to)
{
    fprintf(to, "Usage: magento-healthd status [-c FILE] [--json] [--timeout DURATION]\n"
                "Asks the running daemon (at the config's listen address) for its on-call view.\n"
                "Exit: 0 pass, 1 warn, 2 fail, 3 daemon not reachable.\n");
}

struct options {
    const char *config;
    bool json;
    mh_ms timeout;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    const char *why;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        if (opt == 'c') {
            o->config = optarg;
        } else if (opt == 'j') {
            o->json = true;
        } else if (opt == 'T' && (mh_parse_duration(optarg, &o->timeout, &why) < 0 ||
                                  (o->timeout <= 0 && (why = "must be at least 1ms")))) {
            /* 0 would mean "no limit" to libcurl: this command must never hang. */
            fprintf(stderr, "magento-healthd status: --timeout %s: %s\n", optarg, why);
            return 64;
        } else if (opt == 'h') {
            usage(stdout);
            return 0;
        } else if (opt != 'T') {
            usage(stderr);
            return 64;
        }
    }
    return -1;
}

/* Asks for the detailed JSON; on success returns it parsed, else prints why and returns NULL. */
static json_t *ask_json(const char *url, const char *token, mh_ms timeout, struct body *raw)
{
    char err[CURL_ERROR_SIZE + 64];
    long code = fetch(url, token, (long)timeout, raw, err, sizeof err);
    if (code == 0) {
        fprintf(stderr, "magento-healthd status: cannot reach the daemon at %s: %s\n", url, err);
        return NULL;
    }
    json_t *root = raw->data ? json_loads(raw->data, 0, NULL) : NULL;
    if (!json_is_object(root) || !json_object_get(root, "status")) {
        fprintf(stderr,
                "magento-healthd status: %s answered HTTP %ld without a health body: "
                "is it magento-healthd?\n",
                url, code);
        json_decref(root);
        return NULL;
    }
    if (!json_object_get(root, "serviceId")) {
        fprintf(stderr,
                "magento-healthd status: %s gave only the public view: run this on the "
                "node (details_from) or set details_token_file\n",
                url);
        json_decref(root);
        return NULL;
    }
    return root;
}

int mh_status_main(int argc, char **argv, const char *default_config)
{
    struct options o = {.config = default_config, .timeout = 2000};
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    struct server_keys k = {0};
    if (ini_parse(o.config, take_server_key, &k) < 0) {
        fprintf(stderr, "magento-healthd status: cannot read %s\n", o.config);
        return EXIT_UNREACHABLE;
    }
    if (!k.node[0] && gethostname(k.node, sizeof k.node) < 0)
        k.node[0] = '\0';
    char base[300], url[400];
    const char *why;
    if (base_url(k.listen, base, sizeof base, &why) < 0) {
        fprintf(stderr, "magento-healthd status: %s: [server] listen: %s\n", o.config, why);
        return EXIT_UNREACHABLE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *token = read_token(&k);
    snprintf(url, sizeof url, "%s/healthcheck", base);
    struct body raw = {0};
    /* One bound for the whole command: the text view gets what the JSON request left. */
    struct timespec deadline;
    mh_deadline_in(&deadline, o.timeout);
    json_t *root = ask_json(url, token, o.timeout, &raw);
    rc = EXIT_UNREACHABLE;
    if (root) {
        rc = worst_status(root);
        const char *node = json_string_value(json_object_get(root, "node"));
        if (node && strcmp(node, k.node) != 0)
            fprintf(stderr,
                    "magento-healthd status: warning: %s is node \"%s\", but %s describes "
                    "node \"%s\": a different daemon answered\n",
                    base, node, o.config, k.node);
        struct body text = {0};
        char err[CURL_ERROR_SIZE + 64] = "no time left";
        snprintf(url, sizeof url, "%s/healthcheck?format=text", base);
        mh_ms left = mh_deadline_left(&deadline);
        long code = 0;
        if (!o.json && left > 0)
            code = fetch(url, token, (long)left, &text, err, sizeof err);
        /* The table starts with its node line; anything else (an error page, or JSON from an
         * older daemon that has no text view) is not printed as if it were one. */
        if (code != 0 && (!text.data || strncmp(text.data, "node ", 5) != 0))
            snprintf(err, sizeof err, "HTTP %ld without the text view (an older daemon?)", code);
        if (o.json)
            printf("%s\n", raw.data);
        else if (code == 0 || !text.data || strncmp(text.data, "node ", 5) != 0) {
            fprintf(stderr, "magento-healthd status: the text view failed: %s\n", err);
            rc = EXIT_UNREACHABLE;
        } else if (isatty(STDOUT_FILENO) && !getenv("NO_COLOR"))
            print_colored(text.data);
        else
            fputs(text.data, stdout);
        free(text.data);
        json_decref(root);
    }
    free(raw.data);
    mh_secret_free(token);
    curl_global_cleanup();
    return rc;
}
