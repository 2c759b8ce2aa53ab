/*
 * select.c — select over channels (Go's selectgo, select.go).
 *
 * Cases on NULL channels are dropped; the others are visited in a random
 * order (pollorder) with all their channels locked in address order
 * (lockorder, each distinct lock once).
 *
 *   Pass 1 takes the first ready case, moving the data with chan.c's
 *          functions (the unlock of every channel is their parameter).
 *   Pass 2 queues one sudog per case, all on the same waiter, and parks
 *          (park.c).  Whoever ends the wait — an operation on one of the
 *          channels, or the timeout — must first win the waiter's
 *          selectdone (weft__waitq_pop's CAS); a channel operation that
 *          loses skips that sudog.
 *   Pass 3, after waking, relocks every channel, unlinks the sudogs that
 *          did not fire and reports the one that did (w->param; NULL for
 *          the timeout).
 *
 * The parked goroutine's locks are released after it is off its stack, in
 * reverse lock order: a channel operation may ready it as soon as the
 * first is released, and it then blocks in pass 3 on the lowest channel
 * lock, which is released last, so the selstate on its stack stays valid
 * until that final unlock and is not touched after it.
 */
#include <stdlib.h>

#include "chan.h"

#define MAX_CASES      65536                /* Go's limit */
#define STACK_CASES    64                   /* cases handled without malloc */

typedef struct selstate {
    weft_case *cases;
    uint16_t *lockorder;
    int nlock;              /* entries in lockorder (non-NULL channels) */
} selstate;

static void sellock(selstate *s)
{
    weft_chan *prev = NULL;
    for (int i = 0; i < s->nlock; i++) {
        weft_chan *c = s->cases[s->lockorder[i]].ch;
        if (c != prev)
            weft__lock(&c->lock);
        prev = c;
    }
}

/* Reverse order, each distinct channel once (Go's selunlock).  Reads
 * lockorder[i] before releasing its lock, and nothing after the last. */
static bool selunlock(G *gp, void *arg)
{
    (void)gp;
    selstate *s = arg;
    weft_case *cases = s->cases;
    uint16_t *lo = s->lockorder;
    for (int i = s->nlock - 1; i >= 0; i--) {
        weft_chan *c = cases[lo[i]].ch;
        if (i > 0 && c == cases[lo[i - 1]].ch)
            continue;
        weft__unlock(&c->lock);
    }
    return true;
}

static inline uintptr_t caseaddr(selstate *s, uint16_t i) { return (uintptr_t)s->cases[i].ch; }

/* Heap sort of lockorder by channel address (Go's, no allocation). */
static void sort_lockorder(selstate *s, const uint16_t *pollorder, int n)
{
    uint16_t *lo = s->lockorder;
    for (int i = 0; i < n; i++) {
        int j = i;
        uint16_t v = pollorder[i];
        uintptr_t a = caseaddr(s, v);
        while (j > 0 && caseaddr(s, lo[(j - 1) / 2]) < a) {
            int k = (j - 1) / 2;
            lo[j] = lo[k];
            j = k;
        }
        lo[j] = v;
    }
    for (int i = n - 1; i >= 0; i--) {
        uint16_t v = lo[i];
        uintptr_t a = caseaddr(s, v);
        lo[i] = lo[0];
        int j = 0, k;
        for (;;) {
            k = j * 2 + 1;
            if (k >= i)
                break;
            if (k + 1 < i && caseaddr(s, lo[k]) < caseaddr(s, lo[k + 1]))
                k++;
            if (a < caseaddr(s, lo[k])) {
                lo[j] = lo[k];
                j = k;
                continue;
            }
            break;
        }
        lo[j] = v;
    }
}

/* Pass 1 with every lock held: the first ready case in pollorder, done and
 * unlocked; or -1 with the locks still held. */
static int selpoll(selstate *s, const uint16_t *pollorder, int norder)
{
    for (int i = 0; i < norder; i++) {
        int ci = pollorder[i];
        weft_case *k = &s->cases[ci];
        weft_chan *c = k->ch;
        if (k->dir == WEFT_SEND) {
            if (c->closed) {
                selunlock(NULL, s);
                weft_panic("send on closed channel");
            }
            weft__sudog *sg = weft__waitq_pop(&c->recvq);
            if (sg) {
                weft__chan_senddirect(c, sg, k->elem, selunlock, s);
            } else if (AO_load(&c->qcount) < c->dataqsiz) {   /* load under c->lock */
                weft__chan_sendbuf(c, k->elem);
                selunlock(NULL, s);
            } else {
                continue;
            }
            k->ok = true;
            return ci;
        }
        weft__sudog *sg = c->closed ? NULL : weft__waitq_pop(&c->sendq);
        if (sg) {
            weft__chan_recvdirect(c, sg, k->elem, selunlock, s);
            k->ok = true;
        } else if (AO_load(&c->qcount) > 0) {                 /* load under c->lock */
            weft__chan_recvbuf(c, k->elem);
            selunlock(NULL, s);
            k->ok = true;
        } else if (c->closed) {
            weft__race_acquire(c);      /* the close happens before */
            selunlock(NULL, s);
            weft__chan_elemclear(c, k->elem);
            k->ok = false;
        } else {
            continue;
        }
        return ci;
    }
    return -1;
}

static int selectgo(weft_case *cases, int n, int64_t timeout_ns)
{
    if (n < 0 || n > MAX_CASES || (n > 0 && !cases))
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        if (cases[i].dir != WEFT_SEND && cases[i].dir != WEFT_RECV)
            return -EINVAL;
        /* A send of nothing on a channel of values: as weft_chan_send. */
        if (cases[i].dir == WEFT_SEND && cases[i].ch && !cases[i].elem && cases[i].ch->elemsize)
            return -EINVAL;
    }

    G *gp = weft__note_plain_thread();
    bool thread = !gp || gp->issystem;
    int64_t deadline = timeout_ns > 0 ? weft__deadline(timeout_ns) : 0;

    /* pollorder and lockorder; a thread's sudogs (a goroutine's come from
     * its P's cache). */
    uint16_t stack_order[2 * STACK_CASES];
    weft__sudog stack_sg[thread ? STACK_CASES : 1];    /* a goroutine's stack stays small */
    uint16_t *pollorder = stack_order;
    weft__sudog *tsgs = stack_sg;
    void *heap = NULL;
    if (n > STACK_CASES) {
        heap = malloc((size_t)n * (2 * sizeof(uint16_t) + (thread ? sizeof(weft__sudog) : 0)) +
                      sizeof(weft__sudog));
        if (!heap)
            return -ENOMEM;
        tsgs = heap;
        pollorder = (uint16_t *)(tsgs + (thread ? n : 0));
    }
    selstate s = { .cases = cases, .lockorder = pollorder + (n > STACK_CASES ? n : STACK_CASES) };

    /* pollorder: a uniform random permutation of the non-NULL cases. */
    int norder = 0;
    for (int i = 0; i < n; i++) {
        if (!cases[i].ch)
            continue;
        uint32_t j = weft__fastrand() % (uint32_t)(norder + 1);
        pollorder[norder] = pollorder[j];
        pollorder[j] = (uint16_t)i;
        norder++;
    }
    s.nlock = norder;
    sort_lockorder(&s, pollorder, norder);

    if (norder == 0 && timeout_ns < 0) {
        free(heap);
        weft__block_forever(waitReasonSelectNoCases);
    }
    /* (No case but a timeout: the code below just sleeps it out.) */

    int ret;
    sellock(&s);
    ret = selpoll(&s, pollorder, norder);
    if (ret >= 0)
        goto out;
    if (timeout_ns == 0) {
        selunlock(NULL, &s);
        ret = -1;
        goto out;
    }

    /* Pass 2: queue on every channel, in lock order, and sleep. */
    weft__thread tw;
    weft__waiter *w = weft__waiter_get(gp, &tw, waitReasonSelect);
    /* store: no waker can see w before pass 2 queues it under the locks */
    AO_store(&w->selectdone, 0);
    weft__sudog **link = &w->waiting;
    for (int i = 0; i < norder; i++) {
        int ci = s.lockorder[i];
        weft_case *k = &cases[ci];
        weft__sudog *sg = weft__acquiresudog(w, thread ? &tsgs[i] : NULL);
        sg->obj = k->ch;
        sg->elem = k->elem;
        sg->casei = (uint16_t)ci;
        sg->reason = waitReasonSelect;
        sg->isselect = true;
        weft__waitq_push(k->dir == WEFT_SEND ? &k->ch->sendq : &k->ch->recvq, &k->ch->lock, sg);
        /* Our past to whichever peer ends the wait (as chanblock). */
        weft__race_release(k->ch);
        *link = sg;
        link = &sg->waitlink;
    }
    /* No channel: nothing to unlock, and nothing of ours may be touched
     * once the timer is armed (see the top comment of park.c). */
    int woke = weft__park(w, norder ? selunlock : NULL, &s, waitReasonSelect, deadline);

    /* Pass 3: woken by a channel (w->param) or the timeout (NULL).  Unlink
     * the sudogs that did not fire. */
    sellock(&s);
    weft__sudog *fired = w->param;
    ret = -1;
    bool success = false;
    for (weft__sudog *sg = w->waiting; sg; sg = sg->waitlink) {
        if (sg == fired) {
            ret = sg->casei;
            success = sg->success;
        } else if (sg->q) {     /* NULL: a channel operation lost the race for it */
            weft__waitq_remove(sg->q, sg);
        }
    }
    selunlock(NULL, &s);
    weft__sudog *sg = w->waiting;
    w->waiting = NULL;
    while (sg) {
        weft__sudog *next = sg->waitlink;
        weft__releasesudog(sg);
        sg = next;
    }
    if (fired && ret < 0)
        weft__throw("select: woken by a sudog that is not ours");
    if (fired)
        weft__race_acquire(cases[ret].ch);   /* the peer's past (as chanblock) */
    if (woke < 0) {
        ret = woke;     /* no timer could be armed */
    } else if (ret >= 0) {
        if (cases[ret].dir == WEFT_SEND && !success)
            weft_panic("send on closed channel");
        cases[ret].ok = success;   /* a closed recv: the closer zeroed elem */
    }

out:
    free(heap);
    return ret;
}

int weft_select(weft_case *cases, int n, int64_t timeout_ns)
{
    int r = selectgo(cases, n, timeout_ns);
    /* A select that did not park (a poll, or a case ready at once) is a
     * scheduling point, as the try operations are. */
    weft__preemptpoint();
    return r;
}
