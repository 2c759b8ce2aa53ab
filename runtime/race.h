/*
 * race.h — what weft tells race detectors (race.c): ThreadSanitizer in a
 * program built with -fsanitize=thread and linked with the ordinary
 * libweft, and valgrind's helgrind and DRD.
 *
 * weft's own code is not instrumented, so a detector sees neither its
 * stack switches nor the happens-before edges its primitives create.  It
 * is told both, as Go's runtime tells its race detector:
 *
 *   - every goroutine is a ThreadSanitizer fiber, created by weft_go (the
 *     creation is the spawn -> child edge), switched to without
 *     synchronisation (two goroutines that run one after the other on one
 *     M are not ordered by that), and its stack's history is forgotten
 *     when a new goroutine gets the stack;
 *   - each primitive releases on the side that publishes (unlock, send,
 *     close, Done, the end of a Once's function) and acquires on the side
 *     that observes (lock, receive, Wait, a Once already done), naming the
 *     object, or for a buffered channel the slot, as the sync address.
 *
 * Found at run time (race.c, at boot): the interfaces are referenced
 * weakly, valgrind's through its client requests.  Without a detector each
 * hook is a load and a branch that is never taken.
 */
#ifndef WEFT_RACE_H
#define WEFT_RACE_H

#include "runtime.h"

extern bool weft__race;     /* const after weft__env_init: a race detector is watching */
extern bool weft__race_drd; /* const after weft__env_init: DRD is (stack.c registers no stack: race.c) */

void weft__race_init(void);                         /* env.c, at boot */
bool weft__race_vgtool(void);   /* running under helgrind or DRD (any time, even before boot) */
void weft__race_acquire_slow(const void *addr);
void weft__race_release_slow(const void *addr);
void weft__race_minit_slow(G *g0);
void weft__race_newg_slow(G *gp);
void weft__race_stackstart_slow(G *gp);
void weft__race_gostart_slow(G *gp);
void weft__race_freeg_slow(G *gp);

/* The caller observes what was released at addr: what those releases
 * followed happens before what the caller does next. */
static inline void weft__race_acquire(const void *addr)
{
    if (unlikely(weft__race))
        weft__race_acquire_slow(addr);
}

/* What the caller did so far happens before whatever acquires addr. */
static inline void weft__race_release(const void *addr)
{
    if (unlikely(weft__race))
        weft__race_release_slow(addr);
}

/* newproc, from the creator, once gp has its stack, goid and first
 * frame: its fiber (created here, so that the creation orders the
 * creator's past before the goroutine) and a stack with no history. */
static inline void weft__race_newg(G *gp)
{
    if (unlikely(weft__race))
        weft__race_newg_slow(gp);
}

/* Goroutine gp has just been given the stack it will run on, on the
 * thread that will run it, before its first frame is built
 * (weft__gstart): a stack without a past. */
static inline void weft__race_stackstart(G *gp)
{
    if (unlikely(weft__race))
        weft__race_stackstart_slow(gp);
}

/* The first code of goroutine gp, on its stack, before the switch's
 * after-action: the other end of newg's edge and of the switch, for
 * valgrind's tools (TSan's is the fiber's creation). */
static inline void weft__race_gostart(G *gp)
{
    if (unlikely(weft__race))
        weft__race_gostart_slow(gp);
}

/* A new M's g0, on its thread: the thread's own fiber. */
static inline void weft__race_minit(G *g0)
{
    if (unlikely(weft__race))
        weft__race_minit_slow(g0);
}

/* Between the two, ThreadSanitizer records nothing the calling thread
 * does: for the runtime's own use of what TSan's interceptors track (fds)
 * where the order comes from weft's own synchronisation, e.g. closing
 * the poller at shutdown after every M has gone. */
void weft__race_ignore_begin_slow(void);
void weft__race_ignore_end_slow(void);
static inline void weft__race_ignore_begin(void)
{
    if (unlikely(weft__race))
        weft__race_ignore_begin_slow();
}
static inline void weft__race_ignore_end(void)
{
    if (unlikely(weft__race))
        weft__race_ignore_end_slow();
}

/* helgrind and DRD: [p, p + n) is weft's own, accessed with atomics they
 * cannot see, or handed between threads through lock-free queues and
 * caches; they check nothing there. */
void weft__race_untrack_slow(void *p, size_t n);
/* (p is not const, though nothing is read: gcc takes a const pointer to
 * freshly allocated memory for a read of uninitialised bytes.) */
static inline void weft__race_untrack(void *p, size_t n)
{
    if (unlikely(weft__race))
        weft__race_untrack_slow(p, n);
}

/* gp's struct is freed (the end of weft_main). */
static inline void weft__race_freeg(G *gp)
{
    if (unlikely(weft__race))
        weft__race_freeg_slow(gp);
}

#endif
