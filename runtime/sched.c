/*
 * sched.c — the scheduler.
 *
 * weft is Go's scheduler, in C.  The model (Go's proc.go has the longer
 * version of this essay; read it alongside):
 *
 *   G  a goroutine: a function, its stack, its saved stack pointer and its
 *      status.  Cheap: a G is a small struct plus a stack from a slab.
 *   M  an OS thread (pthread).  Every M has a g0: the context of its own
 *      thread stack, on which the scheduler loop (schedule()) runs.
 *   P  a processor: the right to run goroutines, and the owner of a local
 *      run queue, a cache of free Gs and stacks and the goid cache.  There
 *      are exactly gomaxprocs Ps.  An M must hold a P to run a G; an M in a
 *      blocking syscall gives its P away.
 *
 * Run queues.  Each P has a 256-slot lock-free ring plus a runnext slot
 * (runq.c); a global queue under sched.lock takes the overflow and Gs made
 * runnable by threads without a P.  A new or readied G goes to the
 * creator's runnext, so a producer/consumer pair stays on one CPU with a
 * warm cache (waking another CPU costs 20–30 µs on this class of machine).
 * To stay fair, every 61st schedule looks at the global queue first.
 *
 * Context switches.  A G that blocks, yields or exits switches *directly*
 * to the next G of its P when the local queue has one (one register swap,
 * ~5 ns), and to its M's g0 otherwise; g0 then runs findrunnable().  Either
 * way the G that left cannot be resumed before its registers are saved,
 * because the bookkeeping that makes it resumable — putting it on a run
 * queue, releasing the lock it parked under, freeing it — is done *after*
 * the switch by whichever context runs next (weft__finish_switch: the
 * "unlock after the switch" pattern of Go's gopark/mcall).
 *
 * findrunnable (an M with a P looking for work), in order: the global queue
 * every GLOBRUNQ_TICK (61) ticks, the local queue, the global queue, then stealing: up to
 * four passes over all other Ps in a random coprime order, taking half of a
 * victim's ring (the last pass may also take its runnext, after waiting
 * 40 µs for the owner to run it, and only if the owner did not switch Gs
 * meanwhile: a pair sharing the P puts the same G back in runnext every few
 * µs, and stealing it then would split the pair by ABA).
 *
 * Spinning and parking, the protocol that keeps every P busy while work
 * exists without a thundering herd of idle threads:
 *
 *   1. An M is "spinning" while it looks for work to steal; sched.nmspinning
 *      counts them.  At most half of the busy Ps' worth of Ms spin
 *      (2*nmspinning < gomaxprocs - npidle); the others go straight to step 5.
 *   2. Whoever makes a G runnable (spawn, ready) calls wakep(): if there is
 *      an idle P and no M is spinning, it CASes nmspinning 0 -> 1 and starts
 *      an M (an idle one from sched.midle, or a new thread) on that P in the
 *      spinning state.  The put to the run queue happens before the loads of
 *      npidle and nmspinning, but nothing orders the two on wakep's fast
 *      path (a store-release and two plain loads: no barrier, as in Go),
 *      so a producer can read a stale nmspinning > 0 while its put is still
 *      in its store buffer (see step 4).
 *   3. A spinning M that finds work stops spinning (nmspinning--) and, before
 *      running the G, calls wakep() again: there may be more work than one M
 *      can do, and it was the only spinner.
 *   4. A spinning M that finds nothing releases its P to the idle list, then
 *      decrements nmspinning, then (full barrier) rechecks the global queue
 *      and every P's run queue.  Doing it in this order closes the race with
 *      a producer that queued work after our last look but saw nmspinning > 0
 *      in step 2 and therefore woke nobody, as far as the producer's side
 *      allows: a put to the global queue (made under sched.lock, which we
 *      take for the recheck) is always seen; a put to the producer's own
 *      ring that was still in its store buffer can be missed, and then
 *      waits for the producer's next scheduling point (it is on its own
 *      P's queue) or, if its G runs on without one, sysmon's rescue within
 *      10 ms.  Go accepts the same window to keep wakep barrier-free: every
 *      spawn and wake-up calls it.  If the recheck finds work it takes an idle P back and
 *      spins again.  If it finds work but no idle P, it sets needspinning so
 *      that the next M about to drop its P becomes a spinner instead.
 *   5. An M with nothing to do parks on its note (futex) in sched.midle,
 *      until the earliest timer at most; one such M (at a time) blocks in
 *      epoll_wait instead while goroutines wait on fds.  When the poll
 *      returns it takes an idle P before anything else, runs one of the Gs
 *      the poll found on itself and spreads the others over the idle Ps
 *      (injectglist, as Go's findrunnable): readying them from an M without
 *      a P woke another thread to run each.
 *
 * sysmon (sysmon.c) runs without a P: it retakes Ps from Ms blocked in a
 * syscall for more than one of its ticks (handoffp), and flags Gs that ran
 * for more than 10 ms so that they yield at their next scheduling point.
 * Since it cannot preempt such a G, it also moves the Gs queued behind it
 * to the global queue (weft__runqrescue), where the other Ps find them
 * even if every one of them is busy with a G that only yields.  When every
 * P is idle there is nothing to watch, and it sleeps (sched.sysmonwait)
 * until a P is taken off the idle list again: an idle program does not
 * wake up at all.
 *
 * Stop the world (weft_maxprocs): sched.gcwaiting makes every M give up its
 * P at its next scheduling point (status Pgcstop); idle and syscall Ps are
 * taken directly; the stopper sleeps on sched.stopnote until stopwait is 0.
 * Preemption is cooperative, so a G that never reaches a scheduling point
 * delays the stop (as in Go before 1.14).
 *
 * Locked Gs (weft_lock_thread): the G's M runs nothing else.  When the G
 * blocks, its M hands the P off and sleeps (stoplockedm); whoever later
 * dequeues the G hands its own P to the G's M and sleeps instead
 * (startlockedm).
 *
 * Rejected: a g0 hop on every switch (Go's design; it doubles the cost of a
 * yield here), swapcontext (a syscall per switch), a mutex-protected run
 * queue (the spawn/yield/wake path takes no lock), and one thread per P
 * with no spinning (wake-up latency dominates channel hand-offs).
 *
 * Locks: the order in which the runtime's locks may be taken is the table
 * in lockrank.h (checked on every lock by the WEFT_LOCKRANK build), and
 * none is held across a context switch except the one a parking goroutine
 * hands to its unlockf, which releases it on the same thread.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

static void mput(M *m);
static void checkdead(void);
static void startm(P *pp, bool spinning);
static void stopm(void);
static void gosched(bool preempted);
static M *mget(void);
static P *releasep(M *m);

/* Every 61st schedule of a P looks at the global queue before its own, so
 * a P whose local queue never empties cannot starve it (Go's 61: a prime,
 * so the check does not fall into step with other periodic work). */
#define GLOBRUNQ_TICK 61
/* A P with a timer pending reads the clock once every this many fast-path
 * switches (a power of two), not at each: a clock read is ~20 ns, a switch
 * ~5 ns. */
#define TIMERCHECK_SWITCHES 16

struct weft__sched weft__sched = {
    .lock = WEFT__MUTEX_INIT(LOCKRANK_SCHED),
    .gflock = WEFT__MUTEX_INIT(LOCKRANK_GFREE),
    .worldsema = WEFT__MUTEX_INIT(LOCKRANK_WORLDSEMA),
    .sudoglock = WEFT__MUTEX_INIT(LOCKRANK_SUDOG),
};

static __thread G *tls_g __attribute__((tls_model("initial-exec")));
static __thread uint32_t tls_rand __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) G *weft__getg(void)
{
    G *g = tls_g;
    /* The empty asm with a memory clobber keeps the compiler from treating
     * this function as pure and folding two calls around a switch. */
    __asm__ volatile("" ::: "memory");
    return g;
}

void weft__setg(G *gp) { tls_g = gp; }

uint32_t weft__fastrand(void)
{
    uint32_t x = tls_rand;
    if (unlikely(x == 0))
        x = (uint32_t)(weft__nanotime() ^ (uintptr_t)&x) | 1;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    tls_rand = x;
    return x;
}

/* ---- P and M lists (sched.lock) ------------------------------------------ */

/* sched.lock held, sysmon asleep in sysmonwait (every P was idle): a P is
 * being taken, so there is something to watch again.  Every way out of
 * "all Ps idle" takes a P off the idle list here (startm for a readied or
 * new goroutine, a syscall's exit, the poller's M, an M whose timer is
 * due, a stop-the-world), which covers Go's sysmon wake-ups (exitsyscall,
 * startTheWorld) and also the start of any goroutine's run: a goroutine
 * that hogs its P or enters a syscall right after an idle spell is
 * watched as before.  The coarse clock sysmon keeps stood still while it
 * slept: a goroutine that parks before sysmon's next tick stamps its wait
 * with this. */
static void sysmonwake(void)
{
    sched.sysmonwait = false;
    AO_store(&weft__coarsetime, (AO_t)weft__nanotime());    /* a hint: no ordering needed */
    weft__notewakeup(&sched.sysmonnote);
}

void weft__pidleput(P *pp)
{
    if (!weft__runqempty(pp))
        weft__throw("pidleput: P has non-empty run queue");
    AO_store(&pp->status, Pidle);
    pp->m = NULL;
    pp->link = sched.pidle;
    sched.pidle = pp;
    /* store (under sched.lock): wakep reads npidle without the lock as a
     * hint; a stale zero only means the idle P is found a moment later by a
     * spinning M's recheck (step 4). */
    AO_store(&sched.npidle, AO_load(&sched.npidle) + 1);
}

P *weft__pidleget(void)
{
    P *pp = sched.pidle;
    if (pp) {
        sched.pidle = pp->link;
        AO_store(&sched.npidle, AO_load(&sched.npidle) - 1);
        if (unlikely(sched.sysmonwait))
            sysmonwake();
    }
    return pp;
}

/* pidleget for an M about to spin: if no P is idle, ask the next M that
 * drops its P to spin instead (step 4). */
static P *pidlegetSpinning(void)
{
    P *pp = weft__pidleget();
    if (!pp)
        AO_store(&sched.needspinning, 1);
    return pp;
}

static void mput(M *m)
{
    m->schedlink = sched.midle;
    sched.midle = m;
    sched.nmidle++;
    checkdead();
}

/* Go's checkdead, called with sched.lock held whenever an M goes idle: if no
 * M is running (all idle or waiting for their locked G), no G can ever run
 * again unless a timer is pending.  Then every goroutine is asleep: report
 * it as Go does and exit 2.  A runtime started lazily, or one a plain
 * thread has used (it might still wake a goroutine), is never declared
 * dead.
 *
 * The cheap reasons to stand down come before the walk over every G: here
 * an M that waits for a timer is idle (Go's blocks in netpoll and is not),
 * so a program with a ticker reaches the walk at every tick, and a walk
 * over a million parked goroutines (tens of ms, under sched.lock) made the
 * ticker itself late. */
static void checkdead(void)
{
    if (sched.lazy || AO_load(&sched.foreign) || AO_load(&sched.exiting) ||
        AO_load(&sched.booted) != 2)
        return;
    int64_t run = (sched.mnext - sched.nmexited) - sched.nmidle - sched.nmidlelocked;
    if (run > 0)
        return;
    if (weft__nexttimer() != 0)
        return;         /* a sleeper will wake */
    /* load: a goroutine counts itself before it parks on an fd, on a P an
     * M still held when it went idle (under sched.lock, as we are now).
     * An M blocked in the poller is not idle, so this only covers the
     * moment before one blocks there. */
    if (AO_load(&weft__netpoll_waiters) > 0)
        return;
    sched.ndeadwalks++;
    int waiting = 0;
    for (G *gp = (G *)AO_load(&weft__allg); gp; gp = gp->allglink) {
        AO_t st = AO_load(&gp->atomicstatus);
        if (st == Gwaiting)
            waiting++;
        else if (st == Grunnable || st == Grunning || st == Gsyscall)
            return;     /* someone will run it (or it is in flight) */
    }
    /* Unlock first, as Go does, so the dump (SCHEDDEBUG) can take it. */
    weft__unlock(&sched.lock);
    if (waiting == 0)
        weft__fatal("no goroutines (main called weft_exit) - deadlock!");
    weft__fatal("all goroutines are asleep - deadlock!");
}

static M *mget(void)
{
    M *m = sched.midle;
    if (m) {
        sched.midle = m->schedlink;
        sched.nmidle--;
    }
    return m;
}

void weft__acquirep(M *m, P *pp)
{
    if (m->p || pp->m)
        weft__throw("acquirep: already in use");
    m->p = pp;
    pp->m = m;
    if (unlikely(weft__tracing())) weft__trace_procstart(pp, m);
    /* store-release: the P's queues were written by whoever held it before;
     * sysmon reads status with acquire. */
    AO_store_release(&pp->status, Prunning);
}

static P *releasep(M *m)
{
    P *pp = m->p;
    if (!pp || pp->m != m)
        weft__throw("releasep: invalid P state");
    if (unlikely(weft__tracing())) weft__trace_procstop(pp);
    m->p = NULL;
    pp->m = NULL;
    AO_store_release(&pp->status, Pidle);
    return pp;
}

/* ---- readying ------------------------------------------------------------- */

/* Gwaiting -> Grunnable, for the one waker of a park (see weft__ready). */
static inline void readyg(G *gp)
{
    if (unlikely(AO_load(&gp->atomicstatus) != Gwaiting))
        weft__throw("ready: bad g status");
    /* A goroutine profile that has not recorded gp yet does it now, while
     * gp still shows what it waited for (g.c; a waker without a P leaves
     * it to gogo). */
    if (unlikely(AO_load(&sched.gprofiling)))
        weft__gprof_execute(gp);
    if (unlikely(weft__tracing()))
        weft__trace_unblock(gp);    /* also for the poller's goroutines, readied without a P */
    weft__vg_ready(gp);
    AO_store(&gp->atomicstatus, Grunnable);
    gp->waitreason = waitReasonZero;
}

static G *glistpop(weft__glist *l)
{
    G *gp = l->head;
    if (gp) {
        l->head = gp->schedlink;
        if (!l->head)
            l->tail = NULL;
        l->n--;
        gp->schedlink = NULL;
    }
    return gp;
}

/* ---- spinning ------------------------------------------------------------- */

static void becomeSpinning(M *m)
{
    m->spinning = true;
    AO_fetch_and_add1_full(&sched.nmspinning);
    AO_store(&sched.needspinning, 0);
}

static void resetspinning(M *m)
{
    m->spinning = false;
    /* fetch_and_add_full: full barrier between our decrement and the loads in
     * wakep (step 3). */
    if ((AO_t)AO_fetch_and_sub1_full(&sched.nmspinning) == 0)
        weft__throw("resetspinning: negative nmspinning");
    weft__wakep();
}

void weft__wakep(void)
{
    /* Every P busy: their Ms will find the work at their next schedule. */
    if (AO_load(&sched.npidle) == 0)
        return;
    /* Be conservative: start a spinner only if none exists (step 2).
     * CAS-full orders our earlier run queue put before this check. */
    if (AO_load(&sched.nmspinning) != 0 ||
        !AO_compare_and_swap_full(&sched.nmspinning, 0, 1))
        return;
    weft__lock(&sched.lock);
    P *pp = pidlegetSpinning();
    weft__unlock(&sched.lock);
    if (!pp) {
        AO_fetch_and_sub1_full(&sched.nmspinning);
        return;
    }
    startm(pp, true);
}

/* Go's injectglist.  Every G of l first becomes runnable.  Without a P,
 * they all go to the global queue and an M is started for each idle P
 * they can keep busy.  With one, as many as there are idle Ps go to the
 * global queue, each with an M started for it, and the rest to our own run
 * queue; a P that went idle after we counted is covered by the wakep at the
 * end, which does nothing in the common case. */
void weft__injectglist(weft__glist *l)
{
    if (l->n == 0)
        return;
    for (G *gp = l->head; gp; gp = gp->schedlink)
        readyg(gp);
    M *m = weft__getm();
    P *pp = m ? m->p : NULL;
    int32_t nglob = l->n;
    if (pp) {
        int32_t npidle = (int32_t)AO_load(&sched.npidle);   /* a hint, see above */
        if (nglob > npidle)
            nglob = npidle;
    }
    if (nglob > 0) {
        /* The global queue's puts, under sched.lock, publish what the
         * waker wrote (as weft__ready's do). */
        weft__lock(&sched.lock);
        for (int32_t i = 0; i < nglob; i++)
            weft__globrunqput(glistpop(l));
        weft__unlock(&sched.lock);
        for (int32_t i = 0; i < nglob; i++) {
            weft__lock(&sched.lock);
            P *p2 = weft__pidleget();
            weft__unlock(&sched.lock);
            if (!p2)
                break;
            startm(p2, false);
        }
    }
    if (!pp)
        return;
    G *gp;
    while ((gp = glistpop(l)) != NULL)
        weft__runqput(pp, gp, false);   /* its release publishes the waker's writes */
    weft__wakep();
}

/* sched.lock held, gcwaiting set: pp, which no M holds, is taken out of
 * use for the stop under way.  Every P is counted once, by whoever takes it
 * out of use while the stop waits for it (the stopper itself for the idle
 * and syscall Ps it finds). */
static void gcstopp(P *pp)
{
    /* store: sysmon and the syscall exit only CAS it from Psyscall, which
     * no M can set on a P it does not hold; the stopper reads it after
     * the notewakeup below or under sched.lock. */
    AO_store(&pp->status, Pgcstop);
    pp->m = NULL;
    if (--sched.stopwait == 0)
        weft__notewakeup(&sched.stopnote);
}

static void startm(P *pp, bool spinning)
{
    weft__lock(&sched.lock);
    M *nmp = mget();
    weft__unlock(&sched.lock);
    if (!nmp) {
        int err = weft__newm(pp, spinning);
        if (err < 0) {
            /* No thread: give the P back; work waits for the next M. */
            static AO_t warned;
            if (AO_compare_and_swap_full(&warned, 0, 1))
                weft__printf(2, "runtime: cannot create thread (errno %d); running with fewer threads\n", -err);
            /* A stop under way counts on whoever holds pp (as in
             * handoffp): on the idle list it would never be counted, and
             * the stop would wait for ever. */
            weft__lock(&sched.lock);
            if (AO_load(&sched.gcwaiting))
                gcstopp(pp);
            else
                weft__pidleput(pp);
            weft__unlock(&sched.lock);
            if (spinning)
                AO_fetch_and_sub1_full(&sched.nmspinning);
        }
        return;
    }
    if (nmp->spinning || nmp->nextp)
        weft__throw("startm: M is spinning or has a P");
    nmp->spinning = spinning;
    nmp->nextp = pp;
    weft__notewakeup(&nmp->park);
}

/* Hands off P from an M blocked in a syscall or locked to a G. */
void weft__handoffp(P *pp)
{
    if (!weft__runqempty(pp) || AO_load(&sched.runqsize) != 0) {
        startm(pp, false);
        return;
    }
    /* No local work: start a spinner if nobody is looking. */
    if (AO_load(&sched.nmspinning) + AO_load(&sched.npidle) == 0 &&
        AO_compare_and_swap_full(&sched.nmspinning, 0, 1)) {
        startm(pp, true);
        return;
    }
    weft__lock(&sched.lock);
    if (AO_load(&sched.gcwaiting)) {
        gcstopp(pp);
        weft__unlock(&sched.lock);
        return;
    }
    if (AO_load(&sched.runqsize) != 0) {
        weft__unlock(&sched.lock);
        startm(pp, false);
        return;
    }
    weft__pidleput(pp);
    weft__unlock(&sched.lock);
}

/* Sleeps on m's park note until it is woken (true) or, if until is not
 * 0, until that time (false).  An M holding parked goroutines' stacks to
 * compact (stack.c) wakes when the oldest is due, compacts what is due,
 * and sleeps again, so that an idle M compacts them on time and no
 * sooner.  A time already past is a zero wait: notetsleep takes a
 * negative one for "for ever". */
static bool msleep(M *m, int64_t until)
{
    for (;;) {
        int64_t when = until;
        if (unlikely(m->ncbatch > 0)) {
            int64_t due = weft__stackcompact_when(m);
            if (when == 0 || due < when)
                when = due;
        }
        if (when == 0) {
            weft__notesleep(&m->park);
            return true;
        }
        int64_t left = when - weft__nanotime();
        if (weft__notetsleep(&m->park, left > 0 ? left : 0))
            return true;
        if (until != 0 && weft__nanotime() >= until)
            return false;
        weft__stackcompact_flush(m, false);
    }
}

/* Parks the current M until somebody hands it a P (or the runtime exits). */
static void stopm(void)
{
    M *m = weft__getm();
    if (m->p)
        weft__throw("stopm holding p");
    if (m->spinning)
        weft__throw("stopm spinning");
    weft__lock(&sched.lock);
    if (AO_load(&sched.exiting)) {
        weft__unlock(&sched.lock);
        return;
    }
    mput(m);
    weft__unlock(&sched.lock);
    AO_store(&m->blocked, 1);
    msleep(m, 0);
    AO_store(&m->blocked, 0);
    weft__noteclear(&m->park);
    if (m->nextp) {
        P *pp = m->nextp;
        m->nextp = NULL;
        weft__acquirep(m, pp);
    }
}

/* Like stopm, but sleeps at most until `when` (a timer is due then).
 * Returns false if it timed out, in which case the M is off the idle list
 * and holds no P. */
static bool stopm_until(M *m, int64_t when)
{
    weft__lock(&sched.lock);
    if (AO_load(&sched.exiting)) {
        weft__unlock(&sched.lock);
        return true;
    }
    mput(m);
    weft__unlock(&sched.lock);
    AO_store(&m->blocked, 1);
    bool woke = msleep(m, when);
    if (!woke) {
        /* Take ourselves off the idle list, unless someone just took us
         * off to hand us a P: then their wakeup is on its way. */
        weft__lock(&sched.lock);
        bool found = false;
        for (M **pm = &sched.midle; *pm; pm = &(*pm)->schedlink) {
            if (*pm == m) {
                *pm = m->schedlink;
                sched.nmidle--;
                found = true;
                break;
            }
        }
        weft__unlock(&sched.lock);
        if (found) {
            AO_store(&m->blocked, 0);
            return false;
        }
        weft__notesleep(&m->park);
    }
    AO_store(&m->blocked, 0);
    weft__noteclear(&m->park);
    if (m->nextp) {
        P *pp = m->nextp;
        m->nextp = NULL;
        weft__acquirep(m, pp);
    }
    return true;
}

/* Stops the current M for a stop-the-world. */
static void gcstopm(M *m)
{
    if (m->spinning) {
        m->spinning = false;
        AO_fetch_and_sub1_full(&sched.nmspinning);
    }
    P *pp = releasep(m);
    weft__lock(&sched.lock);
    gcstopp(pp);
    weft__unlock(&sched.lock);
    stopm();
}

/* The current M is locked to a G that cannot run now: give the P away and
 * sleep until someone hands the G (and a P) back. */
static void stoplockedm(M *m)
{
    if (m->p) {
        P *pp = releasep(m);
        weft__handoffp(pp);
    }
    weft__lock(&sched.lock);
    sched.nmidlelocked++;
    /* This may be the last M to stop (Go's incidlelocked): the others
     * checked before we counted as idle. */
    checkdead();
    weft__unlock(&sched.lock);
    AO_store(&m->blocked, 1);
    msleep(m, 0);
    AO_store(&m->blocked, 0);
    weft__noteclear(&m->park);
    weft__lock(&sched.lock);
    sched.nmidlelocked--;
    weft__unlock(&sched.lock);
    if (m->nextp) {
        P *pp = m->nextp;
        m->nextp = NULL;
        weft__acquirep(m, pp);
    }
}

/* gp is locked to another M: hand it our P and stop. */
static void startlockedm(M *m, G *gp)
{
    M *mp = gp->lockedm;
    if (mp == m)
        weft__throw("startlockedm: locked to me");
    if (mp->nextp)
        weft__throw("startlockedm: m has p");
    P *pp = releasep(m);
    mp->nextp = pp;
    weft__notewakeup(&mp->park);
    stopm();
}

/* ---- finding work ------------------------------------------------------------ */

static G *stealWork(M *m)
{
    P *pp = m->p;
    uint32_t nprocs = (uint32_t)AO_load(&weft__gomaxprocs);
    static __thread weft__randorder order;
    if (order.count != nprocs)
        weft__randorder_reset(&order, nprocs);
    for (int i = 0; i < 4; i++) {
        bool stealRunNextG = i == 3;
        uint32_t r = weft__fastrand();
        uint32_t pos = r % nprocs;
        uint32_t inc = order.coprimes[(r >> 8) % order.ncoprimes];
        for (uint32_t k = 0; k < nprocs; k++, pos = (pos + inc) % nprocs) {
            if (AO_load(&sched.gcwaiting) || AO_load(&sched.exiting))
                return NULL;
            P *p2 = weft__allp[pos];
            if (p2 == pp)
                continue;
            /* Run the victim's due timers: its owner may be busy (or it
             * may be idle); the readied Gs land on our queue. */
            if (stealRunNextG) {
                AO_t w = AO_load(&p2->timer0when);
                if (w != 0 && (int64_t)w <= weft__nanotime()) {
                    weft__runtimers(p2, weft__nanotime());
                    bool inh;
                    G *gp = weft__runqget(pp, &inh);
                    if (gp)
                        return gp;
                }
            }
            if (!stealRunNextG && weft__runqempty(p2))
                continue;
            G *gp = weft__runqsteal(pp, p2, stealRunNextG);
            if (gp)
                return gp;
        }
    }
    return NULL;
}

/* Some P (other than the caller's, which it no longer holds) has local work.
 * Returns an idle P to go and steal it with, or NULL. */
static P *checkRunqsNoP(void)
{
    uint32_t nprocs = (uint32_t)AO_load(&weft__gomaxprocs);
    for (uint32_t i = 0; i < nprocs; i++) {
        P *p2 = weft__allp[i];
        if (!weft__runqempty(p2)) {
            weft__lock(&sched.lock);
            P *pp = pidlegetSpinning();
            weft__unlock(&sched.lock);
            return pp;
        }
    }
    return NULL;
}

/* Finds a runnable G for m, blocking (stopm) until there is one.  Returns
 * NULL if the runtime is exiting or m must stop for another reason the
 * caller checks (gcwaiting is handled here). */
static G *findrunnable(M *m, bool *inheritTime)
{
    G *gp;
top:
    *inheritTime = false;
    if (AO_load(&sched.exiting))
        return NULL;
    if (!m->p) {
        /* After a syscall that found no P, or a locked M's return. */
        stopm();
        goto top;
    }
    if (AO_load(&sched.gcwaiting)) {
        gcstopm(m);
        goto top;
    }
    P *pp = m->p;
    AO_t t0 = AO_load(&pp->timer0when);
    if (t0 != 0 && (int64_t)t0 <= weft__nanotime())
        weft__runtimers(pp, weft__nanotime());
    if (pp->schedtick % GLOBRUNQ_TICK == 0 && AO_load(&sched.runqsize) > 0) {
        weft__lock(&sched.lock);
        gp = weft__globrunqget(pp, 1);
        weft__unlock(&sched.lock);
        if (gp)
            return gp;
    }
    if ((gp = weft__runqget(pp, inheritTime)) != NULL)
        return gp;
    if (AO_load(&sched.runqsize) != 0) {
        weft__lock(&sched.lock);
        gp = weft__globrunqget(pp, 0);
        weft__unlock(&sched.lock);
        if (gp)
            return gp;
    }
    /* The network, without blocking: we run the first G it readies and
     * queue the others (Go's order).  Not while an M is blocked in the
     * poller (lastpoll 0): that M gets the events, and our poll must not
     * end its "blocked" mark (then two Ms could block there at once).  The
     * CAS moves the timestamp on for sysmon only if nobody else has since
     * our load; either way whoever won the race polls. */
    AO_t last = AO_load(&weft__netpoll_lastpoll);
    if (AO_load(&weft__netpoll_waiters) > 0 && last != 0 &&
        AO_compare_and_swap_full(&weft__netpoll_lastpoll, last, (AO_t)weft__nanotime())) {
        weft__glist l;
        weft__netpoll(0, &l);
        if ((gp = glistpop(&l)) != NULL) {
            weft__injectglist(&l);
            readyg(gp);
            return gp;
        }
    }
    /* Steal, if not too many Ms are already at it (step 1). */
    AO_t procs = AO_load(&weft__gomaxprocs);
    if (m->spinning || 2 * AO_load(&sched.nmspinning) < procs - AO_load(&sched.npidle)) {
        if (!m->spinning)
            becomeSpinning(m);
        if ((gp = stealWork(m)) != NULL)
            return gp;
    }

    /* Nothing: give up the P (steps 4 and 5). */
    weft__lock(&sched.lock);
    if (AO_load(&sched.gcwaiting) || AO_load(&sched.exiting)) {
        weft__unlock(&sched.lock);
        goto top;
    }
    if (AO_load(&sched.runqsize) != 0) {
        gp = weft__globrunqget(pp, 0);
        weft__unlock(&sched.lock);
        return gp;
    }
    if (!m->spinning && AO_load(&sched.needspinning) == 1) {
        becomeSpinning(m);
        weft__unlock(&sched.lock);
        goto top;
    }
    releasep(m);
    weft__pidleput(pp);
    weft__unlock(&sched.lock);
    if (unlikely(m->ncbatch > 0) && weft__stackcompact_due(m))
        weft__stackcompact_flush(m, false);     /* stack.c; the rest when it sleeps */

    if (m->spinning) {
        m->spinning = false;
        /* fetch_and_sub_full: the decrement must be visible before we
         * re-read the queues (StoreLoad), pairing with wakep's CAS after a
         * producer's put (step 4). */
        if ((AO_t)AO_fetch_and_sub1_full(&sched.nmspinning) == 0)
            weft__throw("findrunnable: negative nmspinning");
        weft__lock(&sched.lock);
        if (AO_load(&sched.runqsize) != 0) {
            P *p2 = pidlegetSpinning();
            if (p2) {
                gp = weft__globrunqget(p2, 0);
                weft__unlock(&sched.lock);
                weft__acquirep(m, p2);
                becomeSpinning(m);
                return gp;
            }
        }
        weft__unlock(&sched.lock);
        P *p2 = checkRunqsNoP();
        if (p2) {
            weft__acquirep(m, p2);
            becomeSpinning(m);
            goto top;
        }
    }
    /* Block in the poller, until the next timer at most, if goroutines wait
     * on fds and no other M is already blocked there (lastpoll = 0 marks
     * it, and only we set it again).  Then, as Go's findrunnable: take an
     * idle P first and run one of the Gs the poll readied on this M, with
     * the others queued and Ms started for them only if there are idle Ps
     * (injectglist); no idle P: they all go to the global queue, for the
     * busy Ps.  Readying them before holding a P would wake another
     * thread to run each while this one went back to sleep. */
    last = AO_load(&weft__netpoll_lastpoll);
    if (AO_load(&weft__netpoll_waiters) > 0 && last != 0 &&
        AO_compare_and_swap_full(&weft__netpoll_lastpoll, last, 0)) {
        if (AO_load(&sched.exiting)) {
            /* The end of main may have come after our look at the top,
             * and its netpoll_break been taken by the M that was blocked
             * here before us (our CAS comes after its wake-up, which comes
             * after exiting): we would sleep in epoll_wait for good. */
            AO_store(&weft__netpoll_lastpoll, (AO_t)weft__nanotime());
            goto top;
        }
        int64_t next = weft__nexttimer();
        int64_t due = weft__stackcompact_when(m);   /* 0: nothing queued to compact */
        if (due != 0 && (next == 0 || due < next))
            next = due;
        int64_t delay = next == 0 ? -1 : next - weft__nanotime();
        if (next != 0 && delay < 0)
            delay = 0;
        weft__glist l;
        AO_store(&m->blocked, 1);
        weft__netpoll(delay, &l);
        AO_store(&m->blocked, 0);
        /* store: ends the "blocked in the poller" mark; pairs with the
         * CAS of the next M to block there (a hint otherwise) */
        AO_store(&weft__netpoll_lastpoll, (AO_t)weft__nanotime());
        weft__lock(&sched.lock);
        P *p2 = weft__pidleget();
        weft__unlock(&sched.lock);
        if (!p2) {
            weft__injectglist(&l);
            goto top;       /* no P: stopm */
        }
        weft__acquirep(m, p2);
        /* At the end of main (netpoll_break woke us) nothing runs again. */
        if (!AO_load(&sched.exiting) && (gp = glistpop(&l)) != NULL) {
            weft__injectglist(&l);
            readyg(gp);
            return gp;
        }
        goto top;           /* a timer woke us: run it */
    }
    /* Sleep until the next timer anywhere is due (not a fixed tick). */
    int64_t next = weft__nexttimer();
    if (next != 0) {
        if (next <= weft__nanotime() || !stopm_until(m, next)) {
            weft__lock(&sched.lock);
            P *p2 = weft__pidleget();
            weft__unlock(&sched.lock);
            if (p2) {
                weft__acquirep(m, p2);
                goto top;   /* runs its timers; steals the others' */
            }
            /* Every P is busy: their Ms run the timers. */
            if (m->p == NULL)
                stopm();
        }
        goto top;
    }
    stopm();
    goto top;
}

/* ---- switching ------------------------------------------------------------------ */

/* The unlockf (and its argument) the leaving G's park left for us. */
static inline weft__unlockf takeafterf(M *m, void **arg)
{
    weft__unlockf f = m->afterf;
    *arg = m->afterarg;
    m->afterf = NULL;
    m->afterarg = NULL;
    return f;
}

/* A park's unlockf refused it: resume the goroutine next. */
static void parkrefused(M *m, G *gp)
{
    if (unlikely(weft__tracing())) weft__trace_unblock(gp);
    AO_store(&gp->atomicstatus, Grunnable);
    weft__runqput(m->p, gp, true);
}

/* AFTER_PARK_COMPACT, a park of a goroutine whose stack may be compacted
 * (stack.c): it is marked before its unlockf lets anyone wake it, and
 * queued for compaction after.  Out of line, so that the ordinary park's
 * path keeps its frame. */
static __attribute__((noinline, cold)) void parkcompact(M *m, G *gp, weft__unlockf f, void *arg)
{
    AO_t cw = 0;
    weft__stack *cs = weft__stackcompact_begin(gp, &cw);
    if (f && !f(gp, arg)) {
        if (cs)
            weft__stackcompact_cancel(gp, cs);
        parkrefused(m, gp);
    } else if (cs) {
        weft__stackcompact(m, cs, cw);
    }
}

/* Runs the action the previous context left for us (see weft__after). */
void weft__finish_switch(M *m)
{
    weft__after a = m->after;
    if (likely(a == AFTER_NONE))
        return;
    G *gp = m->afterg;
    m->after = AFTER_NONE;
    m->afterg = NULL;
    switch (a) {
    case AFTER_RUNQPUT:
        weft__runqput(m->p, gp, false);
        break;
    case AFTER_GLOBRUNQPUT:
        weft__lock(&sched.lock);
        weft__globrunqput(gp);
        weft__unlock(&sched.lock);
        /* A preempted G goes to the global queue so that another P can
         * run it: wake one if any is idle.  Without this, the G that this
         * M runs next may never yield (weft has no asynchronous
         * preemption), and the preempted one waits for good with a P
         * idle (Go's goschedImpl wakes one too). */
        weft__wakep();
        break;
    case AFTER_PARK: {
        void *arg;
        weft__unlockf f = takeafterf(m, &arg);
        if (f && !f(gp, arg))
            parkrefused(m, gp);
        break;
    }
    case AFTER_PARK_COMPACT: {
        void *arg;
        weft__unlockf f = takeafterf(m, &arg);
        parkcompact(m, gp, f, arg);
        break;
    }
    case AFTER_EXIT:
        weft__gfput(m->p, gp);
        break;
    case AFTER_SYSCALL_EXIT:
        AO_store(&gp->atomicstatus, Grunnable);
        weft__lock(&sched.lock);
        weft__globrunqput(gp);
        weft__unlock(&sched.lock);
        weft__wakep();
        break;
    default:
        weft__throw("finish_switch: bad action");
    }
}

/* The switch announced to the sanitizers (runtime.h): out of line in the
 * ordinary library, whose switch pays one load and branch for it; inline
 * in a WEFT_SANITIZE build, which always takes it (so the compiler merges
 * switch_from_g's two switches into one site there too, and a parked
 * goroutine's saved return address does not depend on the way it left:
 * goroutine profiles group by it). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_SWAPTO_INLINE inline __attribute__((always_inline))
#else
#define SANITIZER_SWAPTO_INLINE __attribute__((noinline))
#endif
static SANITIZER_SWAPTO_INLINE void sanitizer_swapto(G *from, G *to)
{
    weft__asan_start(from, to, AO_load(&from->atomicstatus) == Gdead);
    weft__tsan_switch(from, to);
    weft__swapctx(&from->sp, to->sp);
    weft__asan_finish(from);
    weft__vg_switched(from->m);
}

/* The one place that switches stacks: from the running context to `to`.
 * Returns when someone switches back to `from`. */
static inline void swapto(G *from, G *to)
{
    weft__setg(to);
    if (unlikely(weft__sanswitch))
        sanitizer_swapto(from, to);
    else
        weft__swapctx(&from->sp, to->sp);
}

/* Makes gp the running G of m and switches to it from `from` (g0 or a G). */
static inline void gogo(M *m, G *from, G *gp, bool inheritTime)
{
    if (!inheritTime)
        m->p->schedtick++;
    m->p->switchtick++;
    /* A goroutine profile that has not recorded gp yet does it now,
     * before gp's stack changes (g.c).  A load: gprofiling changes only
     * with the world stopped, whose restart publishes it. */
    if (unlikely(AO_load(&sched.gprofiling)))
        weft__gprof_execute(gp);
    if (unlikely(!gp->sp))
        weft__gstart(m->p, gp);         /* its first run (g.c) */
    AO_store(&gp->atomicstatus, Grunning);
    gp->m = m;
    m->curg = gp;
    swapto(from, gp);
}

/* Whether a G leaving with action may switch directly to the next local
 * G, without g0: nothing unusual is pending (a stop, an exit, the global
 * queue's turn, a timer due). */
static inline bool direct_switch_ok(M *m, P *pp, weft__after action)
{
    return pp && !m->lockedg && action != AFTER_SYSCALL_EXIT && AO_load(&sched.gcwaiting) == 0 &&
           AO_load(&sched.exiting) == 0 &&
           (pp->schedtick % GLOBRUNQ_TICK != 0 || AO_load(&sched.runqsize) == 0) &&
           (AO_load(&pp->timer0when) == 0 || ++pp->timercheck % TIMERCHECK_SWITCHES != 0 ||
            (int64_t)AO_load(&pp->timer0when) > weft__nanotime());
}

/* The direct switch from gp to the next local G, when direct_switch_ok:
 * true once gp has been resumed, false, having switched nowhere, where
 * the switch must go through g0.  traced (a constant at each call): the
 * next G's start event goes out just before the switch (schedule_loop
 * emits it on the other path); on either path the leaving G's
 * after-action runs after both events, on the next context. */
static inline __attribute__((always_inline)) bool switch_direct(G *gp, M *m, P *pp, weft__after action,
                                                                bool traced)
{
    if (!direct_switch_ok(m, pp, action))
        return false;
    bool inheritTime;
    G *next = weft__runqget(pp, &inheritTime);
    if (!next)
        return false;
    if (unlikely(next->lockedm)) {
        m->nextg = next;
        return false;
    }
    if (traced)
        weft__trace_gostart(pp, next);
    gogo(m, gp, next, inheritTime);
    weft__finish_switch(gp->m);
    return true;
}

/* switch_direct while tracing, with the leaving G's event first: out of
 * line, so that the untraced path pays one test for it. */
static __attribute__((noinline)) bool switch_traced(G *gp, M *m, P *pp, weft__after action)
{
    weft__trace_leave(gp, action);
    return switch_direct(gp, m, pp, action, true);
}

/* Leaves the running G gp: leaves `action` for the next context, then
 * switches directly to the next local G when that is allowed, to g0
 * otherwise.  Returns when gp is resumed (possibly on another M). */
static void switch_from_g(G *gp, weft__after action, weft__unlockf f, void *arg)
{
    M *m = gp->m;
    P *pp = m->p;
    m->after = action;
    m->afterg = gp;
    m->afterf = f;
    m->afterarg = arg;
    /* The fast path: no lock, no g0.  Anything unusual goes through g0. */
    if (unlikely(weft__tracing()) ? switch_traced(gp, m, pp, action)
                                  : switch_direct(gp, m, pp, action, false))
        return;
    m->curg = NULL;
    swapto(gp, m->g0);
    weft__finish_switch(gp->m);
}

/* The scheduler loop, on g0.  Returns only when this M must exit. */
static void schedule_loop(M *m)
{
    for (;;) {
        G *gp;
        bool inheritTime = false;
        if (unlikely(m->ncbatch > 0) && weft__stackcompact_due(m))
            weft__stackcompact_flush(m, false);     /* stack.c */
        if (AO_load(&sched.exiting))
            return;
        if (m->lockedg) {
            /* Our G is parked, queued, or waiting for a P. */
            stoplockedm(m);
            if (AO_load(&sched.exiting))
                return;
            gp = m->lockedg;
            if (AO_load(&gp->atomicstatus) != Grunnable)
                weft__throw("schedule: locked g not runnable");
        } else {
            gp = m->nextg;
            m->nextg = NULL;
            if (!gp) {
                gp = findrunnable(m, &inheritTime);
                if (!gp)
                    return;     /* exiting */
            }
            if (m->spinning)
                resetspinning(m);
            if (gp->lockedm && gp->lockedm != m) {
                startlockedm(m, gp);
                continue;
            }
        }
        if (unlikely(weft__tracing())) weft__trace_gostart(m->p, gp);
        gogo(m, m->g0, gp, inheritTime);
        /* A G switched back to us. */
        weft__finish_switch(m);
    }
}

void weft__mstart(M *m)
{
    weft__minit(m);
    if (m->nextp) {
        P *pp = m->nextp;
        m->nextp = NULL;
        weft__acquirep(m, pp);
    }
    schedule_loop(m);
}

void weft__schedule(void)
{
    /* Entered by weft_main on M0's g0; returns when the runtime exits. */
    schedule_loop(weft__getm());
}

/* ---- park, ready, yield, exit -------------------------------------------------- */

/* A goroutine between weft_syscall_enter and weft_syscall_exit has given
 * its P away: it cannot park or yield (there is no P to switch on, and the
 * syscall state would be lost).  That is a bug in the caller, reported as
 * Go reports misuse of the runtime: a fatal error naming the call, with
 * the goroutine's traceback showing where.  Every wait checks it when it
 * takes its waiter (weft__waiter_get), weft_yield here. */
void weft__insyscall(G *gp, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof msg, "%s between weft_syscall_enter and weft_syscall_exit (goroutine %lld)",
             what, (long long)gp->goid);
    weft__fatal(msg);
    __builtin_unreachable();
}

/* Go's gopark: Grunning -> Gwaiting, then off the stack; f(gp, arg) runs on
 * the next context (weft__finish_switch).  Every wait goes through
 * weft__park (park.c), which prepares the waiter, arms its timeout and
 * cancels what a failed commit leaves; parking around it would skip that,
 * so the debug builds refuse it (the release build spares the park path
 * the check). */
static inline void gopark(G *gp, weft__after action, weft__unlockf f, void *arg,
                          weft__waitreason r)
{
    if (WEFT_DEBUG && unlikely(!gp->parking))
        weft__throw("park: not called through weft__park");
    gp->waitreason = (uint8_t)r;
    gp->waitsince = (int64_t)AO_load(&weft__coarsetime);
    /* store: only the waker (after our unlockf ran) moves it on */
    AO_store(&gp->atomicstatus, Gwaiting);
    switch_from_g(gp, action, f, arg);
}

/* weft__gopark's uncommon case: g0 (an error) or a goroutine whose stack
 * may be compacted. */
static __attribute__((noinline, cold)) void goparkslow(G *gp, weft__unlockf f, void *arg,
                                                       weft__waitreason r)
{
    if (!gp || gp->issystem)
        weft__throw("park: not on a user goroutine");
    gopark(gp, AFTER_PARK_COMPACT, f, arg, r);
}

void weft__gopark(weft__unlockf f, void *arg, weft__waitreason r)
{
    G *gp = weft__getg();
    if (unlikely(!gp || gp->parkslow))     /* issystem or compact: one test */
        goparkslow(gp, f, arg, r);
    else
        gopark(gp, AFTER_PARK, f, arg, r);
}

void weft__ready(G *gp, bool next)
{
    /* Exactly one waker readies a G per park: whoever took it off a wait
     * queue under that queue's lock, or won its select's or timer's CAS.
     * So a check and a plain store do (Go's casgstatus is a CAS because its
     * GC moves statuses too; nothing else writes a waiting G's status
     * here); the check still catches a double ready that is not
     * simultaneous.  The waker's writes (a received value, sg->success)
     * reach whoever runs gp through runqput's release (runnext CAS or the
     * store-release of runqtail) or sched.lock, paired with the
     * consumer's acquire. */
    readyg(gp);
    G *me = weft__getg();
    M *m = me ? me->m : NULL;
    if (m && m->p) {
        weft__runqput(m->p, gp, next);
    } else {
        weft__lock(&sched.lock);
        weft__globrunqput(gp);
        weft__unlock(&sched.lock);
    }
    weft__wakep();
}

static void gosched(bool preempted)
{
    G *gp = weft__getg();
    AO_store(&gp->atomicstatus, Grunnable);
    switch_from_g(gp, preempted ? AFTER_GLOBRUNQPUT : AFTER_RUNQPUT, NULL, NULL);
}

void weft_yield(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem) {
        sched_yield();
        return;
    }
    if (unlikely(AO_load(&gp->atomicstatus) == Gsyscall))
        weft__insyscall(gp, "weft_yield");
    /* A preemption request (sysmon, or a stop-the-world) sends the G to the
     * back of the global queue, as Go's gopreempt does. */
    bool preempted = AO_load(&gp->preempt) != 0;
    if (unlikely(preempted))
        AO_store(&gp->preempt, 0);
    AO_store(&gp->atomicstatus, Grunnable);
    switch_from_g(gp, preempted ? AFTER_GLOBRUNQPUT : AFTER_RUNQPUT, NULL, NULL);
}

void weft__preempted(G *gp)
{
    /* Not a plain thread's system G, and not inside a syscall bracket
     * (the call then just runs on; its M has no P to yield). */
    if (!gp->issystem && AO_load(&gp->atomicstatus) == Grunning)
        weft_yield();
}

/* The end of a G (return from its function or weft_exit), on its stack. */
void weft__goexit0(G *gp)
{
    weft__locals_destroy(gp);
    if (gp->lockedm) {
        /* Go ends a thread whose G exits locked; weft unlocks and keeps it. */
        gp->m->lockedg = NULL;
        gp->lockedm = NULL;
        gp->lockedext = 0;
    }
    if (gp->ismain) {
        /* The end of main ends the program's goroutines (lifecycle.c). */
        weft__main_exit(gp);
    }
    AO_store(&gp->atomicstatus, Gdead);
    switch_from_g(gp, AFTER_EXIT, NULL, NULL);
    weft__throw("goexit: dead goroutine resumed");
}

void weft_exit(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem)
        weft_panic("weft_exit called outside a goroutine");
    if (gp->ismain) {
        /* As Go's Goexit in main: main ends but the program goes on; when
         * the other goroutines are done, checkdead reports it. */
        gp->ismain = false;
        weft__lock(&sched.lock);
        sched.mainexited = true;
        weft__unlock(&sched.lock);
    }
    weft__goexit0(gp);
}

/* ---- syscalls -------------------------------------------------------------------- */

void (*weft__syscall_gcwait_testhook)(void);

void weft_syscall_enter(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem)
        return;     /* plain thread: nothing to hand off */
    if (AO_load(&gp->atomicstatus) != Grunning)
        weft_panic("weft_syscall_enter: goroutine %lld is already in a syscall", (long long)gp->goid);
    M *m = gp->m;
    P *pp = m->p;
    /* Where a traceback of this G starts while it is in the syscall: our
     * caller's frame, which stays put until it calls weft_syscall_exit. */
    uintptr_t *fp = __builtin_frame_address(0);
    gp->syscallfp = fp[0];
    gp->syscallpc = fp[1];
    gp->syscallsp = (uintptr_t)__builtin_dwarf_cfa();
    gp->waitsince = (int64_t)AO_load(&weft__coarsetime);
    AO_store(&gp->atomicstatus, Gsyscall);
    AO_fetch_and_add1(&pp->syscalltick);
    if (unlikely(weft__tracing())) weft__trace_syscall(gp, pp);
    pp->m = NULL;
    m->oldp = pp;
    m->p = NULL;
    /* store-release: publishes the detached P (pp->m = NULL) to sysmon and
     * to stop-the-world, which CAS the status away from Psyscall. */
    AO_store_release(&pp->status, Psyscall);
    /* A stop the world waits for this P: stop it here rather than leave
     * it to sysmon.  gcwaiting is only a hint outside sched.lock, and
     * this thread may wait long for the lock (preempted under load): the
     * stop may end meanwhile, and the world restart, with pp retaken by
     * sysmon, started again and back in Psyscall under another M's
     * syscall.  Stopping it then would leave it Pgcstop with the world
     * running and stopwait at -1, and the next stop would wait for it for
     * ever.  So, as Go's entersyscall_gcwait, only a stop still under way
     * (stopwait > 0, read under the lock every count is made under) may
     * take it; whichever syscall pp is in then, it counts once (the CAS
     * races with the stopper's and sysmon's). */
    if (unlikely(AO_load(&sched.gcwaiting))) {
        if (unlikely(weft__syscall_gcwait_testhook != NULL))
            weft__syscall_gcwait_testhook();
        weft__lock(&sched.lock);
        if (sched.stopwait > 0 && AO_compare_and_swap_full(&pp->status, Psyscall, Pgcstop)) {
            if (unlikely(weft__tracing())) weft__trace_procstop(pp);
            gcstopp(pp);
        }
        weft__unlock(&sched.lock);
    }
}

void weft_syscall_exit(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem)
        return;
    if (AO_load(&gp->atomicstatus) != Gsyscall)
        weft_panic("weft_syscall_exit without weft_syscall_enter in goroutine %lld", (long long)gp->goid);
    M *m = gp->m;
    if (unlikely(AO_load(&sched.exiting))) {
        /* main has returned: this goroutine never runs again, and its M
         * goes back to its scheduler loop, which ends (for m0, weft_main
         * then finishes the shutdown). */
        switch_from_g(gp, AFTER_NONE, NULL, NULL);
        weft__throw("syscall_exit: resumed after exit");
    }
    P *oldp = m->oldp;
    m->oldp = NULL;
    /* Fast path: our P is still ours.  CAS-full pairs with sysmon's CAS. */
    if (oldp && AO_compare_and_swap_full(&oldp->status, Psyscall, Prunning)) {
        m->p = oldp;
        oldp->m = m;
        AO_fetch_and_add1(&oldp->syscalltick);
        if (unlikely(AO_load(&sched.gprofiling)))
            weft__gprof_execute(gp);    /* as in gogo: before it runs on */
        if (unlikely(weft__tracing())) weft__trace_sysexit(gp, oldp);
        AO_store(&gp->atomicstatus, Grunning);
        return;
    }
    /* Try any idle P. */
    if (!AO_load(&sched.gcwaiting)) {
        weft__lock(&sched.lock);
        P *pp = AO_load(&sched.gcwaiting) ? NULL : weft__pidleget();
        weft__unlock(&sched.lock);
        if (pp) {
            weft__acquirep(m, pp);
            AO_fetch_and_add1(&pp->syscalltick);
            if (unlikely(AO_load(&sched.gprofiling)))
                weft__gprof_execute(gp);
            if (unlikely(weft__tracing())) weft__trace_sysexit(gp, pp);
            AO_store(&gp->atomicstatus, Grunning);
            return;
        }
    }
    /* No P: queue the G globally (after the switch) and stop this M.  It
     * stays Gsyscall until it is off its stack (Go's exitsyscall0), so a
     * dump that reads it meanwhile walks its syscall frame, not a stale
     * saved context. */
    if (unlikely(weft__tracing())) weft__trace_sysexit(gp, NULL);
    switch_from_g(gp, AFTER_SYSCALL_EXIT, NULL, NULL);
}

/* ---- stop the world ------------------------------------------------------------ */

static void preemptall(void)
{
    uint32_t n = (uint32_t)AO_load(&weft__gomaxprocs);
    for (uint32_t i = 0; i < n; i++) {
        P *pp = weft__allp[i];
        M *mp = pp->m;
        G *gp = mp ? mp->curg : NULL;
        if (gp)
            AO_store(&gp->preempt, 1);
    }
}

/* Returns false if the runtime started exiting meanwhile (the world then
 * never restarts; the caller must not touch the Ps). */
bool weft__stoptheworld(void)
{
    G *gp = weft__getg();
    bool ing = gp && !gp->issystem;
    /* worldsema: one stopper at a time.  A goroutine must not block its M
     * here (the current stopper may be waiting for this very P), so it
     * yields until it gets the semaphore. */
    if (ing) {
        while (!weft__trylock(&sched.worldsema))
            gosched(false);
    } else {
        weft__lock(&sched.worldsema);
    }
    M *m = ing ? gp->m : NULL;
    weft__lock(&sched.lock);
    int32_t nprocs = (int32_t)AO_load(&weft__gomaxprocs);
    sched.stopwait = nprocs;
    AO_store(&sched.gcwaiting, 1);
    preemptall();
    if (m && m->p) {
        AO_store(&m->p->status, Pgcstop);
        sched.stopwait--;
    }
    for (int32_t i = 0; i < nprocs; i++) {
        P *pp = weft__allp[i];
        if (AO_load(&pp->status) == Psyscall &&
            AO_compare_and_swap_full(&pp->status, Psyscall, Pgcstop)) {
            if (unlikely(weft__tracing())) weft__trace_procstop(pp);
            pp->m = NULL;
            sched.stopwait--;
        }
    }
    P *pp;
    while ((pp = weft__pidleget()) != NULL) {
        AO_store(&pp->status, Pgcstop);
        sched.stopwait--;
    }
    bool wait = sched.stopwait > 0;
    weft__unlock(&sched.lock);
    if (wait) {
        while (!weft__notetsleep(&sched.stopnote, 100 * 1000)) {
            if (AO_load(&sched.exiting)) {
                /* Ms exit instead of stopping.  Nobody starts this world
                 * again, but the semaphore goes back: our caller may yield
                 * (its M leaves), and no lock is held across a switch. */
                weft__unlock(&sched.worldsema);
                return false;
            }
            preemptall();
        }
        weft__noteclear(&sched.stopnote);
    }
    if (sched.stopwait != 0)
        weft__throw("stoptheworld: not stopped");
    return true;
}

void weft__starttheworld(void)
{
    G *gp = weft__getg();
    M *m = gp ? gp->m : NULL;
    P *torun = NULL;
    weft__lock(&sched.lock);
    int32_t nprocs = (int32_t)AO_load(&weft__gomaxprocs);
    for (int32_t i = 0; i < nprocs; i++) {
        P *pp = weft__allp[i];
        if (m && m->p == pp) {
            AO_store(&pp->status, Prunning);
            continue;
        }
        pp->m = NULL;
        if (weft__runqempty(pp)) {
            weft__pidleput(pp);
        } else {
            AO_store(&pp->status, Pidle);
            pp->link = torun;
            torun = pp;
        }
    }
    AO_store(&sched.gcwaiting, 0);
    weft__unlock(&sched.lock);
    while (torun) {
        P *pp = torun;
        torun = pp->link;
        pp->link = NULL;
        startm(pp, false);
    }
    weft__wakep();
    weft__unlock(&sched.worldsema);
}

int weft_maxprocs(int n)
{
    if (n > WEFT_MAXPROCS_MAX)
        return -EINVAL;
    if (AO_load(&sched.booted) != 2)
        return weft__maxprocs_preboot(n);
    int prev = (int)AO_load(&weft__gomaxprocs);
    if (n <= 0 || n == prev)
        return prev;
    if (!weft__stoptheworld()) {
        /* main returned while we stopped the world: this goroutine never
         * runs again (its M leaves at this scheduling point). */
        weft_yield();
        return prev;
    }
    prev = (int)AO_load(&weft__gomaxprocs);
    weft__lock(&sched.lock);
    weft__procresize(n);
    weft__unlock(&sched.lock);
    weft__starttheworld();
    return prev;
}

/* ---- locking to a thread --------------------------------------------------------- */

void weft_lock_thread(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem)
        return;     /* a plain thread is always "locked" to itself */
    gp->lockedext++;
    if (gp->lockedext == 0)
        weft_panic("weft_lock_thread nested too deep");
    M *m = gp->m;
    m->lockedg = gp;
    gp->lockedm = m;
}

void weft_unlock_thread(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem || gp->lockedext == 0)
        return;     /* as Go: unlocking an unlocked G is a no-op */
    if (--gp->lockedext == 0) {
        gp->m->lockedg = NULL;
        gp->lockedm = NULL;
    }
}
