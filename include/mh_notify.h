/* mh_notify.h - tells systemd how we are (READY, STATUS, WATCHDOG, ...) without ever blocking.
 *
 * sd_notify() blocks while the manager's notify socket queue is full, and that queue holds only
 * net.unix.max_dgram_qlen datagrams (10 unless systemd runs as PID 1 and raises it). A main loop
 * blocked there cannot take SIGTERM: the sd_notify test hung the daemon that way with a socket
 * nobody read. So the main loop only queues messages and one thread of this module sends them,
 * in order, with libsystemd's sd_notify(). */
#ifndef MH_NOTIFY_H
#define MH_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Messages waiting beyond this are dropped (and counted): the manager is not reading. */
#define MH_NOTIFY_QUEUE   16
#define MH_NOTIFY_MSG_MAX 256

struct mh_notify;

/* Starts the sender when $NOTIFY_SOCKET is set. Returns a handle; with no $NOTIFY_SOCKET (or no
 * memory or thread) the handle drops every message, so callers need no checks. Never NULL. */
struct mh_notify *mh_notify_start(void);

/* Queues `state` (for example "READY=1") and returns at once. Returns false when it was dropped
 * because the queue is full or notification is off. Thread-safe. */
bool mh_notify_post(struct mh_notify *n, const char *state);

/* How often to send WATCHDOG=1, in ms: half of $WATCHDOG_USEC, or 0 when systemd did not ask for
 * a watchdog (or asked another process). */
int64_t mh_notify_watchdog_interval_ms(void);

/* Messages dropped so far because the queue was full. */
unsigned long mh_notify_dropped(struct mh_notify *n);

/* Gives the sender up to `flush_ms` to send what is queued (STOPPING=1, say), then stops it and
 * frees `n`. A sender still stuck in sd_notify() is left behind, with `n`, as the process is
 * about to exit. */
void mh_notify_stop(struct mh_notify *n, int flush_ms);

#endif
