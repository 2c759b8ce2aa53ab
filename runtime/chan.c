/*
 * chan.c — channels with Go's semantics (chan.go); select is in select.c.
 *
 * A channel is a lock (the runtime's futex mutex), a ring buffer of
 * dataqsiz elements and two FIFO wait queues, recvq and sendq, of sudogs
 * (park.c): one record per blocked operation.  Everything is done under
 * c->lock, as in Go:
 *
 *   send: a receiver waiting?  copy straight into its destination and wake
 *         it (no trip through the buffer); else room in the ring?  copy in;
 *         else queue on sendq and park.
 *   recv: a sender waiting?  unbuffered: copy straight from its source;
 *         buffered (so the ring is full): take the head of the ring and put
 *         the sender's value at the tail; wake it.  Else something in the
 *         ring?  take it; else closed?  zero and report it; else park.
 *   close: mark closed and wake every waiter: receivers get a zeroed value
 *         and ok = false, senders wake up to panic.
 *
 * Waiting and waking go through park.c: a goroutine parks with an unlock
 * callback that releases c->lock once it is off its stack, a plain thread
 * sleeps on its waiter's note.  The waker fills in the value and the
 * outcome under the lock, releases it, then wakes the waiter (a goroutine
 * goes to runnext, as Go's goready); after that it never touches the
 * sudog again.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"

AO_t weft__chan_inspecting;

#define MAX_ELEM_SIZE  ((size_t)1 << 16)    /* Go's limit: 64 KiB */

/* ---- data movement --------------------------------------------------------------- */

static inline char *chanbuf(weft_chan *c, size_t i) { return c->buf + i * c->elemsize; }

/* Slot i of a buffered channel as a sync address (race.h): the k-th send
 * happens before the k-th receive, which happens before the (k+cap)-th
 * send completes, as in Go.  A channel of empty values has no buffer: its
 * slots are one, the channel (over-ordering, never a false report).  The
 * address is computed only when a detector watches: the test is all the
 * buffered fast path pays. */
static inline void raceslot(weft_chan *c, size_t i)
{
    if (unlikely(weft__race)) {
        const void *a = c->buf ? (const void *)chanbuf(c, i) : (const void *)c;
        weft__race_acquire_slow(a);
        weft__race_release_slow(a);
    }
}

static inline void elemcopy(weft_chan *c, void *dst, const void *src)
{
    if (!dst || !src)
        return;
    /* Word-sized elements (the common case: ints, pointers) inline; a
     * libc memcpy call was 3% of a ping-pong round trip. */
    switch (c->elemsize) {
    case 0:
        return;
    case 4:
        memcpy(dst, src, 4);
        return;
    case 8:
        memcpy(dst, src, 8);
        return;
    default:
        memcpy(dst, src, c->elemsize);
    }
}

void weft__chan_elemclear(weft_chan *c, void *dst)
{
    if (dst && c->elemsize)
        memset(dst, 0, c->elemsize);
}

unsigned char weft__chanhooks;

/* A direct hand-off's uncommon steps before it touches the parked
 * goroutine's variable: the race detector's edge, and, for a goroutine
 * whose stack may be compacted, taking its stack back (stack.c: a waker
 * writing into a stack that is being copied out could be lost).  Out of
 * line: the common hand-off tests one byte, as it did for the race
 * detector alone. */
static __attribute__((noinline, cold)) void directhooks(weft_chan *c, weft__sudog *sg,
                                                        unsigned hooks)
{
    if (hooks & CHANHOOK_RACE)
        weft__race_acquire_slow(c);
    if (hooks & CHANHOOK_COMPACT)
        weft__stack_pin(sg->w->g);
}

/* The bodies are inline so that chan.c's own calls, whose unlockf is
 * known, compile to a direct unlock. */
static inline void senddirect(weft_chan *c, weft__sudog *sg, const void *ep,
                              weft__unlockf unlockf, void *arg)
{
    /* The parked receiver released c (chanblock): its past before we
     * write its variable, ours (the write included) before it resumes.
     * load: set before any goroutine it concerns could park (runtime.h). */
    unsigned hooks = AO_char_load(&weft__chanhooks);
    if (unlikely(hooks))
        directhooks(c, sg, hooks);
    elemcopy(c, sg->elem, ep);
    if (unlikely(hooks & CHANHOOK_RACE))
        weft__race_release_slow(c);
    sg->success = true;
    unlockf(NULL, arg);
    weft__wake(sg, true);
}

static inline void recvdirect(weft_chan *c, weft__sudog *sg, void *ep,
                              weft__unlockf unlockf, void *arg)
{
    /* As senddirect: the parked sender released c. */
    unsigned hooks = AO_char_load(&weft__chanhooks);   /* load: as senddirect's */
    if (unlikely(hooks))
        directhooks(c, sg, hooks);
    if (c->dataqsiz == 0) {
        elemcopy(c, ep, sg->elem);
    } else {
        /* Full ring: take the head, the sender's value goes to the tail
         * (which is the same slot, since the ring is full). */
        char *qp = chanbuf(c, c->recvx);
        raceslot(c, c->recvx);
        elemcopy(c, ep, qp);
        elemcopy(c, qp, sg->elem);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    if (unlikely(hooks & CHANHOOK_RACE))
        weft__race_release_slow(c);
    sg->success = true;
    unlockf(NULL, arg);
    weft__wake(sg, true);
}

static inline void sendbuf(weft_chan *c, const void *ep)
{
    raceslot(c, c->sendx);
    elemcopy(c, chanbuf(c, c->sendx), ep);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    /* store (under the lock): only len() reads it without the lock */
    AO_store(&c->qcount, AO_load(&c->qcount) + 1);
}

static inline void recvbuf(weft_chan *c, void *ep)
{
    raceslot(c, c->recvx);
    elemcopy(c, ep, chanbuf(c, c->recvx));
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    /* store (under the lock): only len() reads it without the lock */
    AO_store(&c->qcount, AO_load(&c->qcount) - 1);
}

void weft__chan_senddirect(weft_chan *c, weft__sudog *sg, const void *ep,
                           weft__unlockf unlockf, void *arg)
{
    senddirect(c, sg, ep, unlockf, arg);
}

void weft__chan_recvdirect(weft_chan *c, weft__sudog *sg, void *ep,
                           weft__unlockf unlockf, void *arg)
{
    recvdirect(c, sg, ep, unlockf, arg);
}

void weft__chan_sendbuf(weft_chan *c, const void *ep) { sendbuf(c, ep); }
void weft__chan_recvbuf(weft_chan *c, void *ep) { recvbuf(c, ep); }

static bool chanunlock(G *gp, void *c)
{
    (void)gp;
    weft__unlock(&((weft_chan *)c)->lock);
    return true;
}

/* Queues the caller on q (c->lock held) and blocks until a peer or close
 * ends the wait; returns with c->lock released and sg's outcome.
 *
 * Always inline: a goroutine that parks switches stacks at the bottom of
 * its call chain and resumes on another, so every return above the switch
 * misses in the CPU's return-stack predictor.  One more call level between
 * chansend and the switch cost a ping-pong round trip 20% (109 -> 133 ns,
 * 1 P), more than everything else the park path does. */
static inline __attribute__((always_inline)) bool chanblock(G *gp, weft_chan *c, weft__waitq *q, void *ep, weft__waitreason why)
{
    weft__thread tw;
    weft__sudog tsg;
    weft__waiter *w = weft__waiter_get(gp, &tw, why);
    weft__sudog *sg = weft__acquiresudog(w, &tsg);
    sg->obj = c;
    sg->elem = ep;
    sg->reason = (uint8_t)why;
    weft__waitq_push(q, &c->lock, sg);
    w->waiting = sg;
    /* Our past to the peer that completes the operation or the closer
     * (senddirect, recvdirect, close), and theirs to us once woken.  The
     * flag is read once: it is constant after boot. */
    bool race = weft__race;
    if (unlikely(race))
        weft__race_release_slow(c);
    weft__park(w, chanunlock, c, why, 0);
    if (unlikely(race))
        weft__race_acquire_slow(c);
    w->waiting = NULL;
    bool success = sg->success;
    weft__releasesudog(sg);
    return success;
}

_Noreturn void weft__block_forever(weft__waitreason why)
{
    weft__thread tw;
    weft__waiter *w = weft__waiter_get(weft__getg(), &tw, why);
    for (;;)
        weft__park(w, NULL, NULL, why, 0);
}

/* ---- make, free, len, cap ------------------------------------------------------ */

weft_chan *weft_chan_new(size_t elem_size, size_t cap)
{
    if (elem_size > MAX_ELEM_SIZE || cap > (size_t)PTRDIFF_MAX)
        return NULL;
    if (elem_size && cap > ((size_t)PTRDIFF_MAX >> 1) / elem_size)
        return NULL;
    weft_chan *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    weft__race_untrack(c, sizeof *c);       /* weft's own (race.h) */
    weft__lockinit(&c->lock, LOCKRANK_HCHAN);
    c->dataqsiz = cap;
    c->elemsize = elem_size;
    if (cap && elem_size) {
        c->buf = malloc(cap * elem_size);
        if (!c->buf) {
            free(c);
            return NULL;
        }
        /* The buffer too: weft copies values in and out under the lock;
         * what a value points to is ordered by the slot's edges (raceslot),
         * which cover the accesses around a send and a receive, not the
         * copy a sender makes after its edge. */
        weft__race_untrack(c->buf, cap * elem_size);
    }
    return c;
}

void weft_chan_free(weft_chan *c)
{
    if (!c)
        return;
    weft__lock(&c->lock);
    bool busy = c->recvq.first || c->sendq.first;
    weft__unlock(&c->lock);
    if (busy)
        weft_panic("weft_chan_free: a goroutine or thread is still blocked on the channel");
    /* load-full: pairs with the store-full in weft__view_chanwaiters.
     * Either sysmon's check that a goroutine still waits here comes after
     * that goroutine's wake-up (which came before this free) and it lets
     * c be, or we see it reading c and wait (a few microseconds). */
    while (AO_load_full(&weft__chan_inspecting) == (AO_t)c)
        sched_yield();
    free(c->buf);
    free(c);
}

size_t weft_chan_len(weft_chan *c)
{
    /* load: a snapshot, as Go's len(ch); qcount is written under the lock */
    return c ? (size_t)AO_load(&c->qcount) : 0;
}

size_t weft_chan_cap(weft_chan *c) { return c ? c->dataqsiz : 0; }

/* ---- send --------------------------------------------------------------------- */

static int chansend(weft_chan *c, const void *ep, bool block)
{
    G *gp = weft__note_plain_thread();
    if (c && !ep && c->elemsize)
        return -EINVAL;     /* the receiver would get a value nobody sent */
    if (!c) {
        if (!block)
            return WEFT_WOULDBLOCK;
        weft__block_forever(waitReasonChanSendNilChan);
    }
    weft__lock(&c->lock);
    if (c->closed) {
        weft__unlock(&c->lock);
        weft_panic("send on closed channel");
    }
    weft__sudog *sg = weft__waitq_pop(&c->recvq);
    if (sg) {
        senddirect(c, sg, ep, chanunlock, c);
        return WEFT_OK;
    }
    /* load under c->lock (see qcount) */
    if (AO_load(&c->qcount) < c->dataqsiz) {
        sendbuf(c, ep);
        weft__unlock(&c->lock);
        return WEFT_OK;
    }
    if (!block) {
        weft__unlock(&c->lock);
        return WEFT_WOULDBLOCK;
    }
    if (!chanblock(gp, c, &c->sendq, (void *)ep, waitReasonChanSend))
        weft_panic("send on closed channel");
    return WEFT_OK;
}

int weft_chan_send(weft_chan *c, const void *elem) { return chansend(c, elem, true); }

/* The try operations never park: each is a scheduling point instead
 * (weft__preemptpoint), so a goroutine polling a channel in a loop lets
 * the others on its P run. */
int weft_chan_trysend(weft_chan *c, const void *elem)
{
    int r = chansend(c, elem, false);
    weft__preemptpoint();
    return r;
}

/* ---- receive ------------------------------------------------------------------ */

static int chanrecv(weft_chan *c, void *ep, bool block)
{
    G *gp = weft__note_plain_thread();
    if (!c) {
        if (!block)
            return WEFT_WOULDBLOCK;
        weft__block_forever(waitReasonChanReceiveNilChan);
    }
    weft__lock(&c->lock);
    if (c->closed) {
        /* load under c->lock (see qcount) */
        if (AO_load(&c->qcount) == 0) {
            weft__race_acquire(c);      /* the close happens before */
            weft__unlock(&c->lock);
            weft__chan_elemclear(c, ep);
            return WEFT_CLOSED;
        }
    } else {
        weft__sudog *sg = weft__waitq_pop(&c->sendq);
        if (sg) {
            recvdirect(c, sg, ep, chanunlock, c);
            return WEFT_OK;
        }
    }
    /* load under c->lock (see qcount) */
    if (AO_load(&c->qcount) > 0) {
        recvbuf(c, ep);
        weft__unlock(&c->lock);
        return WEFT_OK;
    }
    if (!block) {
        weft__unlock(&c->lock);
        return WEFT_WOULDBLOCK;
    }
    /* the closer zeroed *ep when it fails */
    return chanblock(gp, c, &c->recvq, ep, waitReasonChanReceive) ? WEFT_OK : WEFT_CLOSED;
}

bool weft_chan_recv(weft_chan *c, void *elem) { return chanrecv(c, elem, true) == WEFT_OK; }

int weft_chan_tryrecv(weft_chan *c, void *elem)
{
    int r = chanrecv(c, elem, false);
    weft__preemptpoint();
    return r;
}

/* ---- close ------------------------------------------------------------------------ */

void weft_chan_close(weft_chan *c)
{
    if (!c)
        weft_panic("close of nil channel");
    (void)weft__note_plain_thread();
    weft__lock(&c->lock);
    if (c->closed) {
        weft__unlock(&c->lock);
        weft_panic("close of closed channel");
    }
    c->closed = true;
    /* After the parked waiters' pasts (their variables are zeroed below);
     * released before the unlock, to the waiters and to any receive that
     * sees the close. */
    weft__race_acquire(c);
    /* Collect everyone (linked through next, free once dequeued), wake
     * them after unlocking, in queue order: receivers, then senders. */
    weft__sudog *head = NULL, **tail = &head, *sg;
    while ((sg = weft__waitq_pop(&c->recvq)) != NULL) {
        /* load: as senddirect's */
        if (unlikely(AO_char_load(&weft__chanhooks) & CHANHOOK_COMPACT))
            weft__stack_pin(sg->w->g);      /* as directhooks */
        weft__chan_elemclear(c, sg->elem);
        sg->success = false;
        *tail = sg;
        tail = &sg->next;
    }
    while ((sg = weft__waitq_pop(&c->sendq)) != NULL) {
        sg->success = false;
        *tail = sg;
        tail = &sg->next;
    }
    weft__race_release(c);
    weft__unlock(&c->lock);
    weft__wakelist(head, true);
}
