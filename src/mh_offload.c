/* mh_offload.c - abandonable helper threads for unbounded library calls. See mh_offload.h.
 *
 * `lock` guards `done` and `abandoned`; `finished` is signalled when the call returns. The
 * handle is freed by the second of the two parties to let go: the helper when it finds the call
 * abandoned, or the owner in mh_offload_wait()/mh_offload_abandon() when the call has returned. */
#include "mh_offload.h"

#include "mh_check.h"
#include "mh_thread.h"

#include <pthread.h>
#include <stdlib.h>

struct mh_offload {
    void (*call)(void *job);
    void (*discard)(void *job);
    void *job;
    pthread_mutex_t lock;
    pthread_cond_t finished; /* on CLOCK_MONOTONIC */
    bool done;
    bool abandoned;
};

static void handle_free(struct mh_offload *h)
{
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->finished);
    free(h);
}

static void *helper_main(void *arg)
{
    struct mh_offload *h = arg;
    pthread_setname_np(pthread_self(), "mh-offload");
    h->call(h->job);
    pthread_mutex_lock(&h->lock);
    h->done = true;
    bool orphan = h->abandoned;
    pthread_cond_broadcast(&h->finished);
    pthread_mutex_unlock(&h->lock);
    if (orphan) {
        h->discard(h->job);
        handle_free(h);
    }
    return NULL;
}

struct mh_offload *mh_offload_start(void (*call)(void *job), void (*discard)(void *job), void *job)
{
    struct mh_offload *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    *h = (struct mh_offload){.call = call, .discard = discard, .job = job};
    pthread_mutex_init(&h->lock, NULL);
    mh_cond_init_monotonic(&h->finished);
    if (mh_thread_spawn(helper_main, h, 256 * 1024) != 0) {
        handle_free(h);
        return NULL;
    }
    return h;
}

bool mh_offload_wait(struct mh_offload **slot, const struct timespec *deadline)
{
    struct mh_offload *h = *slot;
    pthread_mutex_lock(&h->lock);
    while (!h->done)
        if (pthread_cond_timedwait(&h->finished, &h->lock, deadline) != 0)
            break;
    bool done = h->done;
    pthread_mutex_unlock(&h->lock);
    if (done) {
        handle_free(h);
        *slot = NULL;
    }
    return done;
}

void mh_offload_abandon(struct mh_offload **slot)
{
    struct mh_offload *h = *slot;
    *slot = NULL;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    bool done = h->done;
    h->abandoned = true;
    pthread_mutex_unlock(&h->lock);
    if (done) {
        h->discard(h->job);
        handle_free(h);
    }
}
