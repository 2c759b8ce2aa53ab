/*
 * sema.c — semaphores keyed by address (Go's sema.go), the one place where
 * the sync types wait, and the waiter record shared with them.
 *
 * A semaphore is a uint32 count somewhere in a user struct.  Acquire takes
 * one unit if it can (a CAS), and otherwise queues a waiter in the bucket
 * of a small hash table keyed by the address, and parks.  Release adds a
 * unit and, if the bucket has waiters, hands the unit to the first waiter
 * for that address.  The bucket lock is released only after the waiter has
 * switched off its stack (park's unlockf), so a release can never see a
 * half-parked goroutine.  A plain thread waits on a futex note instead.
 */
#include "runtime.h"
#include "sema.h"

#define SEMTABSZ 251

typedef struct {
    weft__mutex lock;
    weft__waiter *head, *tail;  /* lock */
    AO_t nwait;                 /* atomic: waiters in this bucket (a hint for release) */
} __attribute__((aligned(CACHELINE))) semroot;

static semroot semtable[SEMTABSZ] = { [0 ... SEMTABSZ - 1] = { .lock = WEFT__MUTEX_INIT(LOCKRANK_SEMAROOT) } };

static semroot *rootfor(uint32_t *addr)
{
    return &semtable[((uintptr_t)addr >> 3) % SEMTABSZ];
}

/* CAS-full: taking a unit acquires whatever the releaser published. */
static bool cansemacquire(uint32_t *addr)
{
    for (;;) {
        unsigned v = AO_int_load((unsigned *)addr);
        if (v == 0)
            return false;
        if (AO_int_compare_and_swap_full((unsigned *)addr, v, v - 1))
            return true;
    }
}

static bool unlock_after_park(G *gp, void *arg)
{
    (void)gp;
    weft__unlock(arg);
    return true;
}

void weft__waiter_init(weft__waiter *w)
{
    G *gp = weft__getg();
    w->gp = (gp && !gp->issystem) ? gp : NULL;
    if (!w->gp)
        AO_store(&sched.foreign, 1);    /* see weft__checkdead */
    w->next = w->prev = NULL;
    w->ticket = 0;
    AO_store(&w->done, 0);
    weft__noteclear(&w->note);
}

void weft__waiter_block(weft__waiter *w, weft__mutex *held, weft__waitreason r)
{
    if (w->gp) {
        weft__park(unlock_after_park, held, r);
    } else {
        weft__unlock(held);
        weft__notesleep(&w->note);
    }
}

bool weft__waiter_block_timeout(weft__waiter *w, weft__mutex *held, weft__waitreason r,
                                int64_t ns, void (*fire)(G *gp, void *arg), void *arg)
{
    void *t = weft__timeout_arm(w->gp, ns, fire, arg);
    if (!t)
        return false;
    weft__park(unlock_after_park, held, r);
    weft__timeout_disarm(t);
    return true;
}

void weft__waiter_wake(weft__waiter *w)
{
    /* store-release of done: the waiter (or a timeout racing us) reads it */
    AO_store_release(&w->done, 1);
    if (w->gp)
        weft__ready(w->gp, true);
    else
        weft__notewakeup(&w->note);
}

void weft__semacquire(uint32_t *addr, bool lifo, weft__waitreason r)
{
    if (cansemacquire(addr))
        return;
    semroot *root = rootfor(addr);
    weft__waiter w;
    weft__waiter_init(&w);
    w.addr = addr;
    for (;;) {
        weft__lock(&root->lock);
        /* fetch_and_add_full: announce ourselves before re-checking, so a
         * releaser either sees nwait > 0 or we see its unit (Go's order). */
        AO_fetch_and_add1_full(&root->nwait);
        if (cansemacquire(addr)) {
            AO_fetch_and_sub1_full(&root->nwait);
            weft__unlock(&root->lock);
            return;
        }
        if (lifo && root->head) {
            w.next = root->head;
            root->head->prev = &w;
            root->head = &w;
        } else {
            w.prev = root->tail;
            if (root->tail)
                root->tail->next = &w;
            else
                root->head = &w;
            root->tail = &w;
        }
        weft__waiter_block(&w, &root->lock, r);
        /* A releaser handed us the unit directly (w.done) — Go's semrelease
         * with a ticket; there is nothing to retry. */
        if (AO_load_acquire(&w.done))
            return;
        weft__waiter_init(&w);
        w.addr = addr;
        if (cansemacquire(addr))
            return;
    }
}

void weft__semrelease(uint32_t *addr, bool handoff)
{
    semroot *root = rootfor(addr);
    /* fetch_and_add_full: publish the unit, then look for waiters */
    AO_int_fetch_and_add_full((unsigned *)addr, 1);
    if (AO_load(&root->nwait) == 0)
        return;
    weft__lock(&root->lock);
    if (AO_load(&root->nwait) == 0) {
        weft__unlock(&root->lock);
        return;
    }
    weft__waiter *w = root->head;
    while (w && w->addr != addr)
        w = w->next;
    if (!w || !cansemacquire(addr)) {
        /* No waiter for this address, or a newcomer took the unit. */
        weft__unlock(&root->lock);
        return;
    }
    /* Dequeue w: the unit we just took is now its unit. */
    if (w->prev)
        w->prev->next = w->next;
    else
        root->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        root->tail = w->prev;
    AO_fetch_and_sub1_full(&root->nwait);
    weft__unlock(&root->lock);
    weft__waiter_wake(w);
    if (handoff) {
        /* Starvation mode: let the waiter run now, on this P (it sits in
         * runnext), instead of competing with us for the lock again. */
        G *me = weft__getg();
        if (me && !me->issystem)
            weft_yield();
    }
}
