/*
 * trace.c — the execution tracer's side in the scheduler: what each
 * scheduling transition emits, the goroutines' and Ps' trace state, and
 * weft_trace_start / weft_trace_stop (Go's runtime/trace.go; the writer
 * and the format: diag/tracebuf.c, diag/trace.h; the events and their
 * meaning in weft: docs/formats.md, "Execution trace").
 *
 * The scheduler calls a hook here at each transition, behind one test of
 * weft__tracing(), so that tracing compiled in and off costs a load and a
 * not-taken branch per transition:
 *
 *   newproc            GoCreate (creating stack; the new G's function)
 *   gogo               GoStart (a G goes on a P)
 *   weft_yield         GoSched, or GoPreempt when sysmon asked for it
 *   gopark             GoBlock* with Go's reason for the wait reason
 *   ready              GoUnblock (the unblocking stack)
 *   goexit0            GoEnd
 *   syscall_enter      GoSysCall + GoSysBlock: weft detaches the P at
 *                      every syscall, so the G leaves it at once
 *   syscall_exit       GoSysExit (+ GoStart when it got a P back)
 *   acquirep/releasep  ProcStart / ProcStop
 *   sysmon, STW        ProcStop of a P taken from a goroutine in a syscall
 *   procresize         Gomaxprocs
 *
 * Go's parser checks every goroutine's life as a state machine (runnable,
 * running, waiting) ordered by per-goroutine sequence numbers, and every
 * P's (started, running one G).  Each G and P here carries the state the
 * trace shows for it (tracest, tracerunning) and the trace it belongs to
 * (tracegen), written by whoever owns the transition, so a hook emits
 * only what is valid in the trace's eyes: a G the trace does not know
 * (created by a plain thread while tracing started) stays silent, and a G
 * the trace shows waiting whose wake-up was missed (the waker, a thread
 * without a P, tested weft__tracing() just before it turned on) is
 * unblocked by the scheduler when it starts.  The sequence number
 * (traceseq) is the parser's: GoCreate makes it 1, and each GoStart,
 * GoUnblock and GoSysExit carries it and then increments it.
 *
 * The flight recorder (weft_flightrecorder_*, at the end) is the same
 * tracer writing into memory; its windows need events without sequence
 * numbers (diag/tracebuf.c, "The flight recorder").
 *
 * Timestamps and ordering.  An event is emitted before its transition is
 * published (before the run-queue put that lets another P start the G,
 * before the status store that lets sysmon take a P), so that in time a
 * goroutine's events follow one another across Ps, as the parser checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/scheddebug.h"
#include "diag/nosigpipe.h"
#include "diag/trace.h"
#include "diag/unwind.h"

enum {
    TRACE_GUNKNOWN = 0,     /* not in this trace (or dead) */
    TRACE_GRUNNABLE,
    TRACE_GRUNNING,
    TRACE_GWAITING,
};

/* Start and stop, and whether a trace runs (tracectl). */
static weft__mutex tracectl = WEFT__MUTEX_INIT(LOCKRANK_TRACECTL);
static bool active;         /* tracectl */
static int bootfd = -1;     /* tracectl: SCHEDDEBUG=tracefile's file */
/* This thread is starting a trace: its events go out before tracing is
 * on (Go's m.startingtrace). */
static __thread bool tls_starting;
/* The flight recorder runs (tracectl to change, with the world stopped):
 * GoStart, GoUnblock and GoSysExit go out as their sequence-free Local
 * variants (diag/tracebuf.c, "The flight recorder"). */
static bool frmode;

/* ---- emitting -------------------------------------------------------------- */

/* pp's buffer for this trace (pp's owner). */
static weft__tracebuf **pbuf(P *pp)
{
    if (pp->tracegen != weft__trace_gen) {
        pp->tracegen = weft__trace_gen;
        pp->tracebuf = NULL;        /* the last trace's was flushed by its stop */
        pp->tracerunning = false;
    }
    return &pp->tracebuf;
}

/* A thread without a P changes a goroutine's trace state and emits its
 * event with tracelock held, so that the flight recorder's checkpoint,
 * which declares goroutines by that state under the same lock, sees both
 * or neither.  nopbegin: true if the event may go out (then call nopend);
 * emit_held: emit with the lock taken by nopbegin when pp is NULL. */
static bool nopbegin(P *pp)
{
    if (pp)
        return true;
    weft__trace_lock();
    if (weft__tracing() || tls_starting)
        return true;
    weft__trace_unlock();
    return false;
}

static void nopend(P *pp)
{
    if (!pp)
        weft__trace_unlock();
}

static void emit_held(P *pp, G *about, int ev, const uint64_t *args, int nargs, bool hasstk, uint64_t stk)
{
    int64_t *gts = about ? &about->tracets : NULL;
    if (pp)
        weft__trace_emit(pbuf(pp), pp->id, ev, args, nargs, hasstk, stk, gts);
    else
        weft__trace_emit(weft__trace_globalbuf(), TRACE_GLOBAL_PID, ev, args, nargs, hasstk, stk, gts);
}

/* Emits on pp's buffer, or on the global one when pp is NULL (a thread
 * without a P); about: the goroutine the event is about, or NULL
 * (weft__trace_emit). */
static void emit(P *pp, G *about, int ev, const uint64_t *args, int nargs, bool hasstk, uint64_t stk)
{
    if (!nopbegin(pp))
        return;
    emit_held(pp, about, ev, args, nargs, hasstk, stk);
    nopend(pp);
}

/* The current thread's P, NULL off an M or on an M without one. */
static P *curp(void)
{
    G *g = weft__getg();
    M *m = g ? g->m : NULL;
    return m ? m->p : NULL;
}

/* The stack of the code that called the hook that calls this (the hook's
 * own frame and this one dropped). */
static __attribute__((noinline)) uint64_t callerstack(void)
{
    uintptr_t pcs[TRACE_MAXSTACK];
    G *g = weft__getg();
    /* A walk the thread made before in this trace carries its stack id
     * (its memo's tag, keyed by the trace): no pcs to copy or hash. */
    uint32_t gen = weft__trace_gen;
    uint64_t *slot;
    int n = weft__callers_tagged(2, g ? g->stacklo : 0, g ? g->stackhi : 0, pcs, TRACE_MAXSTACK, gen, &slot);
    if (n == WEFT__CALLERS_TAGGED)
        return (uint32_t)*slot;
    uint64_t id = weft__trace_stack(pcs, n);
    if (slot && id && id <= UINT32_MAX)
        *slot = (uint64_t)gen << 32 | id;
    return id;
}

static bool known(G *gp)
{
    return gp->tracegen == weft__trace_gen && gp->tracest != TRACE_GUNKNOWN;
}

/* The "stack" of a goroutine that has not run: its function, as a return
 * address (the footer looks up pc - 1). */
static uint64_t startstack(G *gp)
{
    uintptr_t pc = (uintptr_t)gp->fn + 1;
    return weft__trace_stack(&pc, 1);
}

static void procstart(P *pp, M *m)
{
    pbuf(pp);
    if (pp->tracerunning)
        return;
    uint64_t a = m ? (uint64_t)m->id : 0;
    emit(pp, NULL, TEV_PROCSTART, &a, 1, false, 0);
    pp->tracerunning = true;
}

/* GoStart of gp on pp, which its caller owns. */
static void gostart(P *pp, G *gp)
{
    procstart(pp, gp->m);
    if (gp->tracest == TRACE_GWAITING) {
        /* its waker missed the start of the trace (see the top) */
        uint64_t a[2] = { (uint64_t)gp->goid, gp->traceseq++ };
        emit(pp, gp, frmode ? TEV_GOUNBLOCKLOCAL : TEV_GOUNBLOCK, a, frmode ? 1 : 2, true, 0);
    }
    uint64_t a[2] = { (uint64_t)gp->goid, gp->traceseq++ };
    emit(pp, gp, frmode ? TEV_GOSTARTLOCAL : TEV_GOSTART, a, frmode ? 1 : 2, false, 0);
    gp->tracest = TRACE_GRUNNING;
}

/* ---- the hooks ------------------------------------------------------------------ */

void weft__trace_gocreate(P *pp, G *newg)
{
    /* stacks first: interning takes tracelock, which the global buffer's
     * emitters hold */
    uint64_t a[2] = { (uint64_t)newg->goid, startstack(newg) };
    uint64_t stk = callerstack();
    if (!nopbegin(pp))
        return;
    newg->tracegen = weft__trace_gen;
    newg->traceseq = 1;
    newg->tracest = TRACE_GRUNNABLE;
    newg->ntraceregion = 0;
    emit_held(pp, newg, TEV_GOCREATE, a, 2, true, stk);
    nopend(pp);
}

void weft__trace_gostart(P *pp, G *gp)
{
    if (known(gp))
        gostart(pp, gp);
}

static void gosched(G *gp, bool preempted)
{
    if (!known(gp) || gp->tracest != TRACE_GRUNNING)
        return;
    emit(gp->m->p, gp, preempted ? TEV_GOPREEMPT : TEV_GOSCHED, NULL, 0, true, callerstack());
    gp->tracest = TRACE_GRUNNABLE;
}

/* Go's event for each wait reason.  A wait that never ends (a nil
 * channel, an empty select) is a plain block, not Go's GoStop: the parser
 * takes GoStop for the goroutine's end. */
static int blockev(int r)
{
    switch (r) {
    case waitReasonIOWait:              return TEV_GOBLOCKNET;
    case waitReasonSleep:               return TEV_GOSLEEP;
    case waitReasonSelect:              return TEV_GOBLOCKSELECT;
    case waitReasonChanReceive:         return TEV_GOBLOCKRECV;
    case waitReasonChanSend:            return TEV_GOBLOCKSEND;
    case waitReasonSyncCondWait:        return TEV_GOBLOCKCOND;
    case waitReasonSemacquire:
    case waitReasonSyncMutexLock:
    case waitReasonSyncRWMutexRLock:
    case waitReasonSyncRWMutexLock:
    case waitReasonSyncWaitGroupWait:   return TEV_GOBLOCKSYNC;
    default:                            return TEV_GOBLOCK;
    }
}

static void goblock(G *gp, int reason)
{
    if (!known(gp) || gp->tracest != TRACE_GRUNNING)
        return;
    emit(gp->m->p, gp, blockev(reason), NULL, 0, true, callerstack());
    gp->tracest = TRACE_GWAITING;
}

static void goend(G *gp)
{
    if (!known(gp) || gp->tracest != TRACE_GRUNNING)
        return;
    emit(gp->m->p, gp, TEV_GOEND, NULL, 0, false, 0);
    gp->tracest = TRACE_GUNKNOWN;
    gp->tracegen = 0;
}

/* A G leaves its M (switch_from_g), for the reason its action says. */
void weft__trace_leave(G *gp, int action)
{
    switch (action) {
    case AFTER_RUNQPUT:      gosched(gp, false); break;
    case AFTER_GLOBRUNQPUT:  gosched(gp, true); break;     /* sysmon or a stop asked */
    case AFTER_PARK:
    case AFTER_PARK_COMPACT: goblock(gp, gp->waitreason); break;
    case AFTER_EXIT:         goend(gp); break;
    default:                 break;      /* a syscall's exit without a P: traced there */
    }
}

void weft__trace_unblock(G *gp)
{
    if (!known(gp) || gp->tracest != TRACE_GWAITING)
        return;
    uint64_t stk = callerstack();
    P *pp = curp();
    if (!nopbegin(pp))
        return;
    if (known(gp) && gp->tracest == TRACE_GWAITING) {   /* again, under the lock */
        uint64_t a[2] = { (uint64_t)gp->goid, gp->traceseq++ };
        gp->tracest = TRACE_GRUNNABLE;
        emit_held(pp, gp, frmode ? TEV_GOUNBLOCKLOCAL : TEV_GOUNBLOCK, a, frmode ? 1 : 2, true, stk);
    }
    nopend(pp);
}

void weft__trace_syscall(G *gp, P *pp)
{
    if (!known(gp) || gp->tracest != TRACE_GRUNNING)
        return;
    emit(pp, gp, TEV_GOSYSCALL, NULL, 0, true, callerstack());
    emit(pp, gp, TEV_GOSYSBLOCK, NULL, 0, false, 0);
    gp->tracest = TRACE_GWAITING;
}

void weft__trace_sysexit(G *gp, P *pp)
{
    if (!known(gp) || gp->tracest != TRACE_GWAITING || !nopbegin(pp))
        return;
    uint64_t a[3] = { (uint64_t)gp->goid, gp->traceseq++, 0 };
    gp->tracest = TRACE_GRUNNABLE;
    if (pp)
        procstart(pp, gp->m);
    /* The recorder has no sequence numbers to give, and Go 1.19's parser
     * reads GoSysExitLocal's goroutine from the batch (0 here), not from
     * its argument: its windows show a syscall's end as an unblock. */
    if (frmode)
        emit_held(pp, gp, TEV_GOUNBLOCKLOCAL, a, 1, true, 0);
    else
        emit_held(pp, gp, TEV_GOSYSEXIT, a, 3, false, 0);
    nopend(pp);
    if (pp)
        gostart(pp, gp);
}

void weft__trace_procstart(P *pp, M *m)
{
    procstart(pp, m);
}

void weft__trace_procstop(P *pp)
{
    pbuf(pp);
    if (!pp->tracerunning)
        return;
    emit(pp, NULL, TEV_PROCSTOP, NULL, 0, false, 0);
    pp->tracerunning = false;
}

void weft__trace_procresize(M *m, int32_t nprocs)
{
    P *pp = m ? m->p : NULL;
    uint64_t a = (uint64_t)nprocs;
    emit(pp, NULL, TEV_GOMAXPROCS, &a, 1, true, callerstack());
    if (!pp || pp->id < nprocs)
        return;
    /* The caller's P goes away and it continues on P0: as Go, show it
     * descheduled from the old P and started again on P0. */
    G *gp = m->curg;
    bool run = gp && known(gp) && gp->tracest == TRACE_GRUNNING;
    if (run) {
        emit(pp, gp, TEV_GOSCHED, NULL, 0, true, 0);
        gp->tracest = TRACE_GRUNNABLE;
    }
    weft__trace_procstop(pp);
    procstart(weft__allp[0], m);
    if (run)
        gostart(weft__allp[0], gp);
}

/* ---- user annotations (Go's trace.Log, trace.StartRegion) ------------------------ */

void weft_trace_log(const char *category, const char *message)
{
    if (!weft__tracing())
        return;
    G *gp = weft__getg();
    if (gp && !gp->issystem && !known(gp))
        return;
    uint64_t cat = weft__trace_string(category ? category : "");
    uint64_t stk = callerstack();
    P *pp = curp();
    const char *msg = message ? message : "";
    if (pp) {
        weft__trace_emit_log(pbuf(pp), pp->id, cat, stk, msg);
        return;
    }
    weft__trace_lock();
    if (weft__tracing())
        weft__trace_emit_log(weft__trace_globalbuf(), TRACE_GLOBAL_PID, cat, stk, msg);
    weft__trace_unlock();
}

static void region(G *gp, int mode, const char *name)
{
    if (!weft__tracing() || !known(gp))
        return;
    uint64_t a[3] = { 0, (uint64_t)mode, weft__trace_string(name) };
    uint64_t stk = callerstack();
    emit(gp->m->p, gp, TEV_USERREGION, a, 3, true, stk);
}

void weft_trace_region_begin(const char *name)
{
    if (!weft__tracing())
        return;
    G *gp = weft__getg();
    if (!gp || gp->issystem || !name)
        return;     /* regions belong to goroutines */
    /* deeper than the names kept: counted, not shown */
    if (gp->ntraceregion < TRACE_REGIONS) {
        gp->traceregion[gp->ntraceregion] = name;
        region(gp, 0, name);
    }
    if (gp->ntraceregion < UINT8_MAX)
        gp->ntraceregion++;
}

void weft_trace_region_end(void)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem || gp->ntraceregion == 0)
        return;
    uint8_t d = --gp->ntraceregion;
    if (d < TRACE_REGIONS)
        region(gp, 1, gp->traceregion[d]);
}

/* ---- start and stop ------------------------------------------------------------ */

/* With the world stopped: every goroutine alive, as Go's StartTrace
 * declares them (GoCreate, then GoWaiting or GoInSyscall), then the
 * caller's P and the caller itself. */
static void declare_all(G *self, P *pp, P *gpp)
{
    uint64_t here = callerstack();
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        AO_t s = AO_load(&gp->atomicstatus);
        gp->tracegen = 0;
        gp->tracest = TRACE_GUNKNOWN;
        if (gp->issystem || s == Gdead || s == Gidle)
            continue;
        uint64_t a[2] = { (uint64_t)gp->goid, startstack(gp) };
        emit(gpp, gp, TEV_GOCREATE, a, 2, true, here);
        gp->tracegen = weft__trace_gen;
        gp->traceseq = 1;
        gp->tracest = TRACE_GRUNNABLE;
        if (s == Gwaiting || s == Gsyscall) {
            uint64_t g = (uint64_t)gp->goid;
            emit(gpp, gp, s == Gwaiting ? TEV_GOWAITING : TEV_GOINSYSCALL, &g, 1, false, 0);
            gp->traceseq = 2;
            gp->tracest = TRACE_GWAITING;
        }
    }
    if (pp) {
        procstart(pp, self->m);
        if (known(self))
            gostart(pp, self);
    }
    uint64_t n = AO_load(&weft__gomaxprocs);
    emit(pp, NULL, TEV_GOMAXPROCS, &n, 1, true, here);
}

/* Every P's buffer (dead Ps' too) to the writer, or to the recorder's
 * segment; what the trace shows of the P stays.  World stopped. */
static void flush_all(void)
{
    for (int i = 0; i < WEFT_MAXPROCS_MAX; i++) {
        P *pp = weft__allp[i];
        if (pp && pp->tracegen == weft__trace_gen)
            weft__trace_flush(&pp->tracebuf);
    }
}

int weft_trace_start(int fd)
{
    if (weft__fd_writable(fd) < 0)
        return -EBADF;
    weft__lock(&tracectl);
    int err = 0;
    if (active) {
        err = -EBUSY;
        goto out;
    }
    if (AO_load_acquire(&sched.booted) != 2 || AO_load(&sched.exiting)) {
        err = -ESRCH;
        goto out;
    }
    if (!weft__stoptheworld()) {
        err = -ESRCH;
        goto out;
    }
    err = weft__trace_begin(fd);
    if (err == 0) {
        G *self = weft__getg();
        bool isg = self && !self->issystem;
        tls_starting = true;
        declare_all(isg ? self : NULL, isg ? self->m->p : NULL, isg ? self->m->p : NULL);
        tls_starting = false;
        weft__trace_enable();
        active = true;
    }
    weft__starttheworld();
out:
    weft__unlock(&tracectl);
    return err;
}

/* tracectl held, a trace active. */
static int stop_locked(bool world)
{
    bool stopped = world && weft__stoptheworld();
    /* As Go's StopTrace: the caller, the one goroutine still running, is
     * descheduled, so that every GoStart has an end (go tool trace's
     * viewer fails on one without). */
    G *self = weft__getg();
    if (stopped && self && !self->issystem && known(self) && self->tracest == TRACE_GRUNNING) {
        emit(self->m->p, self, TEV_GOSCHED, NULL, 0, true, callerstack());
        self->tracest = TRACE_GRUNNABLE;
    }
    weft__trace_disable();
    flush_all();
    if (stopped)
        weft__starttheworld();
    active = false;
    return weft__trace_finish();
}

/* ---- the flight recorder ---------------------------------------------------------
 * The tracer, writing into memory (diag/tracebuf.c, "The flight
 * recorder", explains the segments and why its events are the Local
 * variants).  Go 1.25's runtime/trace.FlightRecorder. */

/* The smallest window worth keeping: a few buffers per segment. */
#define FR_MINBYTES (4 * TRACE_BUFSIZE)

/* On the recorder thread (a plain thread), when the current segment is
 * half the window: the world stopped, every buffer into the segment, the
 * next segment opened with a declaration of every goroutine the trace
 * knows, in the state the trace shows (not the one its status says: the
 * hooks go by the former). */
static void checkpoint(void)
{
    if (!weft__stoptheworld())
        return;
    flush_all();
    /* Threads without a P still run: hold tracelock (nopbegin) from the
     * rotation to the end of the declaration. */
    weft__trace_lock();
    weft__fr_rotate();
    weft__tracebuf **gb = weft__trace_globalbuf();
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        if (gp->issystem || !known(gp))
            continue;
        uintptr_t pc = (uintptr_t)gp->fn + 1;
        uint64_t a[2] = { (uint64_t)gp->goid, weft__trace_stack_locked(&pc, 1) };
        weft__trace_emit(gb, TRACE_GLOBAL_PID, TEV_GOCREATE, a, 2, true, 0, &gp->tracets);
        if (gp->tracest == TRACE_GWAITING) {
            uint64_t g = (uint64_t)gp->goid;
            weft__trace_emit(gb, TRACE_GLOBAL_PID, TEV_GOWAITING, &g, 1, false, 0, &gp->tracets);
        } else {
            gp->tracest = TRACE_GRUNNABLE;      /* nothing runs: the world is stopped */
        }
    }
    weft__fr_declared();
    weft__trace_unlock();
    weft__starttheworld();
}

/* The recorder's first declaration is complete: it records from here.
 * tracectl held. */
static void fr_on(void)
{
    weft__trace_lock();
    weft__fr_declared();
    weft__trace_unlock();
    weft__trace_enable();
    active = true;
}

int weft_flightrecorder_start(size_t bytes)
{
    if (bytes < FR_MINBYTES)
        return -EINVAL;
    weft__lock(&tracectl);
    int err = 0;
    if (active) {
        err = -EBUSY;
        goto out;
    }
    if (AO_load_acquire(&sched.booted) != 2 || AO_load(&sched.exiting) || !weft__stoptheworld()) {
        err = -ESRCH;
        goto out;
    }
    err = weft__fr_begin(bytes, checkpoint);
    if (err == 0) {
        G *self = weft__getg();
        bool isg = self && !self->issystem;
        frmode = true;
        tls_starting = true;
        declare_all(isg ? self : NULL, isg ? self->m->p : NULL, NULL);
        tls_starting = false;
        fr_on();
    }
    weft__starttheworld();
out:
    weft__unlock(&tracectl);
    return err;
}

int weft_flightrecorder_write(int fd)
{
    if (weft__fd_writable(fd) < 0)
        return -EBADF;
    weft__lock(&tracectl);
    int err = -EINVAL;
    if (active && frmode) {
        err = -ESRCH;
        if (weft__stoptheworld()) {
            flush_all();
            err = weft__fr_write(fd);
            weft__starttheworld();
        }
    }
    weft__unlock(&tracectl);
    return err;
}

/* tracectl held, the recorder running. */
static void fr_stop_locked(bool world)
{
    /* The recorder thread may be stopping the world for a checkpoint,
     * waiting for our P among others: give it up while we wait for the
     * thread (a syscall's bracket; nothing on a plain thread). */
    weft_syscall_enter();
    weft__fr_quit();
    weft_syscall_exit();
    bool stopped = world && weft__stoptheworld();
    weft__trace_disable();
    flush_all();
    weft__fr_end();
    frmode = false;
    active = false;
    if (stopped)
        weft__starttheworld();
}

int weft_flightrecorder_stop(void)
{
    weft__lock(&tracectl);
    int err = -EINVAL;
    if (active && frmode) {
        fr_stop_locked(true);
        err = 0;
    }
    weft__unlock(&tracectl);
    return err;
}

int weft_trace_stop(void)
{
    weft__lock(&tracectl);
    int err = active && !frmode ? stop_locked(true) : -EINVAL;
    if (bootfd >= 0 && !active) {
        close(bootfd);
        bootfd = -1;
    }
    weft__unlock(&tracectl);
    return err;
}

/* SCHEDDEBUG=flightrecorder: the recorder from boot, nothing running
 * yet (no goroutine, every P idle).  tracectl held. */
static void fr_boot(void)
{
    if (weft__fr_begin(TRACE_FR_DEFAULT, checkpoint) < 0) {
        weft__printf(2, "weft: SCHEDDEBUG=flightrecorder: cannot start the recorder thread\n");
        return;
    }
    frmode = true;
    uint64_t n = AO_load(&weft__gomaxprocs);
    tls_starting = true;
    emit(NULL, NULL, TEV_GOMAXPROCS, &n, 1, true, 0);
    tls_starting = false;
    fr_on();
}

void weft__trace_boot(void)
{
    const char *path = weft__debug.tracefile;
    if (!path[0] && !weft__debug.flightrecorder[0])
        return;
    weft__lock(&tracectl);
    if (!active && !path[0]) {
        fr_boot();
    } else if (!active) {
        if (weft__debug.flightrecorder[0])
            weft__printf(2, "weft: SCHEDDEBUG: tracefile and flightrecorder both set: tracing to the file\n");
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            weft__printf(2, "weft: SCHEDDEBUG=tracefile: cannot create %s (errno %d)\n", path, errno);
        } else if (weft__trace_begin(fd) < 0) {
            close(fd);
        } else {
            /* Nothing runs yet: no goroutine, every P idle. */
            uint64_t n = AO_load(&weft__gomaxprocs);
            tls_starting = true;
            emit(NULL, NULL, TEV_GOMAXPROCS, &n, 1, true, 0);
            tls_starting = false;
            weft__trace_enable();
            active = true;
            bootfd = fd;
        }
    }
    weft__unlock(&tracectl);
}

/* Called by diag/crash.c on a panic, a fatal error (a deadlock), a fatal
 * signal or SIGQUIT, before the tracebacks: the flight recorder's window
 * to SCHEDDEBUG=flightrecorder's path.  The world cannot be stopped (the
 * dying thread may hold a P, or sched.lock), so the Ps' buffers are read
 * as their owners go on writing them: tracebuf.c, "A window from a
 * crash", says why the result is still a consistent cut. */
void weft__trace_crash(void)
{
    static weft__tracebuf *bufs[WEFT_MAXPROCS_MAX];  /* no malloc here, and too big for a signal stack */
    const char *path = weft__debug.flightrecorder;
    if (!path[0] || !weft__tracing())
        return;
    if (!weft__trace_lock_crash()) {
        weft__printf(2, "weft: flight recorder: the tracer's lock is held; no window written\n");
        return;
    }
    if (!weft__fr_recording()) {
        weft__trace_unlock();
        return;
    }
    int64_t cut = weft__trace_ticks();
    int n = 0;
    for (int i = 0; i < WEFT_MAXPROCS_MAX; i++) {
        P *pp = weft__allp[i];
        if (!pp || pp->tracegen != weft__trace_gen)
            continue;
        /* load-acquire: pairs with room's store-release of a new buffer
         * (its header written); the owner cannot replace it meanwhile
         * without tracelock */
        weft__tracebuf *b = (weft__tracebuf *)AO_load_acquire((AO_t *)&pp->tracebuf);
        if (b)
            bufs[n++] = b;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int err = fd < 0 ? -errno : weft__fr_crashwrite(fd, bufs, n, cut);
    if (fd >= 0)
        close(fd);
    weft__trace_unlock();
    if (err < 0)
        weft__printf(2, "weft: flight recorder: cannot write %s (errno %d)\n", path, -err);
    else
        weft__printf(2, "weft: flight recorder: window written to %s\n", path);
}

void weft__trace_shutdown(void)
{
    /* a hint: rechecked under tracectl */
    if (!weft__tracing())
        return;
    weft__lock(&tracectl);
    if (active && frmode) {
        fr_stop_locked(false);
    } else if (active) {
        /* main returned: the world cannot stop any more, and the Ms have
         * left their loops (or are stuck in a syscall, whose exit finds
         * tracing off) */
        stop_locked(false);
    }
    if (bootfd >= 0) {
        close(bootfd);
        bootfd = -1;
    }
    weft__unlock(&tracectl);
}
