/*
 * sync.c — Go's sync package: Mutex (with starvation mode), RWMutex, Cond,
 * WaitGroup and Once, on the semaphores of sema.c.  The algorithms are Go's
 * (sync/mutex.go, rwmutex.go, waitgroup.go, runtime notifyList), written
 * with libatomic_ops; see those files for the longer arguments.
 */
#include <stddef.h>

#include "lockcycle.h"
#include "park.h"
#include "race.h"
#include "sema.h"
#include "diag/scheddebug.h"

#define ST(p)  ((unsigned *)(p))

/* ---- Mutex ---------------------------------------------------------------------
 * state: bit 0 locked, bit 1 woken (a waiter is awake and competing, so
 * unlock need not wake another), bit 2 starving, bits 3.. waiter count.
 *
 * Normal mode: waiters queue FIFO but a woken waiter competes with newly
 * arriving goroutines, which usually win (they are on a CPU already).  A
 * waiter that fails to get the lock for more than 1 ms switches the mutex
 * to starvation mode: unlock then hands the mutex directly to the first
 * waiter, and newcomers queue at the tail.  The last waiter, or one that
 * waited less than 1 ms, switches it back.
 *
 * owner names the holder (lockcycle.h), for lock-cycle reports: written
 * only inside the locked section, after the CAS that takes the mutex and
 * before the fetch-and-add that releases it, so the mutex orders its
 * writes and it is never stale (lockcycle.c).  It costs the fast path
 * one store on lock and one on unlock. */
enum { mutexLocked = 1, mutexWoken = 2, mutexStarving = 4, mutexWaiterShift = 3 };
#define STARVATION_NS (1000 * 1000)

static bool canspin(int iter)
{
    if (iter >= 4 || weft__ncpu() <= 1)
        return false;
    AO_t procs = AO_load(&weft__gomaxprocs);
    if (procs <= AO_load(&sched.npidle) + AO_load(&sched.nmspinning) + 1)
        return false;
    G *gp = weft__getg();
    return gp && !gp->issystem && gp->m->p && weft__runqempty(gp->m->p);
}

static void dospin(void)
{
    for (int i = 0; i < 30; i++) {
#if defined(__x86_64__)
        __asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
        __asm__ volatile("yield" ::: "memory");
#endif
    }
}

/* A plain store inside the locked section (see above): whoever reads it
 * loads with acquire, and the release of the mutex orders it for the next
 * holder. */
static inline void setowner(weft_mutex *m, G *gp)
{
    /* The last unlock happens before (race.h): told first, so that the
     * race detectors see this store ordered after the unlock's. */
    weft__race_acquire(m);
    AO_store((AO_t *)&m->owner, (AO_t)weft__lockholder(gp));
}

bool weft_mutex_trylock(weft_mutex *m)
{
    G *gp = weft__note_plain_thread();
    unsigned old = AO_int_load(ST(&m->state));
    /* CAS-full: acquire for the critical section */
    if (!(old & (mutexLocked | mutexStarving)) &&
        AO_int_compare_and_swap_full(ST(&m->state), old, old | mutexLocked)) {
        setowner(m, gp);
        return true;
    }
    /* A failed trylock is a scheduling point: a goroutine spinning on it
     * lets the holder run if it waits on the same P. */
    weft__preemptpoint();
    return false;
}

/* rw: m is a weft_rwmutex's writer lock (for the cycle report). */
static void lockslow(weft_mutex *m, bool rw)
{
    weft__lockwait lw;                  /* our wait, for lock-cycle detection */
    bool registered = false;
    int64_t waitstart = 0;
    bool starving = false, awoke = false;
    int iter = 0;
    unsigned old = AO_int_load(ST(&m->state));
    for (;;) {
        if ((old & (mutexLocked | mutexStarving)) == mutexLocked && canspin(iter)) {
            /* Tell unlock not to wake others while we spin. */
            if (!awoke && !(old & mutexWoken) && (old >> mutexWaiterShift) != 0 &&
                AO_int_compare_and_swap_full(ST(&m->state), old, old | mutexWoken))
                awoke = true;
            dospin();
            iter++;
            old = AO_int_load(ST(&m->state));
            continue;
        }
        unsigned nw = old;
        if (!(old & mutexStarving))
            nw |= mutexLocked;              /* don't grab a starving mutex */
        if (old & (mutexLocked | mutexStarving))
            nw += 1u << mutexWaiterShift;
        if (starving && (old & mutexLocked))
            nw |= mutexStarving;
        if (awoke) {
            if (!(nw & mutexWoken))
                weft__throw("sync: inconsistent mutex state");
            nw &= ~(unsigned)mutexWoken;
        }
        /* CAS-full: either takes the lock (acquire) or registers a waiter */
        if (AO_int_compare_and_swap_full(ST(&m->state), old, nw)) {
            if (!(old & (mutexLocked | mutexStarving)))
                break;                      /* locked it */
            bool lifo = waitstart != 0;     /* a re-waiter goes to the front */
            if (waitstart == 0)
                waitstart = weft__nanotime();
            if (weft__debug.lockcycle != LOCKCYCLE_OFF) {
                weft__lockcycle_block(&lw, m, rw, registered);
                registered = true;
            }
            weft__semacquire(&m->sema, lifo, waitReasonSyncMutexLock, 0);
            starving = starving || weft__nanotime() - waitstart > STARVATION_NS;
            old = AO_int_load(ST(&m->state));
            if (old & mutexStarving) {
                /* Handed to us: fix up the state and own it. */
                if ((old & (mutexLocked | mutexWoken)) || (old >> mutexWaiterShift) == 0)
                    weft__throw("sync: inconsistent mutex state");
                unsigned delta = mutexLocked - (1u << mutexWaiterShift);
                if (!starving || (old >> mutexWaiterShift) == 1)
                    delta -= mutexStarving;
                AO_int_fetch_and_add_full(ST(&m->state), delta);
                break;
            }
            awoke = true;
            iter = 0;
        } else {
            old = AO_int_load(ST(&m->state));
        }
    }
    setowner(m, weft__getg());
    if (registered)
        weft__lockcycle_unblock(&lw);
}

static inline __attribute__((always_inline)) void mutexlock(weft_mutex *m, bool rw)
{
    G *gp = weft__note_plain_thread();
    /* CAS-full: acquire for the critical section */
    if (likely(AO_int_compare_and_swap_full(ST(&m->state), 0, mutexLocked)))
        setowner(m, gp);
    else
        lockslow(m, rw);
}

void weft_mutex_lock(weft_mutex *m)
{
    mutexlock(m, false);
    /* Not a tail call to lockslow: a goroutine's traceback (a lock cycle
     * report, a dump) names weft_mutex_lock as the call it waits in. */
    __asm__ volatile("" ::: "memory");
}

static void unlockslow(weft_mutex *m, unsigned nw)
{
    if (!((nw + mutexLocked) & mutexLocked))
        weft_panic("sync: unlock of unlocked mutex");
    if (!(nw & mutexStarving)) {
        unsigned old = nw;
        for (;;) {
            /* No waiters, or someone already woken/locked: nothing to do. */
            if ((old >> mutexWaiterShift) == 0 || (old & (mutexLocked | mutexWoken | mutexStarving)))
                return;
            nw = (old - (1u << mutexWaiterShift)) | mutexWoken;
            if (AO_int_compare_and_swap_full(ST(&m->state), old, nw)) {
                weft__semrelease(&m->sema, false);
                return;
            }
            old = AO_int_load(ST(&m->state));
        }
    }
    /* Starving: hand the mutex to the first waiter. */
    weft__semrelease(&m->sema, true);
}

void weft_mutex_unlock(weft_mutex *m)
{
    /* Plain store: the full fetch-and-add below orders it before the
     * release, so the next holder's owner store comes after it. */
    AO_store((AO_t *)&m->owner, 0);
    weft__race_release(m);
    /* fetch_and_add_full: release for the critical section */
    unsigned nw = AO_int_fetch_and_add_full(ST(&m->state), (unsigned)-mutexLocked) - mutexLocked;
    if (nw != 0)
        unlockslow(m, nw);
}

/* ---- RWMutex (Go's rwmutex.go) --------------------------------------------------- */

#define MAX_READERS (1 << 30)

void weft_rwmutex_rlock(weft_rwmutex *rw)
{
    weft__note_plain_thread();
    /* fetch_and_add_full: a negative count means a writer is pending */
    if ((int32_t)(AO_int_fetch_and_add_full(ST(&rw->readercount), 1) + 1) < 0)
        weft__semacquire(&rw->readersem, false, waitReasonSyncRWMutexRLock, 0);
    /* Writers release at readercount, readers at readerwait (Go's
     * readerSem and writerSem): a reader is ordered after the last
     * writer, a writer after every reader, two readers not at all. */
    weft__race_acquire(&rw->readercount);
}

void weft_rwmutex_runlock(weft_rwmutex *rw)
{
    weft__race_release(&rw->readerwait);
    int32_t r = (int32_t)(AO_int_fetch_and_add_full(ST(&rw->readercount), (unsigned)-1) - 1);
    if (r < 0) {
        if (r + 1 == 0 || r + 1 == -MAX_READERS)
            weft_panic("sync: RUnlock of unlocked RWMutex");
        /* The last reader a pending writer waits for wakes it. */
        if ((int32_t)(AO_int_fetch_and_add_full(ST(&rw->readerwait), (unsigned)-1) - 1) == 0)
            weft__semrelease(&rw->writersem, false);
    }
}

void weft_rwmutex_lock(weft_rwmutex *rw)
{
    mutexlock(&rw->w, true);    /* one writer at a time */
    /* Announce the writer; r = readers still inside. */
    int32_t r = (int32_t)(AO_int_fetch_and_add_full(ST(&rw->readercount), (unsigned)-MAX_READERS)) ;
    if (r != 0 && (int32_t)(AO_int_fetch_and_add_full(ST(&rw->readerwait), (unsigned)r) + (unsigned)r) != 0)
        weft__semacquire(&rw->writersem, false, waitReasonSyncRWMutexLock, 0);
    weft__race_acquire(&rw->readerwait);    /* every reader's past (see rlock) */
}

void weft_rwmutex_unlock(weft_rwmutex *rw)
{
    weft__race_release(&rw->readercount);   /* to the readers (see rlock) */
    int32_t r = (int32_t)(AO_int_fetch_and_add_full(ST(&rw->readercount), MAX_READERS) + MAX_READERS);
    if (r >= MAX_READERS)
        weft_panic("sync: Unlock of unlocked RWMutex");
    for (int32_t i = 0; i < r; i++)
        weft__semrelease(&rw->readersem, false);
    weft_mutex_unlock(&rw->w);
}

/* ---- Cond (the runtime's notifyList) ---------------------------------------------
 * wait takes a ticket before unlocking the user's mutex; signal notifies
 * tickets in order.  A waiter that arrives at the list after its ticket was
 * notified does not sleep, so no signal is lost between the unlock and the
 * park.  The list is a wait queue of sudogs (ticket set) in the public
 * struct's head/tail words, under the struct's lock word. */

static weft__mutex *condlock(weft_cond *c)
{
    weft__race_untrack(c, sizeof *c);   /* weft's own words, in the user's struct (race.h) */
    return weft__lockrank_lazy((weft__mutex *)&c->lock, LOCKRANK_NOTIFYLIST);
}
static weft__waitq *condq(weft_cond *c) { return (weft__waitq *)&c->head; }

_Static_assert(sizeof(weft__mutex) == sizeof(((weft_cond *)0)->lock), "weft_cond.lock holds a weft__mutex");
_Static_assert(offsetof(weft_cond, tail) - offsetof(weft_cond, head) == offsetof(weft__waitq, last) &&
               sizeof(weft__waitq) == 2 * sizeof(void *), "weft_cond.head/tail hold a weft__waitq");

static bool unlockcond(G *gp, void *c)
{
    (void)gp;
    weft__unlock(condlock(c));
    return true;
}

static int condwait(weft_cond *c, weft_mutex *m, int64_t deadline)
{
    /* fetch_and_add_full: take a ticket before releasing m */
    uint32_t t = AO_int_fetch_and_add_full(ST(&c->wait), 1);
    weft_mutex_unlock(m);
    weft__thread tw;
    weft__sudog tsg;
    weft__waiter *w = weft__waiter_get(weft__getg(), &tw, waitReasonSyncCondWait);
    int ret = 0;
    weft__lock(condlock(c));
    if ((int32_t)(t - AO_int_load(ST(&c->notify))) < 0) {
        weft__unlock(condlock(c));      /* already notified */
    } else {
        weft__sudog *sg = weft__acquiresudog(w, &tsg);
        sg->obj = c;
        sg->ticket = t;
        sg->reason = waitReasonSyncCondWait;
        weft__waitq_push(condq(c), condlock(c), sg);
        w->waiting = sg;
        /* Woken by a notify, or not (timeout, or no timer: give up now). */
        if (weft__park(w, unlockcond, c, waitReasonSyncCondWait, deadline) <= 0)
            ret = -ETIMEDOUT;
        w->waiting = NULL;
        weft__releasesudog(sg);
    }
    weft_mutex_lock(m);
    return ret;
}

void weft_cond_wait(weft_cond *c, weft_mutex *m) { condwait(c, m, 0); }

int weft_cond_timedwait(weft_cond *c, weft_mutex *m, int64_t ns)
{
    /* A deadline of "now" times out at once unless already notified. */
    return condwait(c, m, weft__deadline(ns > 0 ? ns : 0));
}

void weft_cond_signal(weft_cond *c)
{
    if (AO_int_load(ST(&c->wait)) == AO_int_load(ST(&c->notify)))
        return;
    weft__lock(condlock(c));
    weft__sudog *found = NULL;
    while (!found && AO_int_load(ST(&c->wait)) != AO_int_load(ST(&c->notify))) {
        uint32_t t = AO_int_load(ST(&c->notify));
        /* store (under the list lock): waiters compare their ticket with it */
        AO_int_store(ST(&c->notify), t + 1);
        for (weft__sudog *sg = condq(c)->first; sg; sg = sg->next) {
            if (sg->ticket == t) {
                weft__waitq_remove(condq(c), sg);
                found = sg;
                break;
            }
        }
        /* Not queued: it has not reached the list yet (it will see the
         * notify and not sleep) or it timed out; either way, try the next. */
        if (!found && !condq(c)->first)
            break;
    }
    weft__unlock(condlock(c));
    if (found)
        weft__wake(found, true);
}

void weft_cond_broadcast(weft_cond *c)
{
    if (AO_int_load(ST(&c->wait)) == AO_int_load(ST(&c->notify)))
        return;
    weft__lock(condlock(c));
    AO_int_store(ST(&c->notify), AO_int_load(ST(&c->wait)));
    /* Take the whole list (its next links stay, in FIFO order); wake
     * everyone after unlocking. */
    weft__sudog *list = condq(c)->first;
    weft__waitq_setfirst(condq(c), NULL);
    condq(c)->last = NULL;
    weft__unlock(condlock(c));
    weft__wakelist(list, true);
}

/* ---- WaitGroup (Go's waitgroup.go) ------------------------------------------------
 * state: counter in the high 32 bits, waiters in the low 32. */

void weft_wg_add(weft_wg *wg, int n)
{
    weft__note_plain_thread();
    weft__race_untrack(wg, sizeof *wg);     /* weft's own words (race.h) */
    if (n < 0)
        weft__race_release(wg);     /* Done: to whoever Wait returns in */
    AO_t *st = (AO_t *)&wg->state;
    /* fetch_and_add_full: Done's decrement releases the worker's writes to
     * whoever Wait wakes. */
    uint64_t state = (uint64_t)AO_fetch_and_add_full(st, (AO_t)((uint64_t)(int64_t)n << 32)) +
                     ((uint64_t)(int64_t)n << 32);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0)
        weft_panic("sync: negative WaitGroup counter");
    if (w != 0 && n > 0 && v == n)
        weft_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0)
        return;
    /* Counter is 0 and there are waiters: nobody may change state now. */
    if ((uint64_t)AO_load(st) != state)
        weft_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    AO_store(st, 0);
    for (; w > 0; w--)
        weft__semrelease(&wg->sema, false);
}

void weft_wg_done(weft_wg *wg) { weft_wg_add(wg, -1); }

void weft_wg_wait(weft_wg *wg)
{
    weft__race_untrack(wg, sizeof *wg);
    AO_t *st = (AO_t *)&wg->state;
    for (;;) {
        /* load-acquire: a zero counter means every Done happened before */
        uint64_t state = (uint64_t)AO_load_acquire(st);
        if ((state >> 32) == 0) {
            weft__race_acquire(wg); /* every Done happens before */
            return;
        }
        if (AO_compare_and_swap_full(st, (AO_t)state, (AO_t)(state + 1))) {
            weft__semacquire(&wg->sema, false, waitReasonSyncWaitGroupWait, 0);
            if (AO_load(st) != 0)
                weft_panic("sync: WaitGroup is reused before previous Wait has returned");
            weft__race_acquire(wg);
            return;
        }
    }
}

/* ---- Once -------------------------------------------------------------------------- */

void weft_once_do(weft_once *o, void (*fn)(void))
{
    /* helgrind and DRD see done's load-acquire as a plain read racing with
     * the store-release: the order they need comes from o's annotations. */
    weft__race_untrack((void *)&o->done, sizeof o->done);
    /* load-acquire: pairs with the store-release below, so fn's effects are
     * visible to every caller that sees done */
    if (AO_int_load_acquire(ST(&o->done))) {
        weft__race_acquire(o);      /* fn's effects happen before (race.h) */
        return;
    }
    weft_mutex_lock(&o->m);
    if (!AO_int_load(ST(&o->done))) {
        fn();
        weft__race_release(o);
        AO_int_store_release(ST(&o->done), 1);
    }
    weft_mutex_unlock(&o->m);
}

/* ---- cancelled waits (shutdown, park.c) --------------------------------------------
 * A goroutine still waiting in a sync call when main returns never runs
 * again.  Undo what its wait registered, so that plain threads can go on
 * using the object as if the wait had been cancelled: queued, it never got
 * what it waited for; woken (a release handed it a unit it never took), it
 * got it and lets it go at once. */

#define container_of(p, T, field) ((T *)((char *)(p) - offsetof(T, field)))

/* Every M has stopped, but plain threads may be using these objects
 * already: each undo is one read-modify-write on the word they use, full
 * like theirs (sync's own operations on these words are all CAS-full or
 * fetch-and-add-full), so it composes with whatever they do. */

void weft__sync_cancelled(weft__sudog *sg, bool queued)
{
    switch (sg->reason) {
    case waitReasonSyncMutexLock: {
        weft_mutex *m = container_of(sg->obj, weft_mutex, sema);
        unsigned old = AO_int_load(ST(&m->state));
        if (queued) {
            /* fetch_and_add_full: one waiter fewer (shutdown: nobody races) */
            AO_int_fetch_and_add_full(ST(&m->state), (unsigned)-(1 << mutexWaiterShift));
        } else if (old & mutexStarving) {
            /* The mutex was handed to it: own it as lockslow would, and
             * unlock it (which hands it on to a waiting thread, if any). */
            unsigned delta = mutexLocked - (1u << mutexWaiterShift);
            if ((old >> mutexWaiterShift) == 1)
                delta -= mutexStarving;
            AO_int_fetch_and_add_full(ST(&m->state), delta);
            weft_mutex_unlock(m);
        } else if (old & mutexWoken) {
            /* Woken to compete: the flag that said so would never clear. */
            AO_int_fetch_and_add_full(ST(&m->state), (unsigned)-mutexWoken);
        }
        break;
    }
    case waitReasonSyncRWMutexRLock: {
        weft_rwmutex *rw = container_of(sg->obj, weft_rwmutex, readersem);
        if (queued)     /* it never became a reader */
            AO_int_fetch_and_add_full(ST(&rw->readercount), (unsigned)-1);
        else            /* a writer's unlock let it in: leave */
            weft_rwmutex_runlock(rw);
        break;
    }
    case waitReasonSyncRWMutexLock: {
        weft_rwmutex *rw = container_of(sg->obj, weft_rwmutex, writersem);
        if (queued) {
            /* It holds rw->w and announced itself, waiting for readers to
             * leave: withdraw the announcement and the writers' mutex. */
            AO_int_fetch_and_add_full(ST(&rw->readercount), MAX_READERS);
            AO_int_store(ST(&rw->readerwait), 0);
            weft_mutex_unlock(&rw->w);
        } else {
            weft_rwmutex_unlock(rw);    /* the last reader let it in */
        }
        break;
    }
    case waitReasonSyncWaitGroupWait: {
        weft_wg *wg = container_of(sg->obj, weft_wg, sema);
        /* Queued: one waiter fewer.  Woken: the counter reached zero and
         * Add already cleared the waiters. */
        if (queued)
            AO_fetch_and_sub1_full((AO_t *)&wg->state);
        break;
    }
    default:
        /* Conds: signal skips a ticket nobody waits for.  Channels, fds
         * and sleep count nothing. */
        break;
    }
}
