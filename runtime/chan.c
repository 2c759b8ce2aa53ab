/*
 * chan.c — channels and select, with Go's semantics (chan.go, select.go).
 *
 * A channel is a lock (the runtime's futex mutex), a ring buffer of
 * dataqsiz elements and two FIFO wait queues, recvq and sendq, of sudogs:
 * one small record per blocked operation, allocated on the waiter's own
 * stack.  Everything is done under c->lock, as in Go:
 *
 *   send: a receiver waiting?  copy straight into its destination and wake
 *         it (no trip through the buffer); else room in the ring?  copy in;
 *         else enqueue on sendq and park.
 *   recv: a sender waiting?  unbuffered: copy straight from its source;
 *         buffered (so the ring is full): take the head of the ring and put
 *         the sender's value at the tail; wake it.  Else something in the
 *         ring?  take it; else closed?  zero and report it; else park.
 *   close: mark closed and wake every waiter: receivers get a zeroed value
 *         and ok = false, senders wake up to panic.
 *
 * Waking.  A waiter is either a goroutine, which parks (weft__park with an
 * unlockf that releases c->lock only once the goroutine is off its stack,
 * so no waker can ready it early), or a plain OS thread (outside any
 * goroutine, or a g0), which sleeps on a futex note in its waiter record.
 * The waker fills in the value and the outcome under the lock, releases
 * the lock, then readies the goroutine (runnext, as Go's goready) or wakes
 * the note; after that it never touches the record again.
 *
 * select (Go's selectgo): cases on NULL channels are dropped; the others
 * are visited in a random order (pollorder) with all their channels locked
 * in address order (lockorder, each distinct lock once).  Pass 1 takes the
 * first ready case.  Pass 2 enqueues one sudog per case, all sharing one
 * waiter record, and parks.  Whoever wakes it — a channel operation or the
 * timeout — must first win a CAS 0 -> 1 on the waiter's `done` word
 * (Go's gp.selectDone); a channel operation that loses simply skips that
 * sudog, the timer that loses does nothing.  Pass 3, after waking, relocks
 * every channel and unlinks the sudogs that did not fire.
 *
 * Timeouts (timeout_ns > 0).  A plain thread sleeps with a deadline on its
 * note.  A goroutine arms a runtime timer (timer.c) whose callback, if it
 * wins `done`, readies the goroutine.  The callback does not take the
 * channel locks; it synchronises with the parking goroutine through
 * waiter.lock, which the goroutine holds from its last check of `done`
 * until it is off its stack (released in the unlockf with the channel
 * locks).  Because a timer callback may still be running after
 * weft__deltimer says it already fired, the waiter record and the timer of
 * a timed goroutine select live in one heap block with two references (the
 * goroutine's and the callback's); the last one out frees it.
 *
 * Lock order: channel locks in address order < waiter.lock < (timerlock,
 * sched.lock inside weft__addtimer / weft__ready, never while holding the
 * former: wake-ups happen after unlocking).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define MAX_ELEM_SIZE  ((size_t)1 << 16)    /* Go's limit: 64 KiB */
#define MAX_CASES      65536                /* Go's limit */
#define STACK_CASES    64                   /* cases handled without malloc */

/* One blocked party: a goroutine (g != NULL) or a plain thread (note). */
typedef struct waiter {
    G *g;                   /* const: NULL for a thread */
    weft__note note;        /* thread only: woken once by the waker */
    AO_t done;              /* atomic, select only: 0 -> 1 by whoever wakes it */
    struct sudog *fired;    /* written by the CAS winner before the wake-up */
    weft__mutex lock;       /* timed goroutine select: see the top comment */
    bool parked;            /* lock: the goroutine committed to parking */
} waiter;

typedef struct sudog {
    waiter *w;
    struct sudog *next, *prev;  /* c->lock */
    void *elem;             /* the value to send / where to receive (may be NULL) */
    weft_chan *c;
    bool isselect;          /* const: dequeue must win w->done */
    bool success;           /* c->lock: true = a value moved, false = closed */
} sudog;

typedef struct { sudog *first, *last; } waitq;

struct weft_chan {
    weft__mutex lock;
    AO_t qcount;            /* lock to write (AO_store); read racily by weft_chan_len.
                             * Every AO_load of it under the lock is a plain
                             * read of a lock-protected word: the lock orders it. */
    size_t dataqsiz;        /* const: capacity */
    size_t elemsize;        /* const */
    char *buf;              /* const: dataqsiz * elemsize bytes (NULL if 0) */
    size_t sendx, recvx;    /* lock */
    bool closed;            /* lock */
    waitq recvq, sendq;     /* lock */
};

/* ---- helpers ------------------------------------------------------------- */

static inline char *chanbuf(weft_chan *c, size_t i) { return c->buf + i * c->elemsize; }

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

static inline void elemclear(weft_chan *c, void *dst)
{
    if (dst && c->elemsize)
        memset(dst, 0, c->elemsize);
}

static void enqueue(waitq *q, sudog *sg)
{
    sg->next = NULL;
    sg->prev = q->last;
    if (q->last)
        q->last->next = sg;
    else
        q->first = sg;
    q->last = sg;
}

/* Takes the first waiter that can still be woken: a select's sudog counts
 * only if we win its waiter's `done`.  Clears the links of whatever it
 * removes, so that dequeue_sudog can tell it is gone. */
static sudog *dequeue(waitq *q)
{
    for (;;) {
        sudog *sg = q->first;
        if (!sg)
            return NULL;
        sudog *y = sg->next;
        if (y) {
            y->prev = NULL;
            q->first = y;
            sg->next = NULL;
        } else {
            q->first = q->last = NULL;
        }
        /* CAS-full: exactly one party (a channel op on any of the select's
         * channels, or the timer) wins the right to wake this select; full
         * so that our writes to it (value, fired, success), made after the
         * CAS under our channel lock, cannot be reordered before it. */
        if (sg->isselect && !AO_compare_and_swap_full(&sg->w->done, 0, 1))
            continue;
        return sg;
    }
}

/* Unlinks sg if it is still queued (Go's dequeueSudoG). */
static void dequeue_sudog(waitq *q, sudog *sg)
{
    sudog *x = sg->prev, *y = sg->next;
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
        q->first = y;
    } else if (q->first == sg) {
        q->first = q->last = NULL;
    }
    sg->next = sg->prev = NULL;
}

/* Wakes the party behind sg.  Called without any channel lock, after the
 * value and sg->success were written; sg may be gone once this returns. */
static void wake(sudog *sg)
{
    waiter *w = sg->w;
    G *gp = w->g;
    if (gp)
        weft__ready(gp, true);  /* its CAS-full publishes our writes to gp */
    else
        weft__notewakeup(&w->note); /* CAS-full; the sleeper loads with acquire */
}

static bool unlock_chan(G *gp, void *arg)
{
    (void)gp;
    weft__unlock(&((weft_chan *)arg)->lock);
    return true;
}

/* Blocks the caller on sg (already queued on c, c->lock held) until woken;
 * returns with c->lock released. */
static void block_on(weft_chan *c, waiter *w, weft__waitreason why)
{
    if (w->g) {
        weft__park(unlock_chan, c, why);
    } else {
        weft__unlock(&c->lock);
        weft__notesleep(&w->note);
    }
}

static inline bool is_thread(G *gp) { return !gp || gp->issystem; }

/* A plain thread uses a channel: it may wake (or be woken by) goroutines
 * at any later time, so deadlock detection must stand down (see
 * weft__checkdead).  Called by every operation, blocking or not. */
static inline G *getg_note_foreign(void)
{
    G *gp = weft__getg();
    /* load first: keeps the flag's cache line shared once it is set;
     * store: a one-way flag, read with a load under sched.lock */
    if (unlikely(is_thread(gp)) && !AO_load(&sched.foreign))
        AO_store(&sched.foreign, 1);
    return gp;
}

/* A NULL channel: block forever, as Go's nil channel. */
static _Noreturn void block_forever(weft__waitreason why)
{
    G *gp = weft__getg();
    for (;;) {
        if (is_thread(gp)) {
            weft__note n;
            weft__noteclear(&n);
            weft__notesleep(&n);
        } else {
            weft__park(NULL, NULL, why);
        }
    }
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
    weft__lockinit(&c->lock, LOCKRANK_HCHAN);
    c->dataqsiz = cap;
    c->elemsize = elem_size;
    if (cap && elem_size) {
        c->buf = malloc(cap * elem_size);
        if (!c->buf) {
            free(c);
            return NULL;
        }
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

/* With c->lock held and sg dequeued from recvq: hand ep to its receiver,
 * unlock, wake it. */
static void send_direct(weft_chan *c, sudog *sg, const void *ep)
{
    elemcopy(c, sg->elem, ep);
    sg->success = true;
    sg->w->fired = sg;
    weft__unlock(&c->lock);
    wake(sg);
}

/* With c->lock held and room in the ring: copy ep in, unlock. */
static void send_buf(weft_chan *c, const void *ep)
{
    elemcopy(c, chanbuf(c, c->sendx), ep);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    /* store (under the lock): only len() reads it without the lock */
    AO_store(&c->qcount, AO_load(&c->qcount) + 1);
    weft__unlock(&c->lock);
}

static int chansend(weft_chan *c, const void *ep, bool block)
{
    G *gp = getg_note_foreign();
    if (!c) {
        if (!block)
            return WEFT_WOULDBLOCK;
        block_forever(waitReasonChanSendNilChan);
    }
    weft__lock(&c->lock);
    if (c->closed) {
        weft__unlock(&c->lock);
        weft_panic("send on closed channel");
    }
    sudog *sg = dequeue(&c->recvq);
    if (sg) {
        send_direct(c, sg, ep);
        return WEFT_OK;
    }
    /* load under c->lock (see qcount) */
    if (AO_load(&c->qcount) < c->dataqsiz) {
        send_buf(c, ep);
        return WEFT_OK;
    }
    if (!block) {
        weft__unlock(&c->lock);
        return WEFT_WOULDBLOCK;
    }
    waiter w = { .g = is_thread(gp) ? NULL : gp };
    sudog me = { .w = &w, .elem = (void *)ep, .c = c };
    if (!w.g)
        weft__noteclear(&w.note);
    enqueue(&c->sendq, &me);
    block_on(c, &w, waitReasonChanSend);
    if (!me.success)
        weft_panic("send on closed channel");
    return WEFT_OK;
}

int weft_chan_send(weft_chan *c, const void *elem) { return chansend(c, elem, true); }
int weft_chan_trysend(weft_chan *c, const void *elem) { return chansend(c, elem, false); }

/* ---- receive ------------------------------------------------------------------ */

/* With c->lock held and sg dequeued from sendq: take its value (through
 * the ring if buffered, which is then full), unlock, wake it. */
static void recv_direct(weft_chan *c, sudog *sg, void *ep)
{
    if (c->dataqsiz == 0) {
        elemcopy(c, ep, sg->elem);
    } else {
        /* Full ring: take the head, the sender's value goes to the tail
         * (which is the same slot, since the ring is full). */
        char *qp = chanbuf(c, c->recvx);
        elemcopy(c, ep, qp);
        elemcopy(c, qp, sg->elem);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->success = true;
    sg->w->fired = sg;
    weft__unlock(&c->lock);
    wake(sg);
}

static void recv_buf(weft_chan *c, void *ep)
{
    elemcopy(c, ep, chanbuf(c, c->recvx));
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    /* store (under the lock): only len() reads it without the lock */
    AO_store(&c->qcount, AO_load(&c->qcount) - 1);
    weft__unlock(&c->lock);
}

static int chanrecv(weft_chan *c, void *ep, bool block)
{
    G *gp = getg_note_foreign();
    if (!c) {
        if (!block)
            return WEFT_WOULDBLOCK;
        block_forever(waitReasonChanReceiveNilChan);
    }
    weft__lock(&c->lock);
    if (c->closed) {
        /* load under c->lock (see qcount) */
        if (AO_load(&c->qcount) == 0) {
            weft__unlock(&c->lock);
            elemclear(c, ep);
            return WEFT_CLOSED;
        }
    } else {
        sudog *sg = dequeue(&c->sendq);
        if (sg) {
            recv_direct(c, sg, ep);
            return WEFT_OK;
        }
    }
    /* load under c->lock (see qcount) */
    if (AO_load(&c->qcount) > 0) {
        recv_buf(c, ep);
        return WEFT_OK;
    }
    if (!block) {
        weft__unlock(&c->lock);
        return WEFT_WOULDBLOCK;
    }
    waiter w = { .g = is_thread(gp) ? NULL : gp };
    sudog me = { .w = &w, .elem = ep, .c = c };
    if (!w.g)
        weft__noteclear(&w.note);
    enqueue(&c->recvq, &me);
    block_on(c, &w, waitReasonChanReceive);
    /* the closer zeroed *ep when !success */
    return me.success ? WEFT_OK : WEFT_CLOSED;
}

bool weft_chan_recv(weft_chan *c, void *elem) { return chanrecv(c, elem, true) == WEFT_OK; }
int weft_chan_tryrecv(weft_chan *c, void *elem) { return chanrecv(c, elem, false); }

/* ---- close ------------------------------------------------------------------------ */

void weft_chan_close(weft_chan *c)
{
    if (!c)
        weft_panic("close of nil channel");
    (void)getg_note_foreign();
    weft__lock(&c->lock);
    if (c->closed) {
        weft__unlock(&c->lock);
        weft_panic("close of closed channel");
    }
    c->closed = true;
    /* Collect everyone (linked through next, free once dequeued), wake
     * them after unlocking. */
    sudog *list = NULL, *sg;
    while ((sg = dequeue(&c->recvq)) != NULL) {
        elemclear(c, sg->elem);
        sg->success = false;
        sg->w->fired = sg;
        sg->next = list;
        list = sg;
    }
    while ((sg = dequeue(&c->sendq)) != NULL) {
        sg->success = false;
        sg->w->fired = sg;
        sg->next = list;
        list = sg;
    }
    weft__unlock(&c->lock);
    while (list) {
        sg = list;
        list = sg->next;    /* read before the wake: sg dies with it */
        wake(sg);
    }
}

/* ---- select ------------------------------------------------------------------------ */

/* A timed goroutine select's waiter and timer (see the top comment). */
typedef struct seltimed {
    waiter w;
    weft__timer t;
    AO_t refs;              /* atomic: 2 = the goroutine's + the callback's */
} seltimed;

static void seltimed_unref(seltimed *st)
{
    /* fetch-and-sub full: the last one out sees every write of the other
     * before freeing */
    if (AO_fetch_and_sub1_full(&st->refs) == 1)
        free(st);
}

/* The timeout fired (timer.c, on some M, no channel lock held). */
static void select_timeout_fire(G *gp, void *arg)
{
    seltimed *st = arg;
    waiter *w = &st->w;
    weft__lock(&w->lock);
    /* CAS-full: the same race as dequeue's; the lock orders it against the
     * goroutine's check of done and its commitment to park. */
    bool won = AO_compare_and_swap_full(&w->done, 0, 1);
    bool parked = w->parked;
    if (won)
        w->fired = NULL;
    weft__unlock(&w->lock);
    /* Parked and we won: nobody else will ready it, and it cannot run
     * before we do.  Won but not parked: it sees done when it takes
     * w->lock and returns -1 without parking. */
    if (won && parked)
        weft__ready(gp, false);
    seltimed_unref(st);
}

typedef struct selstate {
    weft_case *cases;
    uint16_t *lockorder;
    int nlock;              /* entries in lockorder (non-NULL channels) */
    waiter *w;              /* for the unlockf */
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

static void selunlock(selstate *s)
{
    /* Reverse order, each distinct channel once (Go's selunlock). */
    for (int i = s->nlock - 1; i >= 0; i--) {
        weft_chan *c = s->cases[s->lockorder[i]].ch;
        if (i > 0 && c == s->cases[s->lockorder[i - 1]].ch)
            continue;
        weft__unlock(&c->lock);
    }
}

/* Runs once the selecting goroutine is off its stack.  As soon as w->lock
 * is released the timer may ready it, and as soon as any channel lock is
 * released a channel operation may; either way the goroutine then blocks
 * in pass 3's sellock on the lowest channel lock, which selunlock releases
 * last, so s (on its stack) stays valid until that final unlock and is not
 * touched after it.  With no channel at all, nothing is touched after
 * w->lock is released. */
static bool selparkcommit(G *gp, void *arg)
{
    (void)gp;
    selstate *s = arg;
    selstate copy = *s;
    weft__unlock(&copy.w->lock);
    selunlock(&copy);
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
                selunlock(s);
                weft_panic("send on closed channel");
            }
            sudog *sg = dequeue(&c->recvq);
            /* load under c->lock (see qcount) */
            if (sg || AO_load(&c->qcount) < c->dataqsiz) {
                if (sg) {
                    elemcopy(c, sg->elem, k->elem);
                    sg->success = true;
                    sg->w->fired = sg;
                } else {
                    elemcopy(c, chanbuf(c, c->sendx), k->elem);
                    if (++c->sendx == c->dataqsiz)
                        c->sendx = 0;
                    /* store (under the lock): len() reads it racily */
                    AO_store(&c->qcount, AO_load(&c->qcount) + 1);
                }
                selunlock(s);
                if (sg)
                    wake(sg);
                k->ok = true;
                return ci;
            }
        } else {
            sudog *sg = dequeue(&c->sendq);
            if (sg) {
                /* recv_direct without its unlock */
                if (c->dataqsiz == 0) {
                    elemcopy(c, k->elem, sg->elem);
                } else {
                    char *qp = chanbuf(c, c->recvx);
                    elemcopy(c, k->elem, qp);
                    elemcopy(c, qp, sg->elem);
                    if (++c->recvx == c->dataqsiz)
                        c->recvx = 0;
                    c->sendx = c->recvx;
                }
                sg->success = true;
                sg->w->fired = sg;
                selunlock(s);
                wake(sg);
                k->ok = true;
                return ci;
            }
            /* load under c->lock (see qcount) */
            if (AO_load(&c->qcount) > 0) {
                elemcopy(c, k->elem, chanbuf(c, c->recvx));
                if (++c->recvx == c->dataqsiz)
                    c->recvx = 0;
                /* store (under the lock): len() reads it racily */
                AO_store(&c->qcount, AO_load(&c->qcount) - 1);
                selunlock(s);
                k->ok = true;
                return ci;
            }
            if (c->closed) {
                selunlock(s);
                elemclear(c, k->elem);
                k->ok = false;
                return ci;
            }
        }
    }
    return -1;
}

int weft_select(weft_case *cases, int n, int64_t timeout_ns)
{
    if (n < 0 || n > MAX_CASES || (n > 0 && !cases))
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (cases[i].dir != WEFT_SEND && cases[i].dir != WEFT_RECV)
            return -EINVAL;

    G *gp = getg_note_foreign();
    bool thread = is_thread(gp);
    int64_t deadline = timeout_ns > 0 ? weft__nanotime() + timeout_ns : 0;

    uint16_t stack_order[2 * STACK_CASES];
    sudog stack_sg[STACK_CASES];
    uint16_t *pollorder = stack_order;
    sudog *sgs = stack_sg;
    void *heap = NULL;
    if (n > STACK_CASES) {
        heap = malloc((size_t)n * (2 * sizeof(uint16_t) + sizeof(sudog)) + sizeof(sudog));
        if (!heap)
            return -ENOMEM;
        sgs = heap;
        pollorder = (uint16_t *)(sgs + n);
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
        block_forever(waitReasonSelectNoCases);
    }
    /* (No case but a timeout: the code below just sleeps it out.) */

    seltimed *st = NULL;
    waiter wstack = { .g = thread ? NULL : gp };
    weft__lockinit(&wstack.lock, LOCKRANK_SELECT);
    waiter *w = &wstack;
    int ret;

    for (;;) {
        sellock(&s);
        ret = selpoll(&s, pollorder, norder);
        if (ret >= 0)
            goto out;
        if (timeout_ns == 0 || (deadline && weft__nanotime() >= deadline)) {
            selunlock(&s);
            ret = -1;
            goto out;
        }
        if (timeout_ns < 0 || thread || st)
            break;
        /* A goroutine with a timeout: arm the timer without the channel
         * locks (the timer layer takes its own), then look again. */
        selunlock(&s);
        st = calloc(1, sizeof *st);
        if (!st) {
            ret = -ENOMEM;
            goto out;
        }
        st->w.g = gp;
        weft__lockinit(&st->w.lock, LOCKRANK_SELECT);
        st->refs = 2;       /* plain store: not yet published */
        st->t = (weft__timer){ .when = deadline, .f = select_timeout_fire, .gp = gp,
                               .arg = st, .pp = NULL, .idx = -1 };
        w = &st->w;
        if (weft__addtimer(&st->t) != 0) {
            free(st);
            st = NULL;
            ret = -ENOMEM;
            goto out;
        }
    }

    /* Pass 2: enqueue on every channel, in lock order, and sleep. */
    if (thread)
        weft__noteclear(&w->note);
    for (int i = 0; i < norder; i++) {
        int ci = s.lockorder[i];
        weft_case *k = &cases[ci];
        sudog *sg = &sgs[ci];
        *sg = (sudog){ .w = w, .elem = k->elem, .c = k->ch, .isselect = true };
        enqueue(k->dir == WEFT_SEND ? &k->ch->sendq : &k->ch->recvq, sg);
    }
    if (thread) {
        selunlock(&s);
        if (deadline) {
            int64_t left = deadline - weft__nanotime();
            if (!weft__notetsleep(&w->note, left > 0 ? left : 0)) {
                /* Timed out, unless someone won `done` meanwhile, in which
                 * case its wake-up is on the way and must be consumed.
                 * CAS-full: the same race as dequeue's. */
                if (AO_compare_and_swap_full(&w->done, 0, 1))
                    w->fired = NULL;
                else
                    weft__notesleep(&w->note);
            }
        } else {
            weft__notesleep(&w->note);
        }
    } else {
        if (st) {
            weft__lock(&w->lock);
            /* load: done changes under w->lock (timer) or by a channel op's
             * CAS, which needs a channel lock we hold — so only the timer
             * can have set it, and we hold its lock. */
            if (AO_load(&w->done)) {
                /* The timer won before we committed: unqueue, time out. */
                for (int i = 0; i < norder; i++) {
                    int ci = s.lockorder[i];
                    weft_case *k = &cases[ci];
                    dequeue_sudog(k->dir == WEFT_SEND ? &k->ch->sendq : &k->ch->recvq, &sgs[ci]);
                }
                weft__unlock(&w->lock);
                selunlock(&s);
                ret = -1;
                goto out;
            }
            w->parked = true;
        } else {
            /* Nobody else knows w->lock: take it so that selparkcommit's
             * unlock is unconditional. */
            weft__lock(&w->lock);
        }
        s.w = w;
        weft__park(selparkcommit, &s, waitReasonSelect);
    }

    /* Pass 3: woken by a channel (w->fired) or the timeout (NULL).  Unlink
     * the sudogs that did not fire. */
    sellock(&s);
    sudog *fired = w->fired;
    ret = -1;
    bool success = false;
    for (int i = 0; i < norder; i++) {
        int ci = s.lockorder[i];
        weft_case *k = &cases[ci];
        if (&sgs[ci] == fired) {
            ret = ci;
            success = fired->success;
        } else {
            dequeue_sudog(k->dir == WEFT_SEND ? &k->ch->sendq : &k->ch->recvq, &sgs[ci]);
        }
    }
    selunlock(&s);
    if (fired && ret < 0)
        weft__throw("select: woken by a sudog that is not ours");
    if (ret >= 0) {
        if (cases[ret].dir == WEFT_SEND && !success)
            weft_panic("send on closed channel");
        cases[ret].ok = success;   /* a closed recv: the closer zeroed elem */
    }

out:
    if (st) {
        /* If the timer was still queued its callback will never run: drop
         * its reference for it.  Else it ran or is running and drops it. */
        if (weft__deltimer(&st->t))
            seltimed_unref(st);
        seltimed_unref(st);
    }
    free(heap);
    return ret;
}
