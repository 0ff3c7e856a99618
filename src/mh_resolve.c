/* mh_resolve.c - deadline-bounded host name lookups that never make anyone wait. See
 * mh_resolve.h.
 *
 * The lookup struct is shared between its owner (a check's worker) and glibc's resolver thread,
 * which writes the result and then calls on_done(). `lock` guards `done` and `abandoned`: whoever
 * comes second frees it, so neither side waits for the other. */
#include "mh_resolve.h"

#include "mh_check.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mh_lookup {
    struct gaicb cb;
    struct addrinfo hints;
    char name[256];
    pthread_mutex_t lock;
    bool done;      /* glibc has finished with the request */
    bool abandoned; /* the owner has let go of it */
};

static void lookup_free(struct mh_lookup *l)
{
    if (l->cb.ar_result)
        freeaddrinfo(l->cb.ar_result);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Runs on a thread of glibc's when the lookup has finished. */
static void on_done(union sigval value)
{
    struct mh_lookup *l = value.sival_ptr;
    pthread_mutex_lock(&l->lock);
    l->done = true;
    bool orphan = l->abandoned;
    pthread_mutex_unlock(&l->lock);
    if (orphan)
        lookup_free(l);
}

static struct mh_lookup *lookup_start(const char *host, char *err, size_t errlen)
{
    struct mh_lookup *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "%s: out of memory", host);
        return NULL;
    }
    snprintf(l->name, sizeof l->name, "%s", host);
    pthread_mutex_init(&l->lock, NULL);
    l->hints.ai_family = AF_UNSPEC;
    l->hints.ai_socktype = SOCK_STREAM;
    l->cb.ar_name = l->name;
    l->cb.ar_request = &l->hints;
    struct sigevent sev = {.sigev_notify = SIGEV_THREAD,
                           .sigev_notify_function = on_done,
                           .sigev_value = {.sival_ptr = l}};
    struct gaicb *list[] = {&l->cb};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, &sev);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
        lookup_free(l);
        return NULL;
    }
    return l;
}

/* Waits on the lookup until it is done or the deadline passes. */
static bool lookup_wait(struct mh_lookup *l, const struct timespec *deadline)
{
    const struct gaicb *list[] = {&l->cb};
    mh_ms left;
    while (gai_error(&l->cb) == EAI_INPROGRESS && (left = mh_deadline_left(deadline)) > 0) {
        struct timespec wait = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000L};
        gai_suspend(list, 1, &wait);
    }
    return gai_error(&l->cb) != EAI_INPROGRESS;
}

enum mh_lookup_result mh_lookup_host(struct mh_lookup **slot, const char *host,
                                     const struct timespec *deadline, struct addrinfo **res,
                                     char *err, size_t errlen)
{
    *res = NULL;
    if (*slot && strcmp((*slot)->name, host) != 0)
        mh_lookup_abandon(slot);
    if (!*slot && !(*slot = lookup_start(host, err, errlen)))
        return MH_LOOKUP_ERROR;
    struct mh_lookup *l = *slot;
    if (!lookup_wait(l, deadline)) {
        snprintf(err, errlen, "%s: no answer from DNS in time", host);
        return MH_LOOKUP_TIMEOUT;
    }
    int rc = gai_error(&l->cb);
    if (rc == 0 && l->cb.ar_result) {
        *res = l->cb.ar_result; /* handed over: the caller frees it */
        l->cb.ar_result = NULL;
    } else {
        snprintf(err, errlen, "%s: %s", host, rc ? gai_strerror(rc) : "no address");
    }
    mh_lookup_abandon(slot); /* finished: a later connect looks up afresh (DNS failover) */
    return *res ? MH_LOOKUP_OK : MH_LOOKUP_ERROR;
}

void mh_lookup_abandon(struct mh_lookup **slot)
{
    struct mh_lookup *l = *slot;
    *slot = NULL;
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    bool done = l->done;
    l->abandoned = true;
    pthread_mutex_unlock(&l->lock);
    if (done)
        lookup_free(l);
}

bool mh_is_numeric_host(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}
