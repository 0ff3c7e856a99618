/* check_drain.c - the drain and maintenance switch.
 *
 * Fails node readiness with "draining" while a drain file exists, or while Magento's own
 * var/.maintenance.flag exists under [server] magento_root. Operators take a node out of the
 * load balancer with `touch /run/magento-healthd/drain` (the unit's RuntimeDirectory) and put it
 * back by removing the file; the next run (every `interval`) notices.
 *
 * Keys:
 *   file             = /run/magento-healthd/drain  ; the drain file
 *   maintenance_flag = yes                         ; also honour MAGENTO_ROOT/var/.maintenance.flag
 */
#include "mh_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct drain {
    char file[1024];
    char maintenance_flag[4200]; /* empty when not watched */
    int meas;
};

static int drain_create(struct mh_check *check, struct mh_section *sec)
{
    struct drain *d = calloc(1, sizeof *d);
    if (!d)
        return mh_section_error(sec, NULL, "out of memory");
    check->impl = d;
    bool maintenance = true;
    strcpy(d->file, "/run/magento-healthd/drain");
    if (mh_section_string(sec, "file", d->file, sizeof d->file) < 0 ||
        mh_section_bool(sec, "maintenance_flag", &maintenance) < 0)
        return -1;
    if (d->file[0] != '/')
        return mh_section_error(sec, "file", "must be an absolute path");
    if (maintenance && check->server->magento_root[0])
        snprintf(d->maintenance_flag, sizeof d->maintenance_flag, "%s/var/.maintenance.flag",
                 check->server->magento_root);
    d->meas = mh_check_declare(check, "drain", check->affects);
    return 0;
}

/* 1 when `path` exists, 0 when it does not, -errno when we cannot tell. */
static int exists(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 1;
    return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

static void drain_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    const struct drain *d = check->impl;
    (void)deadline;
    int drain = exists(d->file);
    int maint = d->maintenance_flag[0] ? exists(d->maintenance_flag) : 0;
    if (drain > 0)
        mh_observe(out, d->meas, MH_FAIL, "draining: %s exists", d->file);
    else if (maint > 0)
        mh_observe(out, d->meas, MH_FAIL, "draining: Magento maintenance mode (%s exists)",
                   d->maintenance_flag);
    else if (drain < 0)
        mh_observe(out, d->meas, MH_FAIL, "cannot check drain file %s: %s", d->file,
                   strerror(-drain));
    else if (maint < 0)
        mh_observe(out, d->meas, MH_FAIL, "cannot check %s: %s", d->maintenance_flag,
                   strerror(-maint));
    else
        mh_observe(out, d->meas, MH_PASS, "not draining");
}

static void drain_destroy(struct mh_check *check)
{
    free(check->impl);
    check->impl = NULL;
}

const struct mh_check_type mh_check_drain = {
    .name = "drain",
    .component_type = "system",
    .default_affects = MH_AFFECTS_NODE,
    .create = drain_create,
    .run = drain_run,
    .destroy = drain_destroy,
};
