/* check_disk.c - local disk: free space, free inodes, and a write probe.
 *
 * A full or read-only filesystem (var/, generated/, the session or log directory) breaks Magento
 * on this node only, so by default the check affects node readiness only.
 *
 * Keys:
 *   path        = /, /var/www/magento/var   ; one or more directories (required)
 *   space_warn  = 10%                       ; warn below this much free space (bytes or %)
 *   space_fail  = 5%                        ; fail below this much free space
 *   inodes_warn = 10%                       ; warn below this share (or count) of free inodes
 *   inodes_fail = 5%                        ; fail below it
 *   write_probe = yes                       ; create, write, fsync and unlink a small file
 *
 * statvfs() and the write probe are plain syscalls and cannot be interrupted: on a hung
 * filesystem run() does not return, and the framework reports the check as stale. */
#include "mh_check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define MAX_PATHS 8

struct disk {
    char paths[MAX_PATHS][1024];
    int n_paths;
    struct mh_size space_warn, space_fail, inodes_warn, inodes_fail;
    bool write_probe;
    int meas;
};

static int parse_paths(struct mh_section *sec, struct disk *d)
{
    const char *v = mh_section_get(sec, "path");
    if (!v)
        return mh_section_error(sec, NULL, "missing key \"path\" (one or more directories)");
    char buf[MAX_PATHS * 1024];
    char *items[MAX_PATHS];
    if (strlen(v) >= sizeof buf)
        return mh_section_error(sec, "path", "value too long");
    strcpy(buf, v);
    int n = mh_split_list(buf, items, MAX_PATHS);
    if (n <= 0)
        return mh_section_error(sec, "path", "expected one to %d absolute paths", MAX_PATHS);
    for (int i = 0; i < n; i++) {
        if (items[i][0] != '/' || strlen(items[i]) >= sizeof d->paths[i] - 64)
            return mh_section_error(sec, "path", "\"%.200s\" is not an absolute path", items[i]);
        strcpy(d->paths[i], items[i]);
    }
    d->n_paths = n;
    return 0;
}

static int disk_create(struct mh_check *check, struct mh_section *sec)
{
    struct disk *d = calloc(1, sizeof *d);
    if (!d)
        return mh_section_error(sec, NULL, "out of memory");
    check->impl = d;
    d->space_warn = (struct mh_size){true, 10};
    d->space_fail = (struct mh_size){true, 5};
    d->inodes_warn = (struct mh_size){true, 10};
    d->inodes_fail = (struct mh_size){true, 5};
    d->write_probe = true;
    if (parse_paths(sec, d) < 0 || mh_section_size(sec, "space_warn", &d->space_warn) < 0 ||
        mh_section_size(sec, "space_fail", &d->space_fail) < 0 ||
        mh_section_size(sec, "inodes_warn", &d->inodes_warn) < 0 ||
        mh_section_size(sec, "inodes_fail", &d->inodes_fail) < 0 ||
        mh_section_bool(sec, "write_probe", &d->write_probe) < 0)
        return -1;
    d->meas = mh_check_declare(check, "free", check->affects);
    return 0;
}

/* Creates, writes, fsyncs and removes a small file: catches read-only remounts, full disks and
 * I/O errors that statvfs() alone does not show. Returns 0 or an errno. */
static int write_probe(const char *dir, const char *node, const char **stage)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/.magento-healthd-probe.%.64s.%ld", dir, node, (long)getpid());
    *stage = "create";
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    static const char block[512] = "magento-healthd write probe\n";
    int err = 0;
    *stage = "write";
    if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
        err = errno ? errno : ENOSPC;
    if (!err) {
        *stage = "fsync";
        if (fsync(fd) < 0)
            err = errno;
    }
    if (close(fd) < 0 && !err) {
        *stage = "close";
        err = errno;
    }
    if (unlink(path) < 0 && !err) {
        *stage = "unlink";
        err = errno;
    }
    return err;
}

static enum mh_status grade(const struct mh_size *warn, const struct mh_size *fail, double avail,
                            double total)
{
    if (mh_size_below(fail, avail, total))
        return MH_FAIL;
    if (mh_size_below(warn, avail, total))
        return MH_WARN;
    return MH_PASS;
}

/* Checks one path; appends its summary to `out`, returns its status and free space percent. */
static enum mh_status check_path(const struct disk *d, const char *path, const char *node,
                                 char *out, size_t outlen, double *free_pct)
{
    struct statvfs st;
    if (statvfs(path, &st) < 0) {
        snprintf(out, outlen, "%s: statvfs: %s", path, strerror(errno));
        return MH_FAIL;
    }
    double total = (double)st.f_blocks * st.f_frsize, avail = (double)st.f_bavail * st.f_frsize;
    double itotal = (double)st.f_files, ifree = (double)st.f_favail;
    *free_pct = total > 0 ? avail * 100.0 / total : 0;
    enum mh_status space = grade(&d->space_warn, &d->space_fail, avail, total);
    /* Filesystems without inode accounting (btrfs, some network ones) report 0 files. */
    enum mh_status inodes =
        itotal > 0 ? grade(&d->inodes_warn, &d->inodes_fail, ifree, itotal) : MH_PASS;
    enum mh_status worst = space > inodes ? space : inodes;
    int n = snprintf(out, outlen, "%s: %.1f%% free (%.1f GiB), inodes %.1f%% free", path, *free_pct,
                     avail / (1024.0 * 1024 * 1024), itotal > 0 ? ifree * 100.0 / itotal : 100.0);
    if (d->write_probe && n >= 0 && (size_t)n < outlen) {
        const char *stage;
        int err = write_probe(path, node, &stage);
        if (err) {
            snprintf(out + n, outlen - (size_t)n, ", write probe failed at %s: %s", stage,
                     strerror(err));
            worst = MH_FAIL;
        }
    }
    return worst;
}

/* Appends "; text" (or just text) to out, cutting at the buffer's end. */
static void append_part(char *out, size_t outlen, const char *text)
{
    size_t len = strlen(out);
    if (len && len + 2 < outlen) {
        memcpy(out + len, "; ", 3);
        len += 2;
    }
    size_t n = strlen(text);
    if (len + n >= outlen)
        n = outlen - len - 1;
    memcpy(out + len, text, n);
    out[len + n] = '\0';
}

static void disk_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    const struct disk *d = check->impl;
    (void)deadline;
    char parts[MAX_PATHS][MH_OUTPUT_MAX];
    enum mh_status status[MAX_PATHS];
    int worst = 0;
    double min_free = 100;
    for (int i = 0; i < d->n_paths; i++) {
        double pct = 0;
        status[i] =
            check_path(d, d->paths[i], check->server->node, parts[i], sizeof parts[i], &pct);
        if (pct < min_free)
            min_free = pct;
        if (status[i] > status[worst])
            worst = i;
    }
    /* The worst path's summary leads, so a cut line still says what is wrong. */
    char summary[MH_OUTPUT_MAX] = "";
    append_part(summary, sizeof summary, parts[worst]);
    for (int i = 0; i < d->n_paths; i++)
        if (i != worst)
            append_part(summary, sizeof summary, parts[i]);
    mh_observe(out, d->meas, status[worst], "%s", summary);
    mh_observe_value(out, d->meas, min_free, "%");
}

static void disk_destroy(struct mh_check *check)
{
    free(check->impl);
    check->impl = NULL;
}

const struct mh_check_type mh_check_disk = {
    .name = "disk",
    .component_type = "system",
    .default_affects = MH_AFFECTS_NODE,
    .create = disk_create,
    .run = disk_run,
    .destroy = disk_destroy,
};
