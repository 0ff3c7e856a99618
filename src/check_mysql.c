/* check_mysql.c - placeholder; the mysql check type lands with its own issue. */
#include "mh_check.h"

static int mysql_create(struct mh_check *check, struct mh_section *sec)
{
    (void)check;
    return mh_section_error(sec, "type", "the mysql check is not implemented yet");
}

static void mysql_run(struct mh_check *check, const struct timespec *deadline, struct mh_run *out)
{
    (void)check;
    (void)deadline;
    (void)out;
}

const struct mh_check_type mh_check_mysql = {
    .name = "mysql",
    .component_type = "datastore",
    .default_affects = MH_AFFECTS_NODE,
    .create = mysql_create,
    .run = mysql_run,
};
