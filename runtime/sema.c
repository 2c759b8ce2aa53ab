/*
 * sema.c — semaphores keyed by address (Go's sema.go), the one place where
 * the sync types wait.
 *
 * A semaphore is a uint32 count somewhere in a user struct.  Acquire takes
 * one unit if it can (a CAS), and otherwise queues a sudog (obj = the
 * address) in the bucket of a small hash table keyed by the address, and
 * parks (park.c).  Release adds a unit and, if the bucket has waiters,
 * hands the unit to the first waiter for that address (the waker takes the
 * unit on the waiter's behalf, so a newcomer cannot steal it: Go's
 * semrelease with a ticket).
 *
 * The lost wake-up between an acquirer that queues and a releaser that
 * looks for waiters is Dekker's pattern: the acquirer queues, then (full
 * barrier) re-checks the count; the releaser adds its unit (full barrier)
 * and then looks at the bucket's queue without the lock.  Either the
 * acquirer sees the unit or the releaser sees the sudog.
 */
#include "park.h"
#include "race.h"
#include "sema.h"

#define SEMTABSZ 251

typedef struct {
    weft__mutex lock;
    weft__waitq q;              /* lock; q.first read racily by release */
} __attribute__((aligned(CACHELINE))) semroot;

static semroot semtable[SEMTABSZ] = { [0 ... SEMTABSZ - 1] = { .lock = WEFT__MUTEX_INIT(LOCKRANK_SEMAROOT) } };

static semroot *rootfor(uint32_t *addr)
{
    semroot *root = &semtable[((uintptr_t)addr >> 3) % SEMTABSZ];
    weft__race_untrack(root, sizeof *root);     /* weft's own (race.h) */
    return root;
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

static bool unlockroot(G *gp, void *root)
{
    (void)gp;
    weft__unlock(&((semroot *)root)->lock);
    return true;
}

bool weft__semacquire(uint32_t *addr, bool lifo, weft__waitreason r, int64_t deadline)
{
    if (cansemacquire(addr)) {
        weft__race_acquire(addr);   /* the release that made the unit happens before */
        return true;
    }
    semroot *root = rootfor(addr);
    weft__thread tw;
    weft__sudog tsg;
    weft__waiter *w = weft__waiter_get(weft__getg(), &tw, r);
    weft__sudog *sg = weft__acquiresudog(w, &tsg);
    sg->obj = addr;
    sg->reason = (uint8_t)r;
    for (;;) {
        weft__lock(&root->lock);
        if (lifo)
            weft__waitq_pushfront(&root->q, &root->lock, sg);
        else
            weft__waitq_push(&root->q, &root->lock, sg);
        /* Full barrier: our sudog is visible before we re-check the count
         * (pairs with the releaser's fetch-and-add-full before its load of
         * q.first). */
        AO_nop_full();
        if (cansemacquire(addr)) {
            weft__waitq_remove(&root->q, sg);
            weft__unlock(&root->lock);
            break;
        }
        w->waiting = sg;
        int woke = weft__park(w, unlockroot, root, r, deadline);
        w->waiting = NULL;
        /* A releaser handed us the unit directly: nothing to retry. */
        if (woke > 0)
            break;
        weft__releasesudog(sg);
        return false;   /* timed out: the timeout took us off the queue */
    }
    weft__releasesudog(sg);
    weft__race_acquire(addr);
    return true;
}

void weft__semrelease(uint32_t *addr, bool handoff)
{
    semroot *root = rootfor(addr);
    weft__race_release(addr);   /* to whoever takes the unit (race.h) */
    /* fetch_and_add_full: publish the unit, then look for waiters (see the
     * top comment; pairs with the acquirer's barrier) */
    AO_int_fetch_and_add_full((unsigned *)addr, 1);
    if (AO_load((AO_t *)&root->q.first) == 0)
        return;
    weft__lock(&root->lock);
    weft__sudog *sg = root->q.first;
    while (sg && sg->obj != addr)
        sg = sg->next;
    if (!sg || !cansemacquire(addr)) {
        /* No waiter for this address, or a newcomer took the unit. */
        weft__unlock(&root->lock);
        return;
    }
    /* The unit we just took is now sg's. */
    weft__waitq_remove(&root->q, sg);
    sg->success = true;
    weft__unlock(&root->lock);
    weft__wake(sg, true);
    if (handoff) {
        /* Starvation mode: let the waiter run now, on this P (it sits in
         * runnext), instead of competing with us for the lock again. */
        G *me = weft__getg();
        if (me && !me->issystem)
            weft_yield();
    }
}
