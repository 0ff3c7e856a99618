/* fake_check.h - builds a struct mh_check by hand for unit tests of the registry and rendering,
 * which need checks with given measurements and effects but no config file. */
#ifndef FAKE_CHECK_H
#define FAKE_CHECK_H

#include "mh_check.h"

#include <stdio.h>
#include <string.h>

/* Fills `c` as the config loader would: interval 2 s, timeout 1 s, max_age 6 s, rise and fall 1,
 * and `n` measurements named `meas` with effects `affects`. */
static inline void fake_check(struct mh_check *c, const char *name,
                              const struct mh_check_type *type, const struct mh_server_conf *server,
                              int n, const char *const *meas, const unsigned *affects)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->type = type;
    c->server = server;
    c->interval = 2000;
    c->timeout = 1000;
    c->max_age = 6000;
    c->rise = c->fall = 1;
    for (int i = 0; i < n; i++) {
        snprintf(c->meas[i].name, sizeof c->meas[i].name, "%s", meas[i]);
        c->meas[i].affects = affects[i];
    }
    c->n_meas = n;
}

#endif
