/*
 * park.c — the one way to wait: waiters, sudogs, wait queues, parking,
 * waking and timeouts (Go's sudog, gopark/goready and acquireSudog).
 *
 * Channels, select, semaphores and the sync package on them, conds, sleep
 * and fd waits all block the same way:
 *
 *   1. w = weft__waiter_get(gp, &tw, why): the goroutine's waiter (embedded in
 *      its G), or for a plain thread one on its own stack (tw).
 *   2. Under the object's lock: sg = weft__acquiresudog(w, &tsg), fill in
 *      what the wait needs (obj, elem, ticket, reason), queue it on the
 *      object's wait queue (weft__waitq_push) and link it on w->waiting.
 *   3. weft__park(w, unlockf, arg, reason, deadline).  A goroutine switches
 *      off its stack first and unlockf releases the object's lock only
 *      then, on whatever context runs next on that M, so no waker can see
 *      it half-parked; a plain thread releases the lock and sleeps on its
 *      note.
 *   4. A waker takes the sudog off the queue under the object's lock (for
 *      a select it must first win w->selectdone, so exactly one of the
 *      select's channels — or its timeout — ends the wait), records the
 *      outcome in the sudog, releases the lock and calls weft__wake(sg),
 *      which sets w->param = sg and readies the goroutine or wakes the note.
 *   5. Back from weft__park, the waiter reads the outcome and releases its
 *      sudogs (weft__releasesudog).
 *
 * A goroutine's sudogs never live on its stack: they come from a per-P
 * cache (refilled from a central list, which grows in blocks), so a
 * parked goroutine's stack holds nothing that another thread can reach,
 * and what the queues hold stays valid for as long as they hold it.  A
 * plain thread, which cannot go away while it waits, uses one on its own
 * stack.
 *
 * Timeouts.  A goroutine's timeout is its waiter's timer, armed in the
 * park's commit — after the switch, before unlockf — so it can never fire
 * for a goroutine that has not parked yet, and it exists before any waker
 * can run the goroutine again.  Its callback (timeout_fire) ends the wait
 * only if no waker has: for a select by winning selectdone (the select's
 * pass 3 unlinks its sudogs), otherwise by taking the sudog off its queue
 * under the queue's lock.  Back from the park, the goroutine deletes the
 * timer, which waits out a callback still running.  A plain thread sleeps
 * on its note with the deadline and cancels the same way; if a waker won,
 * its wake-up is on the way and the thread waits for it.
 *
 * Shutdown.  When weft_main's main returns, the goroutines still waiting
 * never run again; weft__cancelwaits takes their sudogs off the objects'
 * queues (and undoes what a semaphore wait registered in its sync object,
 * sync.c), so plain threads go on using those channels, mutexes, wait
 * groups and conds as if the waits had been cancelled.
 *
 * Lock order: the object's lock < the timer lock and sched.lock (the
 * commit arms the timer while the object's lock is still held; wake-ups
 * happen after it is released).
 */
#include <stdlib.h>
#include <string.h>

#include "park.h"
#include "race.h"

#define SUDOG_BLOCK 64      /* sudogs per central allocation */

/* ---- the sudog cache ------------------------------------------------------- */

typedef struct sudogblock {
    struct sudogblock *next;
    weft__sudog sg[SUDOG_BLOCK];
} sudogblock;

/* The slow path of weft__acquiresudog: moves half a cache of free sudogs
 * from the central list to pp, allocating a block when the list is empty. */
void weft__sudogrefill(P *pp)
{
    weft__lock(&sched.sudoglock);
    if (!sched.sudogfree) {
        sudogblock *b = calloc(1, sizeof *b);
        if (!b) {
            weft__unlock(&sched.sudoglock);
            weft__throw("out of memory allocating sudogs");
        }
        weft__race_untrack(b, sizeof *b);   /* weft's own (race.h) */
        b->next = sched.sudogblocks;
        sched.sudogblocks = b;
        for (int i = 0; i < SUDOG_BLOCK; i++) {
            b->sg[i].next = sched.sudogfree;
            sched.sudogfree = &b->sg[i];
        }
    }
    while (pp->nsudogcache < P_SUDOG_CACHE / 2 && sched.sudogfree) {
        weft__sudog *sg = sched.sudogfree;
        sched.sudogfree = sg->next;
        sg->next = NULL;
        pp->sudogcache[pp->nsudogcache++] = sg;
    }
    weft__unlock(&sched.sudoglock);
}

/* Moves pp's cache down to `keep` sudogs, the rest to the central list. */
static void sudogspill(P *pp, int keep)
{
    weft__lock(&sched.sudoglock);
    while (pp->nsudogcache > keep) {
        weft__sudog *sg = pp->sudogcache[--pp->nsudogcache];
        sg->next = sched.sudogfree;
        sched.sudogfree = sg;
    }
    weft__unlock(&sched.sudoglock);
}

/* The slow path of weft__releasesudog: the cache is full. */
void weft__sudogspill(P *pp)
{
    sudogspill(pp, P_SUDOG_CACHE / 2);
}

void weft__sudogcache_flush(P *pp)
{
    sudogspill(pp, 0);
}

void weft__sudogfreeall(void)
{
    sudogblock *b = sched.sudogblocks;
    while (b) {
        sudogblock *next = b->next;
        free(b);
        b = next;
    }
    sched.sudogblocks = NULL;
    sched.sudogfree = NULL;
}

/* ---- wait queues ------------------------------------------------------------- */

void weft__waitq_pushfront(weft__waitq *q, weft__mutex *lock, weft__sudog *sg)
{
    sg->q = q;
    sg->lock = lock;
    sg->prev = NULL;
    sg->next = q->first;
    if (q->first)
        q->first->prev = sg;
    else
        q->last = sg;
    weft__waitq_setfirst(q, sg);
}

bool weft__waitq_remove(weft__waitq *q, weft__sudog *sg)
{
    weft__sudog *x = sg->prev, *y = sg->next;
    if (x) {
        if (y) {
            x->next = y;
            y->prev = x;
        } else {
            x->next = NULL;
            q->last = x;
        }
    } else if (y) {
        y->prev = NULL;
        weft__waitq_setfirst(q, y);
    } else if (q->first == sg) {
        weft__waitq_setfirst(q, NULL);
        q->last = NULL;
    } else {
        return false;   /* already dequeued */
    }
    sg->next = sg->prev = NULL;
    return true;
}

/* ---- timeouts ------------------------------------------------------------------ */

/* Ends w's wait as a timeout unless a waker has ended it already; true if
 * it did.  Takes the lock of the queue the sudog is on; holds none. */
static bool cancel(weft__waiter *w)
{
    weft__sudog *sg = w->waiting;
    if (!sg)
        return true;        /* sleep: nothing can end it but the time */
    if (sg->isselect) {
        /* CAS-full: the race with weft__waitq_pop's CAS; select's pass 3
         * unlinks the sudogs under the channel locks. */
        return AO_compare_and_swap_full(&w->selectdone, 0, 1);
    }
    weft__lock(sg->lock);
    bool queued = weft__waitq_remove(sg->q, sg);
    if (queued)
        sg->q = NULL;       /* off for good: its object may go (weft__cancelwaits) */
    weft__unlock(sg->lock);
    return queued;
}

/* The waiter's timer fired (timer.c, on some M, no lock held).  The
 * goroutine is parked: the timer is armed only after it is. */
static void timeout_fire(G *gp, void *arg)
{
    if (cancel(arg))
        weft__ready(gp, false);
}

/* The wait cannot be armed (no memory for the timer): we still hold the
 * object's locks, so nobody else can end it.  Take the sudogs back and
 * release the locks; the caller resumes at once with -ENOMEM. */
static void nomem_cancel(G *gp, weft__waiter *w, weft__unlockf unlockf, void *arg)
{
    for (weft__sudog *sg = w->waiting; sg; sg = sg->waitlink) {
        weft__waitq_remove(sg->q, sg);
        sg->q = NULL;
    }
    AO_store(&w->selectdone, 1);  /* store: we hold every lock a waker needs */
    if (unlockf)
        unlockf(gp, arg);
}

/* The commit of a wait with a deadline, given to weft__gopark: runs on
 * the next context of the M once the goroutine is off its stack.  (A wait
 * without one gives the caller's unlockf to weft__gopark directly.) */
typedef struct {
    weft__waiter *w;
    weft__unlockf unlockf;
    void *arg;
    int64_t deadline;
    bool nomem;             /* out: the timer could not be armed */
} parkcommit_t;

static bool parkcommit(G *gp, void *arg)
{
    parkcommit_t *c = arg;  /* on gp's stack: valid until unlockf releases gp */
    weft__unlockf unlockf = c->unlockf;
    void *uarg = c->arg;
    weft__waiter *w = c->w;
    *w->timer = (weft__timer){ .when = c->deadline, .f = timeout_fire, .gp = gp, .arg = w,
                               .pp = NULL, .idx = -1 };
    if (unlikely(weft__addtimer(w->timer) != 0)) {
        /* No memory for the timer heap. */
        c->nomem = true;
        nomem_cancel(gp, w, unlockf, uarg);
        return false;
    }
    /* From here the timer may fire and ready gp: for a sleep (no unlockf)
     * nothing of gp's may be touched any more. */
    return unlockf ? unlockf(gp, uarg) : true;
}

/* weft__park's other cases: a plain thread, or a deadline. */
int weft__park_slow(weft__waiter *w, weft__unlockf unlockf, void *arg, weft__waitreason r,
                    int64_t deadline)
{
    /* No waker can see w before unlockf releases the object's lock. */
    w->param = NULL;
    if (!w->g) {
        /* A plain thread: unlock, sleep on the note. */
        weft__note *note = &weft__thread_of(w)->note;
        if (unlockf)
            unlockf(NULL, arg);
        if (!deadline) {
            weft__notesleep(note);
            return 1;
        }
        int64_t left = deadline - weft__nanotime();
        if (weft__notetsleep(note, left > 0 ? left : 0))
            return 1;
        if (cancel(w))
            return 0;
        weft__notesleep(note);  /* a waker won: its wake-up is on the way */
        return 1;
    }
    if (!deadline)
        return weft__park(w, unlockf, arg, r, 0);
    if (unlikely(!w->timer)) {
        if (!(w->timer = malloc(sizeof *w->timer))) {
            nomem_cancel(w->g, w, unlockf, arg);
            return -ENOMEM;
        }
        weft__race_untrack(w->timer, sizeof *w->timer);    /* weft's own (race.h) */
    }
    parkcommit_t c = { .w = w, .unlockf = unlockf, .arg = arg, .deadline = deadline };
    if (WEFT_DEBUG)
        w->g->parking = true;
    weft__gopark(parkcommit, &c, r);
    if (WEFT_DEBUG)
        w->g->parking = false;
    if (unlikely(c.nomem))
        return -ENOMEM;
    weft__deltimer(w->timer);   /* waits out a callback still running */
    return w->param ? 1 : 0;
}

/* ---- shutdown ------------------------------------------------------------------ */

void weft__cancelwaits(void)
{
    /* Two passes: first every goroutine's queued sudogs leave their
     * queues, then the sync objects are told.  An undo may unlock a mutex,
     * whose release must find no goroutine left to wake (only plain
     * threads).
     *
     * Only a sudog still on its queue is touched: its object is alive (it
     * holds a waiter).  One that is off — it fired (w->param), a timeout
     * or a lost select race took it off (q cleared) — may belong to an
     * object already freed: a goroutine woken but not yet run when main
     * returned, whose channel its waker has since freed.  (The exception:
     * a mutex or RWMutex that handed a woken goroutine a unit it never
     * took is told, in pass 2, to let it go; freeing a lock some goroutine
     * is taking is a use after free in Go terms too.)
     *
     * load of allg: every M has exited (joined), so the list is final and
     * its writes are visible; the load is only for the type of the word. */
    for (G *gp = (G *)AO_load(&weft__allg); gp; gp = gp->allglink) {
        weft__waiter *w = &gp->w;
        if (!w->waiting)
            continue;
        /* A select: end it, so that no channel operation takes it now.
         * CAS-full: the same race as weft__waitq_pop's, against a plain
         * thread operating on one of its channels meanwhile. */
        AO_compare_and_swap_full(&w->selectdone, 0, 1);
        for (weft__sudog *sg = w->waiting; sg; sg = sg->waitlink) {
            if (sg == w->param || !sg->q)
                continue;
            weft__lock(sg->lock);
            bool queued = weft__waitq_remove(sg->q, sg);
            weft__unlock(sg->lock);
            if (queued)
                sg->lock = NULL;    /* marks it for pass 2: it was still queued */
        }
    }
    for (G *gp = (G *)AO_load(&weft__allg); gp; gp = gp->allglink) {
        weft__waiter *w = &gp->w;
        for (weft__sudog *sg = w->waiting; sg; sg = sg->waitlink) {
            /* Still queued, or handed a semaphore unit it never took:
             * either way its sync object counts it. */
            bool queued = sg->lock == NULL;
            if (queued || w->param == sg)
                weft__sync_cancelled(sg, queued);
        }
        w->waiting = NULL;
    }
}
