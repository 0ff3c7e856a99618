/* check_fpm.c - placeholder; the fpm check type lands with its own issue. */
#include "mh_check.h"

static int fpm_create(struct mh_check *check, struct mh_section *sec)
{
    (void)check;
    return mh_section_error(sec, "type", "the fpm check is not implemented yet");
}

static void fpm_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    (void)check;
    (void)deadline;
    (void)out;
}

const struct mh_check_type mh_check_fpm = {
    .name = "fpm",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE,
    .create = fpm_create,
    .run = fpm_run,
};
