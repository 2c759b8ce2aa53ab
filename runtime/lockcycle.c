/*
 * lockcycle.c — lock cycles among weft_mutex holders, found when a waiter
 * blocks (docs/design.md, "Lock cycles"; the report: docs/formats.md).
 *
 * Goroutine 5 holds A and blocks on B; goroutine 6 holds B and blocks on
 * A.  Neither can ever run again, but other goroutines may, so Go's
 * checkdead (all goroutines asleep) never fires: the program just stops
 * doing part of its work.  weft looks for such a cycle each time a
 * goroutine or plain thread is about to park in weft_mutex_lock, and
 * reports it once:
 *
 *   weft: lock cycle:
 *   	goroutine 6 waits for mutex 0x5581c0 held by goroutine 5
 *   	goroutine 5 waits for mutex 0x5581d0 held by goroutine 6
 *
 * then the traceback of every member, or, with SCHEDDEBUG=lockcycle=fatal,
 * dies with it as a fatal error.
 *
 * What it knows.  Every weft_mutex records who locked it in its owner word
 * (lockcycle.h: a goroutine's goid, a thread's tid, tagged): the lock's
 * fast path pays one store for it, unlock one more, and the owner word is
 * written only inside the locked section (after the CAS that takes it,
 * before the fetch-and-add that releases it), so the mutex itself orders
 * its writes: the word is the current holder or 0, never a previous one.
 * A waiter, on its slow path, registers its wait (holder, mutex, a
 * sequence number) in a small table of buckets keyed by holder.
 *
 * The walk.  From the blocking waiter W and the mutex m0 it waits for:
 * h1 = owner(m0); h1's registered wait says it waits for m1; h2 =
 * owner(m1); ... until a hop finds nobody (an unlocked mutex, a holder
 * that is not waiting for a mutex: no cycle) or W again (a cycle).  A
 * chain that loops without W is some other waiter's cycle, reported by
 * whichever of its members blocked last.  Each hop is a load and a bucket
 * look-up: a contended lock pays a couple of uncontended bucket locks.
 *
 * Why no cycle is missed.  Each waiter registers (under its bucket's
 * lock), issues a full barrier, then walks; its owner words were written
 * before, in program order.  Of the members of a cycle, the one whose
 * barrier comes last sees every other member's owner words and
 * registration, so it finds the cycle.
 *
 * Why no cycle is invented.  The walk reads other waiters' state while
 * they run.  A holder registered in its wait cannot lock or unlock
 * anything (it is inside weft_mutex_lock until it gets the mutex, and
 * then unregisters first), so its holdings are frozen for as long as the
 * same wait (same sequence number) stays registered.  So the cycle is
 * read twice, the second time under cyclelock and after a full barrier:
 * if every member is still in the same wait and every owner word still
 * names the next member, then at every instant between the two reads each
 * member was inside lock(m_i) with m_i held by the next: a deadlock.
 * What remains is Go's freedom to unlock a mutex another goroutine
 * locked: a goroutine outside the cycle that would unlock one of its
 * mutexes later breaks it, and the report was premature.  A program that
 * hands mutexes over that way should run with lockcycle=0.
 *
 * Once.  A holder waits for one mutex at a time, so a wait belongs to at
 * most one cycle; reporting marks every member's wait, under cyclelock,
 * and a cycle with a marked member is not reported again.
 */
#include <stdio.h>

#include "lockcycle.h"
#include "race.h"
#include "diag/print.h"
#include "diag/scheddebug.h"
#include "diag/traceback.h"
#include "diag/unwind.h"

#define CYCLE_MAX 16            /* members a reported cycle may have */
#define LOCKWAIT_SHIFT 10       /* 1024 buckets */

AO_t weft__lockcycles;

/* Not padded to a cache line each: a bucket is touched only by waiters
 * about to park, and 1024 of them keep the chains short (a lookup walks
 * its bucket: with N goroutines waiting for mutexes, N / 1024 records). */
typedef struct lockwaitbucket {
    weft__mutex lock;
    weft__lockwait *head;       /* lock: the registered waits of holders hashed here */
    uint64_t gen;               /* lock: waits registered here so far */
} lockwaitbucket;

static lockwaitbucket lockwaits[1 << LOCKWAIT_SHIFT] = {
    [0 ... (1 << LOCKWAIT_SHIFT) - 1] = { .lock = WEFT__MUTEX_INIT(LOCKRANK_LOCKWAIT) }
};
static weft__mutex cyclelock = WEFT__MUTEX_INIT(LOCKRANK_LOCKCYCLE);

uintptr_t weft__lockholder_thread(void)
{
    static __thread uintptr_t self;
    if (!self)
        self = (uintptr_t)weft__gettid() << 1 | 1;
    return self;
}

static lockwaitbucket *bucketfor(uintptr_t holder)
{
    return &lockwaits[(uint64_t)holder * 0x9e3779b97f4a7c15ull >> (64 - LOCKWAIT_SHIFT)];
}

/* A member of a cycle as the walk read it: holder waits for m. */
typedef struct member {
    uintptr_t holder;
    weft_mutex *m;
    G *g;
    uint64_t seq;
    bool rw, reported;
} member;

/* Copies holder's registered wait into *out; false if it has none. */
static bool lookup(uintptr_t holder, member *out)
{
    lockwaitbucket *b = bucketfor(holder);
    bool found = false;
    weft__lock(&b->lock);
    for (weft__lockwait *w = b->head; w; w = w->next) {
        if (w->holder == holder) {
            *out = (member){ w->holder, w->m, w->g, w->seq, w->rw, w->reported };
            found = true;
            break;
        }
    }
    weft__unlock(&b->lock);
    return found;
}

static uintptr_t ownerof(weft_mutex *m)
{
    /* Read while the holder may be storing it: helgrind and DRD, which
     * see a plain load, check nothing there (the holders' own stores are
     * ordered by the mutex's annotations, sync.c). */
    weft__race_untrack(&m->owner, sizeof m->owner);
    /* load-acquire: the holder wrote it inside its locked section, before
     * registering any wait of its own (see the top comment: the full
     * barriers after registering order it for the walkers) */
    return (uintptr_t)AO_load_acquire((AO_t *)&m->owner);
}

/* The cycle through me, if the chain of holders from me's mutex leads
 * back to me: its members in cyc[0..n), cyc[0] = me, each waiting for a
 * mutex the next holds.  0: no cycle through me. */
static int walk(const weft__lockwait *me, member *cyc)
{
    cyc[0] = (member){ me->holder, me->m, me->g, me->seq, me->rw, false };
    int n = 1;
    for (;;) {
        uintptr_t h = ownerof(cyc[n - 1].m);
        if (h == 0)
            return 0;
        if (h == me->holder)
            return n;
        if (n == CYCLE_MAX)
            return 0;
        for (int i = 1; i < n; i++)
            if (cyc[i].holder == h)
                return 0;       /* a cycle that does not go through me */
        if (!lookup(h, &cyc[n]))
            return 0;
        n++;
    }
}

/* The second read (see the top comment), under cyclelock: true if every
 * member is still in the wait the walk saw, every owner word still names
 * the next member and no member was reported yet; then marks them all. */
static bool confirm(const member *cyc, int n)
{
    /* Full barrier: the second read comes after the first. */
    AO_nop_full();
    for (int i = 0; i < n; i++) {
        member cur;
        if (!lookup(cyc[i].holder, &cur) || cur.seq != cyc[i].seq || cur.m != cyc[i].m ||
            cur.reported)
            return false;
        if (ownerof(cyc[i].m) != cyc[(i + 1) % n].holder)
            return false;
    }
    for (int i = 0; i < n; i++) {
        lockwaitbucket *b = bucketfor(cyc[i].holder);
        weft__lock(&b->lock);
        for (weft__lockwait *w = b->head; w; w = w->next)
            if (w->holder == cyc[i].holder && w->seq == cyc[i].seq)
                w->reported = true;
        weft__unlock(&b->lock);
    }
    return true;
}

static void holdername(weft__out *o, uintptr_t h)
{
    weft__outf(o, "%s %lld", h & 1 ? "thread" : "goroutine", (long long)(h >> 1));
}

/* "\tgoroutine 5 waits for mutex 0x... held by goroutine 6\n" per member. */
static void describe(weft__out *o, const member *cyc, int n)
{
    for (int i = 0; i < n; i++) {
        weft__outf(o, "\t");
        holdername(o, cyc[i].holder);
        weft__outf(o, " waits for %s %p held by ", cyc[i].rw ? "rwmutex" : "mutex", (void *)cyc[i].m);
        holdername(o, cyc[(i + 1) % n].holder);
        weft__outf(o, "\n");
    }
}

/* The header and stack of the waiter reporting (cyc[0]): it is running,
 * about to park, so it is shown as waiting already. */
static void __attribute__((noinline)) tracebackme(weft__out *o, const member *me)
{
    weft__tbopts opt = { 0 };
    /* An rwmutex's writer waits in its writer mutex: Go's reason too. */
    const char *reason = weft__waitreason_str(waitReasonSyncMutexLock);
    weft__gview g;
    if (me->g) {
        weft__view_g(me->g, &g);
        g.status = VGwaiting;
        g.waitreason = reason;
        weft__goroutineheader(o, &g);
    } else {
        weft__outf(o, "thread %lld [%s]:\n", (long long)(me->holder >> 1), reason);
    }
    /* From our caller up: report, weft__lockcycle_block and lockslow are
     * weft's own and hidden, so the first frame shown is the lock call. */
    weft__unwinder u;
    weft__unwind_init_self(&u, 0, me->g ? me->g->stacklo : 0, me->g ? me->g->stackhi : 0);
    weft__traceback(o, me->g ? &g : NULL, &u, false, &opt);
}

/* SCHEDDEBUG=lockcycle=fatal: the lines become the fatal error's
 * headline, and every goroutine follows.  Its own frame, so the report's
 * usual path does not carry the message buffer on a goroutine's stack. */
static void __attribute__((noinline, noreturn)) reportfatal(const member *cyc, int n)
{
    char msg[2048];
    weft__out o;
    weft__out_mem(&o, msg, sizeof msg - 1);
    weft__outf(&o, "lock cycle:\n");
    describe(&o, cyc, n);
    size_t len = o.n > 0 ? o.n - 1 : 0;     /* weft__fatal ends the line */
    msg[len] = 0;
    weft__fatal(msg);   /* prints every goroutine, exits 2 */
}

/* The newest LOGN cycles' description lines, for SIGQUIT's dump and the
 * debug server (weft__lockcycle_print).  Reports are rare: writers take
 * turns on a spin flag; readers take no lock (SIGQUIT's handler may have
 * interrupted a writer) and read the slots below the count it published.
 * A reader can see a slot overwritten under it only if LOGN more cycles
 * are reported while it prints. */
#define LOGN 8
#define LOGSZ 1024
static char cyclelog[LOGN][LOGSZ];
static AO_t logn;               /* atomic: cycles logged; the newest LOGN are kept */
static AO_TS_t logbusy = AO_TS_INITIALIZER;

static void logcycle(const member *cyc, int n)
{
    /* test-and-set-acquire: takes the writers' turn (pairs with the
     * release below) */
    while (AO_test_and_set_acquire(&logbusy) == AO_TS_SET)
        weft__cpu_relax();
    AO_t k = AO_load(&logn);        /* logbusy orders writers: no order needed */
    weft__out o;
    char *slot = cyclelog[k % LOGN];
    weft__out_mem(&o, slot, LOGSZ - 1);
    describe(&o, cyc, n);
    slot[o.n < LOGSZ - 1 ? o.n : LOGSZ - 1] = 0;
    /* store-release: the slot's text before the count that shows it
     * (pairs with the load-acquire in weft__lockcycle_print) */
    AO_store_release(&logn, k + 1);
    AO_CLEAR(&logbusy);     /* release: the next writer's turn */
}

void weft__lockcycle_print(weft__out *o)
{
    AO_t n = AO_load_acquire(&logn);    /* pairs with logcycle's store-release */
    if (n == 0)
        return;
    weft__outf(o, "weft: lock cycles found so far: %lu\n", (unsigned long)n);
    if (n > LOGN)
        weft__outf(o, "\t(the %lu oldest not kept)\n", (unsigned long)(n - LOGN));
    for (AO_t k = n > LOGN ? n - LOGN : 0; k < n; k++)
        weft__outf(o, "%s", cyclelog[k % LOGN]);
}

void weft__lockcycle_write(int fd)
{
    weft__out o;
    weft__out_fd(&o, fd);
    if (AO_load(&logn) == 0)        /* only whether any: print's load-acquire orders the text */
        weft__outf(&o, weft__debug.lockcycle == LOCKCYCLE_OFF
                           ? "lock cycle detection is off (SCHEDDEBUG=lockcycle=0)\n"
                           : "no lock cycles found\n");
    else
        weft__lockcycle_print(&o);
    weft__out_flush(&o);
}

static void report(const member *cyc, int n)
{
    logcycle(cyc, n);
    if (weft__debug.lockcycle == LOCKCYCLE_FATAL)
        reportfatal(cyc, n);
    weft__out o;
    weft__out_fd(&o, 2);
    weft__outf(&o, "weft: lock cycle:\n");
    describe(&o, cyc, n);
    weft__outf(&o, "\n");
    tracebackme(&o, &cyc[0]);
    weft__tbopts opt = { 0 };
    for (int i = 1; i < n; i++) {
        weft__outf(&o, "\n");
        if (cyc[i].g)
            weft__tracebackg(&o, cyc[i].g, true, &opt);
        else
            weft__outf(&o, "thread %lld [%s]:\n\tstack unavailable (not a goroutine)\n",
                       (long long)(cyc[i].holder >> 1), weft__waitreason_str(waitReasonSyncMutexLock));
    }
    weft__outf(&o, "\n");
    weft__out_flush(&o);
    /* fetch-and-add-full: counted once written (tests wait for it) */
    AO_fetch_and_add_full(&weft__lockcycles, 1);
}

void weft__lockcycle_block(weft__lockwait *lw, weft_mutex *m, bool rw, bool registered)
{
    if (!registered) {
        G *gp = weft__getg();
        lw->holder = weft__lockholder(gp);
        lw->g = gp && !gp->issystem ? gp : NULL;
        lw->m = m;
        lw->rw = rw;
        lw->reported = false;
        lockwaitbucket *b = bucketfor(lw->holder);
        weft__lock(&b->lock);
        lw->seq = ++b->gen;
        lw->prev = NULL;
        lw->next = b->head;
        if (b->head)
            b->head->prev = lw;
        b->head = lw;
        weft__unlock(&b->lock);
    }
    /* Full barrier: our registration and owner words are visible before
     * we read anyone else's (pairs with the same barrier of every other
     * member of a cycle: the last of them finds it). */
    AO_nop_full();
    member cyc[CYCLE_MAX];
    int n = walk(lw, cyc);
    if (n == 0)
        return;
    weft__lock(&cyclelock);
    bool found = confirm(cyc, n);
    weft__unlock(&cyclelock);
    if (found)
        report(cyc, n);
}

/* Takes w off b's chain (b's lock held). */
static void chainremove(lockwaitbucket *b, weft__lockwait *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        b->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

void weft__lockcycle_unblock(weft__lockwait *lw)
{
    lockwaitbucket *b = bucketfor(lw->holder);
    weft__lock(&b->lock);
    chainremove(b, lw);
    weft__unlock(&b->lock);
}

void weft__lockcycle_shutdown(void)
{
    for (size_t i = 0; i < sizeof lockwaits / sizeof lockwaits[0]; i++) {
        lockwaitbucket *b = &lockwaits[i];
        weft__lock(&b->lock);
        for (weft__lockwait *w = b->head, *next; w; w = next) {
            next = w->next;
            if (w->g)
                chainremove(b, w);
        }
        weft__unlock(&b->lock);
    }
}
