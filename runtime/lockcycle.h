/*
 * lockcycle.h — lock cycles among weft_mutex holders (lockcycle.c), the
 * deadlock Go cannot see: goroutines (or plain threads) each blocked on a
 * weft_mutex that the next one holds, the last holding the first's.
 */
#ifndef WEFT_LOCKCYCLE_H
#define WEFT_LOCKCYCLE_H

#include "runtime.h"

/* Who holds a weft_mutex, as its owner word says: a goroutine's goid << 1,
 * or a plain thread's (or a g0's) kernel thread id << 1 | 1.  Never 0,
 * which means "nobody", and never reused while the holder lives, so a
 * stale word can only name a holder that has gone, never mistake one for
 * another.  A goroutine's costs one load; a thread's comes from a
 * thread-local it computes once. */
uintptr_t weft__lockholder_thread(void) __attribute__((cold));

static inline uintptr_t weft__lockholder(G *gp)
{
    if (likely(gp && !gp->issystem))
        return (uintptr_t)gp->goid << 1;
    return weft__lockholder_thread();
}

/* One mutex wait, registered for as long as its waiter is inside
 * weft_mutex_lock's slow path (between its first park and getting the
 * mutex), in a table other waiters look holders up in.  It lives on the
 * waiter's stack. */
typedef struct weft__lockwait {
    uintptr_t holder;       /* const while registered: the waiter, as an owner word names it */
    weft_mutex *m;          /* const while registered: the mutex it waits for */
    G *g;                   /* const while registered: the goroutine; NULL for a thread */
    uint64_t seq;           /* const while registered: which wait (its bucket's count) */
    bool rw;                /* const while registered: m is a weft_rwmutex's writer lock */
    bool reported;          /* its bucket's lock: a cycle through this wait was reported */
    struct weft__lockwait *next, *prev; /* its bucket's lock: its bucket's chain */
} weft__lockwait;

/* Before each park in weft_mutex_lock's slow path (SCHEDDEBUG lockcycle
 * not 0): registers lw for m the first time (registered false), then
 * looks for a cycle through the caller and reports it (once; fatally
 * with lockcycle=fatal).  Returns with lw registered. */
void weft__lockcycle_block(weft__lockwait *lw, weft_mutex *m, bool rw, bool registered);
/* The wait is over (the caller got m): unregisters lw. */
void weft__lockcycle_unblock(weft__lockwait *lw);
/* Shutdown (every M stopped): forgets the goroutines' waits, whose
 * stacks are about to be freed; plain threads' stay theirs. */
void weft__lockcycle_shutdown(void);

/* Cycles reported so far (atomic: a count, bumped once the report is
 * written; tests/prog_lockcycle.c waits for it). */
extern AO_t weft__lockcycles;

/* Every cycle reported so far (the newest 8 in full): a line with their
 * count, then each one's description lines, as its report began; nothing
 * if none.  Takes no lock: SIGQUIT's dump and the debug server. */
struct weft__out;
void weft__lockcycle_print(struct weft__out *o);

#endif
