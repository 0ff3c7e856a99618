/* mh_history.c - a fixed ring of recent transitions. See mh_history.h.
 *
 * `lock` guards the ring; it is held only to copy entries in or out. */
#include "mh_history.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mh_history {
    pthread_mutex_t lock;
    uint64_t total; /* ever added; the next slot is total % MH_HISTORY_MAX */
    struct mh_transition ring[MH_HISTORY_MAX];
};

struct mh_history *mh_history_new(void)
{
    struct mh_history *h = calloc(1, sizeof *h);
    if (h)
        pthread_mutex_init(&h->lock, NULL);
    return h;
}

void mh_history_free(struct mh_history *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void mh_history_add(struct mh_history *h, const char *check, const char *measurement,
                    enum mh_status from, enum mh_status to, bool first, const char *reason)
{
    if (!h)
        return;
    struct mh_transition t = {.from = from, .to = to, .first = first};
    clock_gettime(CLOCK_REALTIME, &t.when);
    snprintf(t.check, sizeof t.check, "%s", check);
    snprintf(t.measurement, sizeof t.measurement, "%s", measurement);
    snprintf(t.reason, sizeof t.reason, "%s", reason); /* same size as an output: no cut */
    pthread_mutex_lock(&h->lock);
    h->ring[h->total % MH_HISTORY_MAX] = t;
    h->total++;
    pthread_mutex_unlock(&h->lock);
}

int mh_history_copy(struct mh_history *h, struct mh_transition *out, uint64_t *total)
{
    *total = 0;
    if (!h)
        return 0;
    pthread_mutex_lock(&h->lock);
    uint64_t n = h->total < MH_HISTORY_MAX ? h->total : MH_HISTORY_MAX;
    uint64_t first = h->total - n;
    for (uint64_t i = 0; i < n; i++)
        out[i] = h->ring[(first + i) % MH_HISTORY_MAX];
    *total = h->total;
    pthread_mutex_unlock(&h->lock);
    return (int)n;
}
