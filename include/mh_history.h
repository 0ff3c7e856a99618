/* mh_history.h - the recent transitions of every measurement, for the on-call view.
 *
 * A bounded ring of the last MH_HISTORY_MAX effective-status changes, for the whole daemon:
 * time, check:measurement, from -> to and the reason. It lives as long as the process (one per
 * daemon, shared by the registries a reload replaces) and is memory only: a restart loses it.
 * Adding is a copy into a preallocated slot: no allocation and no I/O, so it may be called under
 * the registry lock (which is taken before the history's own lock, never after). */
#ifndef MH_HISTORY_H
#define MH_HISTORY_H

#include "mh_check.h"

#include <stdint.h>
#include <time.h>

#define MH_HISTORY_MAX 100

struct mh_transition {
    struct timespec when; /* CLOCK_REALTIME */
    char check[MH_NAME_MAX];
    char measurement[MH_NAME_MAX];
    enum mh_status from, to;
    bool first; /* from "starting": the first result */
    char reason[MH_OUTPUT_MAX];
};

struct mh_history;

/* Returns NULL on out of memory. */
struct mh_history *mh_history_new(void);
void mh_history_free(struct mh_history *h);

/* Records one transition. NULL `h` is fine (no history kept). */
void mh_history_add(struct mh_history *h, const char *check, const char *measurement,
                    enum mh_status from, enum mh_status to, bool first, const char *reason);

/* Copies the kept transitions, oldest first, into `out` (room for MH_HISTORY_MAX). Returns how
 * many; `*total` gets how many were ever added (more than kept once the ring overflowed). */
int mh_history_copy(struct mh_history *h, struct mh_transition *out, uint64_t *total);

#endif
