/* mh_secret.c - reading passwords and tokens from files (systemd credentials included).
 *
 * Secrets never live in the INI file: they are read from a file named by a `*_file` key, or from
 * an environment variable. "%d/NAME" stands for $CREDENTIALS_DIRECTORY/NAME, the directory
 * systemd fills from LoadCredential=. Memory holding a secret is wiped before it is freed. */
#include "mh_config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SECRET_MAX 4096

void mh_secret_free(char *secret)
{
    if (!secret)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

/* Expands a leading "%d/" to the credentials directory. */
static int expand_path(const char *path, char *out, size_t outlen, const char **why)
{
    if (strncmp(path, "%d/", 3) == 0) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir) {
            *why = "\"%d/\" needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)";
            return -1;
        }
        if ((size_t)snprintf(out, outlen, "%s/%s", dir, path + 3) >= outlen) {
            *why = "path too long";
            return -1;
        }
        return 0;
    }
    if (strlen(path) >= outlen) {
        *why = "path too long";
        return -1;
    }
    strcpy(out, path);
    return 0;
}

static void strip_newlines(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

char *mh_secret_read_file(const char *path, const char **why)
{
    char full[4096];
    if (expand_path(path, full, sizeof full, why) < 0)
        return NULL;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *why = errno == ENOENT   ? "file not found"
               : errno == EACCES ? "permission denied"
                                 : "cannot open file";
        return NULL;
    }
    char *buf = calloc(1, SECRET_MAX + 1);
    size_t len = 0;
    ssize_t n;
    while (buf && len < SECRET_MAX && (n = read(fd, buf + len, SECRET_MAX - len)) > 0)
        len += (size_t)n;
    char extra;
    bool too_big = buf && len == SECRET_MAX && read(fd, &extra, 1) > 0;
    close(fd);
    if (!buf) {
        *why = "out of memory";
        return NULL;
    }
    if (too_big || memchr(buf, '\0', len)) {
        *why = too_big ? "file larger than 4 KiB" : "file contains a NUL byte";
        mh_secret_free(buf);
        return NULL;
    }
    strip_newlines(buf);
    if (!*buf) {
        *why = "file is empty";
        mh_secret_free(buf);
        return NULL;
    }
    return buf;
}
