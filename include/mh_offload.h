/* mh_offload.h - a library call that cannot be bounded, run where an overrun can be abandoned.
 *
 * Some libraries resolve host names themselves with a blocking getaddrinfo() (Connector/C when
 * it must verify a TLS certificate against the name; librabbitmq). Such a call runs here on a
 * helper thread of its own. The check's worker waits for it no later than the run's deadline and
 * reports the run as timed out if it has not returned; the next run waits on the same call again
 * instead of starting another, so one check never has more than one such call in flight. When the
 * check goes away (reload, exit) the call is abandoned: whichever of the helper and the owner
 * comes second frees the job with `discard`, so neither ever waits for the other.
 *
 * Ownership: `job` belongs to the helper while the call runs, to the owner again once
 * mh_offload_wait() has returned true, and to `discard` once abandoned. */
#ifndef MH_OFFLOAD_H
#define MH_OFFLOAD_H

#include <stdbool.h>
#include <time.h>

struct mh_offload;

/* Starts `call(job)` on a new detached thread (all signals blocked). NULL when no thread could
 * be made; the job is then still the caller's. */
struct mh_offload *mh_offload_start(void (*call)(void *job), void (*discard)(void *job), void *job);

/* Waits until the call has returned or `deadline` (CLOCK_MONOTONIC) passes. On true the handle
 * is freed, `*slot` is NULL and the job is the caller's again; on false nothing changes. */
bool mh_offload_wait(struct mh_offload **slot, const struct timespec *deadline);

/* Lets go of a call without waiting; `discard(job)` runs when it returns (or now, if it has).
 * Sets *slot to NULL. NULL is fine. */
void mh_offload_abandon(struct mh_offload **slot);

#endif
