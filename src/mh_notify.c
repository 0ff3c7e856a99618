/* mh_notify.c - a queue and one sender thread between the main loop and sd_notify().
 *
 * Why a thread: sd_notify() may block (see mh_notify.h), and the main loop must stay free to take
 * signals. Why a queue and not "latest state": RELOADING=1 must reach systemd before the READY=1
 * that ends the reload, so order matters and nothing is coalesced. */
#include "mh_notify.h"
#include "mh_check.h" /* deadlines */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

struct mh_notify {
    bool enabled; /* false: post() drops everything; set once at start */
    pthread_t sender;
    /* `lock` guards every field below; the sender never holds it across sd_notify(). */
    pthread_mutex_t lock;
    pthread_cond_t wake;    /* signalled when a message is queued or stopping is set */
    pthread_cond_t drained; /* signalled when the sender finished a message */
    char queue[MH_NOTIFY_QUEUE][MH_NOTIFY_MSG_MAX];
    unsigned head, count; /* ring: messages queue[head .. head+count) */
    bool sending;         /* the sender is inside sd_notify() */
    bool stopping;
    unsigned long dropped;
};

/* Handed out when calloc() fails: enabled is false, so nothing else of it is touched. */
static struct mh_notify out_of_memory;

static void *sender_main(void *arg)
{
    struct mh_notify *n = arg;
    char msg[MH_NOTIFY_MSG_MAX];
    pthread_mutex_lock(&n->lock);
    for (;;) {
        while (n->count == 0 && !n->stopping)
            pthread_cond_wait(&n->wake, &n->lock);
        if (n->count == 0)
            break; /* stopping, and everything is sent */
        memcpy(msg, n->queue[n->head], sizeof msg);
        n->head = (n->head + 1) % MH_NOTIFY_QUEUE;
        n->count--;
        n->sending = true;
        pthread_mutex_unlock(&n->lock);
        (void)sd_notify(0, msg); /* nothing to do on failure: systemd is not listening */
        pthread_mutex_lock(&n->lock);
        n->sending = false;
        pthread_cond_broadcast(&n->drained);
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

struct mh_notify *mh_notify_start(void)
{
    struct mh_notify *n = calloc(1, sizeof *n);
    if (!n)
        return &out_of_memory;
    pthread_mutex_init(&n->lock, NULL);
    pthread_cond_init(&n->wake, NULL);
    mh_cond_init_monotonic(&n->drained);
    const char *socket = getenv("NOTIFY_SOCKET");
    n->enabled = socket && *socket && pthread_create(&n->sender, NULL, sender_main, n) == 0;
    if (n->enabled)
        pthread_setname_np(n->sender, "mh-notify"); /* for top -H, and for the tests */
    return n;
}

bool mh_notify_post(struct mh_notify *n, const char *state)
{
    if (!n->enabled)
        return false;
    pthread_mutex_lock(&n->lock);
    bool queued = n->count < MH_NOTIFY_QUEUE && !n->stopping;
    if (queued) {
        char *slot = n->queue[(n->head + n->count) % MH_NOTIFY_QUEUE];
        strncpy(slot, state, MH_NOTIFY_MSG_MAX - 1);
        slot[MH_NOTIFY_MSG_MAX - 1] = '\0';
        n->count++;
        pthread_cond_signal(&n->wake);
    } else {
        n->dropped++;
    }
    pthread_mutex_unlock(&n->lock);
    return queued;
}

int64_t mh_notify_watchdog_interval_ms(void)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    int64_t ms = (int64_t)(usec / 2000);
    return ms > 0 ? ms : 1;
}

unsigned long mh_notify_dropped(struct mh_notify *n)
{
    if (!n->enabled)
        return 0;
    pthread_mutex_lock(&n->lock);
    unsigned long dropped = n->dropped;
    pthread_mutex_unlock(&n->lock);
    return dropped;
}

/* Waits until the queue is empty and nothing is in flight, or `ms` passed. Caller holds lock. */
static bool wait_flushed_locked(struct mh_notify *n, int ms)
{
    struct timespec until;
    mh_deadline_in(&until, ms);
    while (n->count > 0 || n->sending)
        if (pthread_cond_timedwait(&n->drained, &n->lock, &until) == ETIMEDOUT)
            return n->count == 0 && !n->sending;
    return true;
}

void mh_notify_stop(struct mh_notify *n, int flush_ms)
{
    if (n == &out_of_memory)
        return;
    if (n->enabled) {
        pthread_mutex_lock(&n->lock);
        bool flushed = wait_flushed_locked(n, flush_ms);
        n->stopping = true;
        pthread_cond_signal(&n->wake);
        pthread_mutex_unlock(&n->lock);
        if (!flushed) {
            /* The sender is stuck in sd_notify(): joining would hang the exit. */
            pthread_detach(n->sender);
            return;
        }
        pthread_join(n->sender, NULL);
    }
    pthread_mutex_destroy(&n->lock);
    pthread_cond_destroy(&n->wake);
    pthread_cond_destroy(&n->drained);
    free(n);
}
