/*
 * park.h — the blocking layer's one way to wait (park.c): waiters, sudogs,
 * wait queues, park, wake.  The types live in runtime.h (a G embeds its
 * waiter); the fast paths are inline here, since a channel hand-off runs
 * each of them once or twice.
 */
#ifndef WEFT_PARK_H
#define WEFT_PARK_H

#include <stddef.h>

#include "runtime.h"

/* ---- waiters ------------------------------------------------------------------
 * The caller's waiter: its G's for a goroutine (gp, the caller's current
 * G); for a plain thread or g0, tw's (on the caller's stack), initialized.
 * Between waits a goroutine's waiter has waiting == NULL.  why: the wait
 * reason, to name the call in the fatal error of a goroutine that would
 * wait inside a syscall bracket (it has no P: its sudog cache and the
 * switch need one). */
void weft__insyscall(G *gp, const char *what) __attribute__((noreturn, cold));

static inline weft__waiter *weft__waiter_get(G *gp, weft__thread *tw, weft__waitreason why)
{
    if (likely(gp && !gp->issystem)) {
        if (unlikely(AO_load(&gp->atomicstatus) == Gsyscall))
            weft__insyscall(gp, weft__waitreason_call(why));
        return &gp->w;
    }
    tw->w.g = NULL;
    tw->w.waiting = NULL;
    tw->w.timer = NULL;
    weft__noteclear(&tw->note);
    /* A plain thread waits: deadlock detection must stand down (see
     * checkdead).  Load first: keeps the line shared once set;
     * store: a one-way flag, read under sched.lock. */
    if (!AO_load(&sched.foreign))
        AO_store(&sched.foreign, 1);
    return &tw->w;
}

static inline weft__thread *weft__thread_of(weft__waiter *w)
{
    return (weft__thread *)((char *)w - offsetof(weft__thread, w));
}

/* ---- sudogs -------------------------------------------------------------------
 * A sudog for w: from the current P's cache for a goroutine; *tsg (on the
 * caller's stack) for a plain thread.  Everything but what the caller
 * fills in (obj, elem, reason, ticket, casei) is reset. */
void weft__sudogrefill(P *pp);
void weft__sudogspill(P *pp);

static inline weft__sudog *weft__acquiresudog(weft__waiter *w, weft__sudog *tsg)
{
    weft__sudog *sg = tsg;
    if (likely(w->g)) {
        /* The one it kept from its last wait, or one from the P's cache (a
         * goroutine runs on an M that holds a P until it parks).  The
         * spare saves a hand-off's two cache operations: a quarter of the
         * park path's instructions. */
        sg = w->spare;
        if (likely(sg)) {
            w->spare = NULL;
        } else {
            P *pp = w->g->m->p;
            if (unlikely(pp->nsudogcache == 0))
                weft__sudogrefill(pp);
            sg = pp->sudogcache[--pp->nsudogcache];
        }
    }
    sg->w = w;
    sg->elem = NULL;
    sg->waitlink = NULL;
    sg->isselect = false;
    sg->success = false;
    return sg;
}

/* Kept as the goroutine's spare, or back to the P's cache (a thread's own:
 * nothing to do).  It must be off every queue. */
static inline void weft__releasesudog(weft__sudog *sg)
{
    weft__waiter *w = sg->w;
    G *gp = w->g;
    if (unlikely(!gp))
        return;
    if (WEFT_DEBUG && unlikely(sg->next || sg->prev))
        weft__throw("releasesudog: sudog still queued");
    if (likely(!w->spare)) {
        w->spare = sg;
        return;
    }
    P *pp = gp->m->p;
    if (unlikely(pp->nsudogcache == P_SUDOG_CACHE))
        weft__sudogspill(pp);
    pp->sudogcache[pp->nsudogcache++] = sg;
}

/* A dead goroutine's spare goes back to pp's cache (gfput). */
static inline void weft__waiter_drop(P *pp, weft__waiter *w)
{
    weft__sudog *sg = w->spare;
    if (!sg)
        return;
    w->spare = NULL;
    if (unlikely(pp->nsudogcache == P_SUDOG_CACHE))
        weft__sudogspill(pp);
    pp->sudogcache[pp->nsudogcache++] = sg;
}

/* ---- wait queues, under the lock of the object that owns them -------------------
 * q->first is read without the lock by sema.c's release (a hint, see
 * there), so every write of it is a single store. */
static inline void weft__waitq_setfirst(weft__waitq *q, weft__sudog *sg)
{
    AO_store((AO_t *)&q->first, (AO_t)sg);
}

static inline void weft__waitq_push(weft__waitq *q, weft__mutex *lock, weft__sudog *sg)
{
    sg->q = q;
    sg->lock = lock;
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        weft__waitq_setfirst(q, sg);
    q->last = sg;
}

void weft__waitq_pushfront(weft__waitq *q, weft__mutex *lock, weft__sudog *sg);

/* Takes the first sudog that can still be woken — a select's only if this
 * wins its selectdone — or NULL.  A select's sudog it loses is left off the
 * queue, its q cleared (its select's pass 3 skips it). */
static inline weft__sudog *weft__waitq_pop(weft__waitq *q)
{
    for (;;) {
        weft__sudog *sg = q->first;
        if (!sg)
            return NULL;
        weft__sudog *y = sg->next;
        if (y) {
            y->prev = NULL;
            weft__waitq_setfirst(q, y);
            sg->next = NULL;
        } else {
            weft__waitq_setfirst(q, NULL);
            q->last = NULL;
        }
        /* CAS-full: exactly one party (an operation on any of the select's
         * channels, or its timeout) wins the right to end this select; full
         * so that the winner's writes to it (the value, success, param),
         * made after the CAS, cannot be reordered before it. */
        if (unlikely(sg->isselect) && !AO_compare_and_swap_full(&sg->w->selectdone, 0, 1)) {
            sg->q = NULL;   /* off its queue for good (see weft__cancelwaits) */
            continue;
        }
        return sg;
    }
}

/* Unlinks sg if it is still on q (Go's dequeueSudoG); true if it was. */
bool weft__waitq_remove(weft__waitq *q, weft__sudog *sg);

/* ---- park and wake -------------------------------------------------------------
 * Blocks the calling goroutine or plain thread, whose sudogs (w->waiting)
 * the caller queued under the lock(s) that unlockf(gp, arg) releases
 * (NULL: no lock).  A goroutine parks first and unlockf runs only once it
 * is off its stack, so no waker can see it half-parked; a plain thread
 * unlocks and sleeps on its note.  deadline: absolute nanotime, 0 for
 * none.  Returns 1 if a waker ended the wait (w->param is its sudog), 0 on
 * timeout, -ENOMEM if no timer could be armed (the wait was then
 * cancelled at once). */
int weft__park_slow(weft__waiter *w, weft__unlockf unlockf, void *arg, weft__waitreason r,
                    int64_t deadline);

static inline int weft__park(weft__waiter *w, weft__unlockf unlockf, void *arg,
                             weft__waitreason r, int64_t deadline)
{
    if (unlikely(!w->g || deadline))
        return weft__park_slow(w, unlockf, arg, r, deadline);
    /* A goroutine without a deadline: unlockf is the commit itself.  No
     * waker can see w before unlockf releases the object's lock. */
    w->param = NULL;
    if (WEFT_DEBUG)
        w->g->parking = true;
    weft__gopark(unlockf, arg, r);
    if (WEFT_DEBUG)
        w->g->parking = false;
    return 1;
}

/* Ends the wait of the waiter behind sg, which the caller took off its
 * queue (and, for a select, won): records sg as w->param and readies the
 * goroutine (into runnext if next) or wakes the thread.  Called after the
 * queue's lock is released; sg may be reused as soon as this returns. */
static inline void weft__wake(weft__sudog *sg, bool next)
{
    weft__waiter *w = sg->w;
    w->param = sg;
    if (likely(w->g))
        weft__ready(w->g, next);    /* its run-queue put publishes our writes */
    else
        weft__notewakeup(&weft__thread_of(w)->note); /* CAS-full; the sleeper loads with acquire */
}

/* Wakes every sudog of a list linked through next (taken off its queue
 * under the lock, which the caller has released since), in list order. */
static inline void weft__wakelist(weft__sudog *head, bool next)
{
    while (head) {
        weft__sudog *sg = head;
        head = sg->next;    /* read before the wake: the waiter may reuse sg */
        sg->next = sg->prev = NULL;
        weft__wake(sg, next);
    }
}

/* sync.c: undoes what a cancelled semaphore wait had registered in its
 * sync object (a waiter count, a reader).  queued: it was still queued;
 * false: a release had already handed it a unit it never took. */
void weft__sync_cancelled(weft__sudog *sg, bool queued);

#endif
