/*
 * sync.c — Go's sync package: Mutex (with starvation mode), RWMutex, Cond,
 * WaitGroup and Once, on the semaphores of sema.c.  The algorithms are Go's
 * (sync/mutex.go, rwmutex.go, waitgroup.go, runtime notifyList), written
 * with libatomic_ops; see those files for the longer arguments.
 */
#include "runtime.h"
#include "sema.h"

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
 * waited less than 1 ms, switches it back. */
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

bool weft_mutex_trylock(weft_mutex *m)
{
    weft__note_plain_thread();
    unsigned old = AO_int_load(ST(&m->state));
    if (old & (mutexLocked | mutexStarving))
        return false;
    /* CAS-full: acquire for the critical section */
    return AO_int_compare_and_swap_full(ST(&m->state), old, old | mutexLocked);
}

static void lockslow(weft_mutex *m)
{
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
                return;                     /* locked it */
            bool lifo = waitstart != 0;     /* a re-waiter goes to the front */
            if (waitstart == 0)
                waitstart = weft__nanotime();
            weft__semacquire(&m->sema, lifo, waitReasonSyncMutexLock);
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
                return;
            }
            awoke = true;
            iter = 0;
        } else {
            old = AO_int_load(ST(&m->state));
        }
    }
}

void weft_mutex_lock(weft_mutex *m)
{
    weft__note_plain_thread();
    /* CAS-full: acquire for the critical section */
    if (AO_int_compare_and_swap_full(ST(&m->state), 0, mutexLocked))
        return;
    lockslow(m);
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
        weft__semacquire(&rw->readersem, false, waitReasonSyncRWMutexRLock);
}

void weft_rwmutex_runlock(weft_rwmutex *rw)
{
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
    weft_mutex_lock(&rw->w);    /* one writer at a time */
    /* Announce the writer; r = readers still inside. */
    int32_t r = (int32_t)(AO_int_fetch_and_add_full(ST(&rw->readercount), (unsigned)-MAX_READERS)) ;
    if (r != 0 && (int32_t)(AO_int_fetch_and_add_full(ST(&rw->readerwait), (unsigned)r) + (unsigned)r) != 0)
        weft__semacquire(&rw->writersem, false, waitReasonSyncRWMutexLock);
}

void weft_rwmutex_unlock(weft_rwmutex *rw)
{
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
 * park. */

static weft__mutex *condlock(weft_cond *c) { return weft__lockrank_lazy((weft__mutex *)&c->lock, LOCKRANK_NOTIFYLIST); }

_Static_assert(sizeof(weft__mutex) == sizeof(((weft_cond *)0)->lock), "weft_cond.lock holds a weft__mutex");

typedef struct { weft_cond *c; weft__waiter *w; } condtimeout;

static void cond_remove(weft_cond *c, weft__waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        c->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        c->tail = w->prev;
    w->next = w->prev = NULL;
}

static bool cond_queued(weft_cond *c, weft__waiter *w)
{
    for (weft__waiter *x = c->head; x; x = x->next)
        if (x == w)
            return true;
    return false;
}

static void cond_fire(G *gp, void *arg)
{
    condtimeout *ct = arg;
    weft__lock(condlock(ct->c));
    if (cond_queued(ct->c, ct->w)) {
        cond_remove(ct->c, ct->w);
        weft__unlock(condlock(ct->c));
        weft__ready(gp, false);     /* done stays 0: a timeout */
        return;
    }
    weft__unlock(condlock(ct->c));
}

static int condwait(weft_cond *c, weft_mutex *m, int64_t ns)
{
    /* fetch_and_add_full: take a ticket before releasing m */
    uint32_t t = AO_int_fetch_and_add_full(ST(&c->wait), 1);
    weft_mutex_unlock(m);
    weft__waiter w;
    weft__waiter_init(&w);
    w.ticket = t;
    int ret = 0;
    weft__lock(condlock(c));
    if ((int32_t)(t - AO_int_load(ST(&c->notify))) < 0) {
        weft__unlock(condlock(c));      /* already notified */
    } else {
        w.prev = c->tail;
        if (c->tail)
            ((weft__waiter *)c->tail)->next = &w;
        else
            c->head = &w;
        c->tail = &w;
        if (ns < 0) {
            weft__waiter_block(&w, condlock(c), waitReasonSyncCondWait);
        } else if (w.gp) {
            /* Woken by a notify (done = 1) or by cond_fire; whichever took
             * us off the list first decided. */
            condtimeout ct = { c, &w };
            if (!weft__waiter_block_timeout(&w, condlock(c), waitReasonSyncCondWait,
                                            ns, cond_fire, &ct)) {
                cond_remove(c, &w);             /* no timer: give up now */
                weft__unlock(condlock(c));
            }
            if (!AO_load_acquire(&w.done))
                ret = -ETIMEDOUT;
        } else {
            weft__unlock(condlock(c));
            if (!weft__notetsleep(&w.note, ns)) {
                weft__lock(condlock(c));
                bool queued = cond_queued(c, &w);
                if (queued)
                    cond_remove(c, &w);
                weft__unlock(condlock(c));
                if (queued)
                    ret = -ETIMEDOUT;
                else
                    weft__notesleep(&w.note);   /* notified meanwhile: take the wakeup */
            }
        }
    }
    weft_mutex_lock(m);
    return ret;
}

void weft_cond_wait(weft_cond *c, weft_mutex *m) { condwait(c, m, -1); }

int weft_cond_timedwait(weft_cond *c, weft_mutex *m, int64_t ns)
{
    return condwait(c, m, ns < 0 ? 0 : ns);
}

void weft_cond_signal(weft_cond *c)
{
    if (AO_int_load(ST(&c->wait)) == AO_int_load(ST(&c->notify)))
        return;
    weft__lock(condlock(c));
    weft__waiter *found = NULL;
    while (!found && AO_int_load(ST(&c->wait)) != AO_int_load(ST(&c->notify))) {
        uint32_t t = AO_int_load(ST(&c->notify));
        /* store (under the list lock): waiters compare their ticket with it */
        AO_int_store(ST(&c->notify), t + 1);
        for (weft__waiter *w = c->head; w; w = w->next) {
            if (w->ticket == t) {
                cond_remove(c, w);
                found = w;
                break;
            }
        }
        /* Not queued: it has not reached the list yet (it will see the
         * notify and not sleep) or it timed out; either way, try the next. */
        if (!found && !c->head)
            break;
    }
    if (found)
        AO_store_release(&found->done, 1);
    weft__unlock(condlock(c));
    if (found)
        weft__waiter_wake(found);
}

void weft_cond_broadcast(weft_cond *c)
{
    if (AO_int_load(ST(&c->wait)) == AO_int_load(ST(&c->notify)))
        return;
    weft__lock(condlock(c));
    AO_int_store(ST(&c->notify), AO_int_load(ST(&c->wait)));
    weft__waiter *list = c->head;
    c->head = c->tail = NULL;
    for (weft__waiter *w = list; w; w = w->next)
        AO_store_release(&w->done, 1);
    weft__unlock(condlock(c));
    while (list) {
        weft__waiter *next = list->next;   /* read before the waiter may return */
        weft__waiter_wake(list);
        list = next;
    }
}

/* ---- WaitGroup (Go's waitgroup.go) ------------------------------------------------
 * state: counter in the high 32 bits, waiters in the low 32. */

void weft_wg_add(weft_wg *wg, int n)
{
    weft__note_plain_thread();
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
    AO_t *st = (AO_t *)&wg->state;
    for (;;) {
        /* load-acquire: a zero counter means every Done happened before */
        uint64_t state = (uint64_t)AO_load_acquire(st);
        if ((state >> 32) == 0)
            return;
        if (AO_compare_and_swap_full(st, (AO_t)state, (AO_t)(state + 1))) {
            weft__semacquire(&wg->sema, false, waitReasonSyncWaitGroupWait);
            if (AO_load(st) != 0)
                weft_panic("sync: WaitGroup is reused before previous Wait has returned");
            return;
        }
    }
}

/* ---- Once -------------------------------------------------------------------------- */

void weft_once_do(weft_once *o, void (*fn)(void))
{
    /* load-acquire: pairs with the store-release below, so fn's effects are
     * visible to every caller that sees done */
    if (AO_int_load_acquire(ST(&o->done)))
        return;
    weft_mutex_lock(&o->m);
    if (!AO_int_load(ST(&o->done))) {
        fn();
        AO_int_store_release(ST(&o->done), 1);
    }
    weft_mutex_unlock(&o->m);
}
