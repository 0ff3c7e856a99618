/* check_redis.c - placeholder; the redis check type lands with its own issue. */
#include "mh_check.h"

static int redis_create(struct mh_check *check, struct mh_section *sec)
{
    (void)check;
    return mh_section_error(sec, "type", "the redis check is not implemented yet");
}

static void redis_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    (void)check;
    (void)deadline;
    (void)out;
}

const struct mh_check_type mh_check_redis = {
    .name = "redis",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE,
    .create = redis_create,
    .run = redis_run,
};
