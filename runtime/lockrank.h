/*
 * lockrank.h — the order in which the runtime's locks may be taken (Go's
 * lockrank.go), checked in the WEFT_LOCKRANK build (lock.c, as Go's
 * lockrank_on.go).
 *
 * Every weft__mutex has a rank.  The ranks below are listed from the
 * outermost to the innermost, and the table under them is the partial
 * order itself: for each rank, the ranks that may be held directly when it
 * is acquired ("a < b": a is taken before b), each entry saying where that
 * nesting happens in the code.  Two locks with no path between them in the
 * table are never held together, which a total order alone could not say.
 * The checker uses the table's transitive closure (holding a < b < c, c may
 * be taken under both), and verifies before main that every entry names a
 * lower rank: the enum order is then a topological order of the table, so
 * the table has no cycle, and locks taken along it cannot deadlock.
 *
 * A rank that lists itself may be held several times at once, the locks
 * taken in increasing address order (chan: select locks every channel of
 * its cases in address order; timers: procresize moves a dead P's timers
 * to P0 holding both heaps).  Any two threads then meet those locks in the
 * same order.
 *
 * Where the rank lives.  A lock is labelled where it is initialised:
 * weft__lockinit(&l, LOCKRANK_X) for locks in allocated or reset memory,
 * WEFT__MUTEX_INIT(LOCKRANK_X) for static ones (sched's three are labelled
 * by sched.c's initialiser and again after shutdown's memset in proc.c),
 * and weft__lockrank_lazy at the accessor of a lock that has no
 * initialisation call (a weft_cond made by WEFT_COND_INIT or zeroed
 * memory).  In the checking build the rank is kept in the top byte of the
 * mutex's sleepers word, which leaves the count 24 bits (16 million
 * sleeping threads); in the normal build the labels compile to nothing,
 * that byte stays zero, and weft__lock, weft__trylock and weft__unlock are
 * the same instructions as without the checker.  The alternatives were
 * worse: a third field changes sizeof(weft__mutex), which the public
 * weft_cond holds in a uintptr_t (the ABI must not differ between builds);
 * a side table keyed by address needs a synchronised lookup on every lock,
 * which serialises the very races the stress build looks for, and goes
 * stale when memory is reused; a rank given at each call site cannot name
 * the lock that park's unlockf or weft__waiter_block receive as a pointer.
 *
 * What the checking build checks, per OS thread (a goroutine parks with a
 * lock held and whatever runs next on the same thread releases it: see
 * weft__park's unlockf), printing with a "runtime:" prefix and then
 * calling weft__throw:
 *   - acquiring a lock that has no rank;
 *   - acquiring a lock while holding one that may not be held then (the
 *     message names both), a second lock of a rank that does not list
 *     itself, one of a rank that does at a lower address than a held one,
 *     or the same lock again;
 *   - releasing a lock this thread does not hold.
 * weft__trylock records the lock it takes (which must have a rank) but does
 * not check the order: it cannot wait, so it cannot close a deadlock cycle
 * (a lock taken after it is checked against it).  Crash output (weft__panicking set) takes what
 * it can with trylocks and timeouts, possibly under any lock the crashing
 * thread held: from then on the checker only records, it never throws.
 */
#ifndef WEFT_LOCKRANK_H
#define WEFT_LOCKRANK_H

#include <stdint.h>

typedef enum {
    LOCKRANK_NONE = 0,      /* unlabelled: acquiring it throws in the checking build */
    LOCKRANK_TRACECTL,      /* tracectl: execution trace start and stop (trace.c) */
    LOCKRANK_WORLDSEMA,     /* sched.worldsema: one stop-the-world at a time (sched.c) */
    LOCKRANK_CPUPROF,       /* proflock: CPU profile start and stop (cpuprof.c) */
    LOCKRANK_HCHAN,         /* weft_chan.lock (chan.c, select.c) */
    LOCKRANK_POLLDESC,      /* polldesc.lock: one fd's waiters and edges (netpoll.c) */
    LOCKRANK_NOTIFYLIST,    /* weft_cond's waiter list (sync.c) */
    LOCKRANK_SEMAROOT,      /* a semaphore bucket (sema.c) */
    LOCKRANK_SCHED,         /* sched.lock */
    LOCKRANK_SUDOG,         /* sched.sudoglock: the central free sudogs (park.c) */
    LOCKRANK_TIMERS,        /* P.timerlock: a P's timer heap (timer.c) */
    LOCKRANK_GFREE,         /* sched.gflock: the global free Gs (g.c) */
    LOCKRANK_STACK,         /* stacklock: the stack slabs and free list (stack.c) */
    LOCKRANK_ALLG,          /* allglock: prepending to allgs (g.c) */
    LOCKRANK_POLLTABLE,     /* pdlock: growing the pollDesc table (netpoll.c) */
    LOCKRANK_SYMTAB,        /* symlock: the symbolizer (symtab.c) */
    LOCKRANK_DEBUGSRV,      /* srvlock: the debug servers and their connections
                             * (debugserver.c); nothing is taken under it */
    LOCKRANK_CAPTURE,       /* caplock: capturing another M's stack (os/linux.c); sysmon
                             * takes it with nothing held, crash output with a trylock */
    LOCKRANK_LOCKCYCLE,     /* cyclelock: one lock-cycle report at a time (lockcycle.c) */
    LOCKRANK_LOCKWAIT,      /* a bucket of the weft_mutex waiters lockcycle.c knows of */
    LOCKRANK_TRACEBUF,      /* tracelock: the trace's global buffer, full list and tables
                             * (diag/tracebuf.c); events are emitted under any lock */
    LOCKRANK_TEST,          /* the runtime's own tests' locks (tests/) */
    LOCKRANK_COUNT
} weft__lockrank;

#define LOCKRANK_BIT(r) ((uint32_t)1 << LOCKRANK_##r)
_Static_assert(LOCKRANK_COUNT <= 32, "a rank's predecessors are a uint32_t bit set");

/* The partial order: for each rank, the ranks that may be held directly
 * when it is acquired.  A rank missing here is taken with no other lock
 * held (crash output's trylocks aside).  Every nesting the test suite
 * performs is listed; the others come from reading the code. */
static inline uint32_t weft__lockrank_after(int rank)
{
    static const uint32_t after[LOCKRANK_COUNT] = {
        [LOCKRANK_HCHAN] =
            LOCKRANK_BIT(HCHAN),            /* select: every case's channel, by address */
        [LOCKRANK_SUDOG] =
            LOCKRANK_BIT(HCHAN) |           /* a wait's sudog, taken under the object's */
            LOCKRANK_BIT(POLLDESC) |        /* lock: the P's cache refills from the */
            LOCKRANK_BIT(NOTIFYLIST) |      /* central list (park.h, weft__acquiresudog) */
            LOCKRANK_BIT(SCHED),            /* procresize: pdestroy's sudogcache_flush */
        [LOCKRANK_SCHED] =
            LOCKRANK_BIT(WORLDSEMA) |       /* stop/start the world, procresize */
            LOCKRANK_BIT(CPUPROF) |         /* profile start/stop arm the Ms' timers */
            LOCKRANK_BIT(HCHAN) |           /* a timed wait's commit (park.c) arms the */
            LOCKRANK_BIT(POLLDESC) |        /* waiter's timer under the object's lock: */
            LOCKRANK_BIT(NOTIFYLIST) |      /* addtimer's wakep may take sched.lock */
            LOCKRANK_BIT(SEMAROOT),
        [LOCKRANK_TIMERS] =
            LOCKRANK_BIT(SCHED) |           /* procresize: movetimers */
            LOCKRANK_BIT(TIMERS) |          /* movetimers: both heaps, by address */
            LOCKRANK_BIT(HCHAN) |           /* a timed wait's commit (park.c): addtimer */
            LOCKRANK_BIT(POLLDESC) |        /* under the object's lock */
            LOCKRANK_BIT(NOTIFYLIST) |
            LOCKRANK_BIT(SEMAROOT),
        [LOCKRANK_GFREE] =
            LOCKRANK_BIT(SCHED),            /* procresize: pdestroy's gfpurge */
        [LOCKRANK_STACK] =
            LOCKRANK_BIT(SCHED) |           /* procresize: pdestroy's stackcache_flush */
            LOCKRANK_BIT(HCHAN) |           /* a goroutine's first run (weft__gstart) */
            LOCKRANK_BIT(POLLDESC) |        /* may refill its P's stack caches on the */
            LOCKRANK_BIT(NOTIFYLIST) |      /* thread of a G that parked holding its */
            LOCKRANK_BIT(SEMAROOT),         /* object's lock: the direct switch */
        [LOCKRANK_WORLDSEMA] =
            LOCKRANK_BIT(TRACECTL),         /* trace start and stop stop the world */
        [LOCKRANK_SYMTAB] =
            LOCKRANK_BIT(WORLDSEMA) |       /* weft_stack(all): tracebacks, world stopped */
            LOCKRANK_BIT(CPUPROF) |         /* profile stop: the pprof writer symbolizes */
            LOCKRANK_BIT(TRACECTL),         /* trace stop symbolizes the stacks */
        [LOCKRANK_LOCKWAIT] =
            LOCKRANK_BIT(LOCKCYCLE),        /* a report re-reads each member's wait */
        [LOCKRANK_TRACEBUF] =
            (LOCKRANK_BIT(TRACEBUF) - 2),   /* every lower rank: the scheduler's trace hooks
                                             * emit under whatever lock they run */
    };
    return rank > 0 && rank < LOCKRANK_COUNT ? after[rank] : 0;
}

static inline const char *weft__lockrank_name(int rank)
{
    static const char *const names[LOCKRANK_COUNT] = {
        [LOCKRANK_NONE] = "no rank",
        [LOCKRANK_TRACECTL] = "tracectl",
        [LOCKRANK_WORLDSEMA] = "sched.worldsema",
        [LOCKRANK_CPUPROF] = "proflock",
        [LOCKRANK_HCHAN] = "chan",
        [LOCKRANK_POLLDESC] = "pollDesc",
        [LOCKRANK_NOTIFYLIST] = "cond notifyList",
        [LOCKRANK_SEMAROOT] = "semaRoot",
        [LOCKRANK_SUDOG] = "sched.sudoglock",
        [LOCKRANK_SCHED] = "sched.lock",
        [LOCKRANK_TIMERS] = "timers",
        [LOCKRANK_GFREE] = "sched.gflock",
        [LOCKRANK_STACK] = "stacklock",
        [LOCKRANK_ALLG] = "allglock",
        [LOCKRANK_POLLTABLE] = "pdlock",
        [LOCKRANK_SYMTAB] = "symlock",
        [LOCKRANK_DEBUGSRV] = "srvlock",
        [LOCKRANK_CAPTURE] = "caplock",
        [LOCKRANK_LOCKCYCLE] = "cyclelock",
        [LOCKRANK_LOCKWAIT] = "lockwait",
        [LOCKRANK_TRACEBUF] = "tracelock",
        [LOCKRANK_TEST] = "test",
    };
    return rank >= 0 && rank < LOCKRANK_COUNT ? names[rank] : "bad rank";
}

#endif /* WEFT_LOCKRANK_H */
