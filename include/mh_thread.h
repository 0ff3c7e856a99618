/* mh_thread.h - the one way this daemon starts a helper thread.
 *
 * Every thread but the main one is detached (nobody ever joins, so nobody ever waits on one) and
 * has every signal blocked: signals belong to the main loop, which takes them with
 * sigtimedwait(). Used by the check workers, the log writer, abandonable library calls and the
 * registry reaper. */
#ifndef MH_THREAD_H
#define MH_THREAD_H

#include <stddef.h>

/* Starts fn(arg) on a detached thread with `stack_size` bytes of stack. Returns 0 or an errno
 * value; on failure fn never runs and arg is still the caller's. */
int mh_thread_spawn(void *(*fn)(void *), void *arg, size_t stack_size);

#endif
