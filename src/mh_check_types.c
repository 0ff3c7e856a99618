/* mh_check_types.c - the table of check types. Adding a type is one line here. */
#include "mh_check.h"

#include <string.h>

extern const struct mh_check_type mh_check_disk;
extern const struct mh_check_type mh_check_drain;
extern const struct mh_check_type mh_check_mysql;
extern const struct mh_check_type mh_check_redis;
extern const struct mh_check_type mh_check_amqp;
extern const struct mh_check_type mh_check_fpm;
extern const struct mh_check_type mh_check_opensearch;
extern const struct mh_check_type mh_check_magento;

static const struct mh_check_type *const types[] = {
    &mh_check_disk, &mh_check_drain,      &mh_check_mysql, &mh_check_redis,
    &mh_check_fpm,  &mh_check_opensearch, &mh_check_amqp,  &mh_check_magento,
};

const struct mh_check_type *mh_check_type_find(const char *name)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(types[i]->name, name) == 0)
            return types[i];
    return NULL;
}

const char *mh_check_type_names(void)
{
    return "disk, drain, mysql, redis, fpm, magento, opensearch, amqp";
}
