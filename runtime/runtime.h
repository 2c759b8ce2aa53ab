/*
 * runtime.h — weft's internal types: G, M, P and the global scheduler.
 *
 * Field names follow Go's runtime2.go where the meaning matches, so that
 * proc.go stays a usable cross-reference.  Every shared field says what
 * protects it:
 *
 *   sched.lock   held while reading or writing it
 *   atomic       accessed only through AO_* (see the comment at each use)
 *   owner        only the M that currently owns the P / runs the G touches it
 *   STW          written only while the world is stopped
 *   const        set once before the object is published
 *
 * The scheduler's design is explained at the top of sched.c.
 */
#ifndef WEFT_RUNTIME_H
#define WEFT_RUNTIME_H

#include <atomic_ops.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "weft.h"
#include "arch/switch.h"
#include "lock.h"
#include "diag/schedview.h"
#include "diag/trace.h"

#define WEFT_HIDDEN __attribute__((visibility("hidden")))
/* The debug builds (./dev stress, ./dev lockrank) also check invariants
 * too costly for a hot path of the release build. */
#if defined(WEFT_STRESS) || defined(WEFT_LOCKRANK)
#define WEFT_DEBUG 1
#else
#define WEFT_DEBUG 0
#endif
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define CACHELINE   64
/* Stack walks read other frames' memory, redzones included: not a bug to
 * AddressSanitizer's taste, so they are not instrumented. */
#define WEFT_NO_ASAN __attribute__((no_sanitize_address))

/* Nested user regions a goroutine remembers the names of (trace.c). */
#define TRACE_REGIONS 4

typedef struct G G;
typedef struct M M;
typedef struct P P;

/* ---- G: a goroutine ----------------------------------------------------- */

/* G status, Go's values (runtime2.go).  Who may change it:
 *   Gidle      -> Grunnable   by newproc, before the G is published
 *   Grunnable  -> Grunning    by the M that took it off a run queue
 *   Grunning   -> Grunnable   by itself (yield, preemption)
 *   Grunning   -> Gwaiting    by itself (park); only the waker moves it on
 *   Gwaiting   -> Grunnable   by the waker (ready), after the park committed
 *   Grunning  <-> Gsyscall    by itself (syscall_enter / syscall_exit)
 *   Grunning   -> Gdead       by itself (exit); reused by gfget
 */
enum {
    Gidle = 0,
    Grunnable = 1,
    Grunning = 2,
    Gsyscall = 3,
    Gwaiting = 4,
    Gdead = 6,
};

/* Wait reasons: Go's strings (runtime2.go waitReasonStrings), in our own
 * enum order.  weft__waitreason_str maps them. */
typedef enum {
    waitReasonZero = 0,
    waitReasonIOWait,
    waitReasonSemacquire,
    waitReasonSleep,
    waitReasonChanReceiveNilChan,
    waitReasonChanSendNilChan,
    waitReasonSelectNoCases,
    waitReasonSelect,
    waitReasonChanReceive,
    waitReasonChanSend,
    waitReasonSyncCondWait,
    waitReasonSyncMutexLock,
    waitReasonSyncRWMutexRLock,
    waitReasonSyncRWMutexLock,
    waitReasonSyncWaitGroupWait,
    waitReasonPreempted,
    waitReasonStoppingTheWorld,
    waitReasonLockedThread,     /* weft: a locked G's M waiting for its G */
    waitReasonCount
} weft__waitreason;
extern const char *const weft__waitreason_names[waitReasonCount];
const char *weft__waitreason_str(int r);
const char *weft__waitreason_call(int r);

/* A goroutine stack: [lo, hi) usable, [guardlo, lo) the guard region. */
typedef struct weft__stack {
    uintptr_t lo, hi;
    uintptr_t guardlo;
    size_t size;            /* hi - lo */
    struct weft__stack *next;  /* free lists */
    uint8_t kind;           /* STACK_SLAB (default size, from a slab) or STACK_OWN (own mmap) */
    bool hot;               /* whoever holds it: a goroutine has run on it (stack.c) */
    unsigned vgid;          /* valgrind's id for it (0 when not under valgrind) */
    /* Compaction (stack.c): the live part of a parked goroutine's stack,
     * copied out while its pages are given back. */
    AO_t cstate;            /* atomic: STACK_RESIDENT, _PENDING, _COMPACTING, _COMPACTED or
                             * _RESTORING in its low bits (STACK_STATE), above them the
                             * number of the park it belongs to (stack.c) */
    uintptr_t savedsp;      /* the compactor, then const until its goroutine runs: the
                             * saved SP (the goroutine's sp is NULL meanwhile); 0: none */
    void *copy;             /* the compactor, then const until its goroutine runs:
                             * [savedsp, hi) while compacted */
} weft__stack;

/* weft__stack.cstate (stack.c explains the protocol). */
enum { STACK_RESIDENT = 0, STACK_PENDING = 1, STACK_COMPACTING = 2, STACK_COMPACTED = 3,
       STACK_RESTORING = 4 };
#define STACK_STATE(w) ((int)((w) & 7))
/* The word w with its state replaced by st (its park's number kept). */
#define STACK_WITHSTATE(w, st) (((w) & ~(AO_t)7) | (AO_t)(st))

/* ---- timers (timer.c) ------------------------------------------------------
 * A timer calls f(gp, arg) at or after `when`, from whichever M runs the
 * timers of the P it sits on (that P's owner in findrunnable, a thief, or an
 * idle M that slept until it).  f runs on g0 or a borrowed context with the
 * scheduler's locks released; it must be short and must not block (it
 * usually readies gp). */
typedef struct weft__timer {
    int64_t when;           /* timerlock of pp */
    void (*f)(G *gp, void *arg); /* const while queued */
    G *gp;                  /* const while queued */
    void *arg;              /* const while queued */
    P *pp;                  /* the P whose heap holds it; NULL when not queued */
    int32_t idx;            /* timerlock: index in the heap, -1 when not queued */
} weft__timer;

/* ---- waiting: waiters, sudogs and wait queues (park.c) --------------------
 * Every blocking primitive waits the same way; park.c explains the protocol.
 *
 *   weft__waiter   who waits: a goroutine (embedded in its G) or a plain
 *                  thread (on its stack for the length of the call)
 *   weft__sudog    one queued wait (Go's sudog): taken from a per-P cache,
 *                  linked on the wait queue of the object waited on, and on
 *                  its waiter's `waiting` list (a select has one per case)
 *   weft__waitq    a FIFO of sudogs under the lock of the object that owns it
 */
typedef struct weft__sudog weft__sudog;

typedef struct weft__waitq {
    weft__sudog *first;     /* the object's lock to write (AO_store); sema.c reads it racily */
    weft__sudog *last;      /* the object's lock */
} weft__waitq;

typedef struct weft__waiter {
    G *g;                   /* const: the goroutine; NULL for a plain thread */
    weft__sudog *waiting;   /* owner: its queued sudogs, linked by waitlink (NULL: none) */
    weft__sudog *param;     /* written by the waker before the wake-up: the sudog
                             * that fired; NULL after a timeout (Go's gp.param) */
    AO_t selectdone;        /* atomic, select: 0 -> 1 by whoever wins the right to
                             * end the wait (a channel operation or the timeout) */
    weft__timer *timer;     /* owner: a goroutine's timeouts, allocated by its first
                             * timed wait and kept; armed only once it has parked */
    weft__sudog *spare;     /* owner: the sudog of its last wait, kept for the next
                             * (a goroutine's; back to the P's cache when it exits) */
} weft__waiter;

/* A plain thread's waiter, on its stack for the length of one wait. */
typedef struct weft__thread {
    weft__waiter w;         /* w.g == NULL */
    weft__note note;        /* sleeps here, woken once */
} weft__thread;

struct weft__sudog {
    weft__waiter *w;        /* who waits */
    weft__sudog *next, *prev; /* *lock: links in *q */
    weft__waitq *q;         /* const while queued: the queue it is on; cleared when
                             * a timeout or a lost select race takes it off */
    weft__mutex *lock;      /* const while queued: the lock that protects *q */
    void *obj;              /* const while queued: what it waits on (a weft_chan *,
                             * a semaphore's address, a weft_cond *, a pollDesc) */
    void *elem;             /* channels: the value to send / where to receive (may be NULL) */
    weft__sudog *waitlink;  /* owner: next on w->waiting */
    union {
        uint32_t ticket;    /* const while queued: weft_cond's notify ticket */
        uint32_t casei;     /* const while queued: select's case index */
    };
    uint8_t reason;         /* const while queued: the weft__waitreason it waits with */
    bool isselect;          /* const while queued: a waker must first win w->selectdone */
    bool success;           /* written by the waker: a value moved or the fd is ready
                             * (false: the channel or fd was closed) */
};

struct G {
    void *sp;               /* owner: saved SP while switched out (arch/switch.h); NULL
                             * until it first runs (weft__gstart builds its first frame) */
    weft__stack *stack;     /* owner: taken by newproc, maybe traded for a hot one when it
                             * first runs, given back when it dies; NULL for g0 and dead Gs */
    uintptr_t stacklo, stackhi; /* const from its first run until it dies: bounds of its
                             * stack (0 before), also for g0 (the thread's stack) */
    int64_t goid;           /* const while alive; 0 for g0 */
    AO_t atomicstatus;      /* atomic: G status (enum above) */
    uint8_t waitreason;     /* owner/waker: why it is Gwaiting; read racily by dumps */
    bool ismain;            /* const: goroutine 1 of weft_main */
    /* weft__gopark tests both of these at once (parkslow): a park that
     * goes the common way pays for the compaction no more than the check
     * for g0 it always made. */
    union {
        struct {
            bool issystem;  /* const: g0 */
            bool compact;   /* const while alive: its stack may be compacted when it parks
                             * (weft_attr.compact, SCHEDDEBUG=compactstacks=1; stack.c) */
        };
        uint16_t parkslow;  /* nonzero: either is set */
    };
    bool parking;           /* owner: inside weft__park (debug builds: checked by weft__gopark) */
    AO_t preempt;           /* atomic: sysmon asks it to yield at its next scheduling point */
    M *m;                   /* owner: the M running it, NULL when not running */
    M *lockedm;             /* owner: the M it is locked to (weft_lock_thread) */
    G *schedlink;           /* run queue / free list link: whoever holds the queue */
    void (*fn)(void *);     /* const: start function */
    void *arg;              /* const: its argument */
    uintptr_t gopc;         /* const: PC of the weft_go call that created it */
    int64_t parentgoid;     /* const: goid of the creator, 0 if a plain thread */
    const char *name;       /* const: optional name from weft_attr */
    int64_t waitsince;      /* owner: weft__coarsetime when it started waiting (0: unknown) */
    uintptr_t syscallpc;    /* owner: in Gsyscall, the return address into weft_syscall_enter's caller */
    uintptr_t syscallfp;    /* owner: ... and that caller's frame pointer (tracebacks start there) */
    uintptr_t syscallsp;    /* owner: ... and its stack pointer (DWARF unwinding needs it) */
    void **locals;          /* owner: per-G storage (local.c), lazily allocated */
    G *allglink;            /* const after publication: next in allgs */
    uint32_t lockedext;     /* owner: weft_lock_thread nesting depth */
    void *asanfake;         /* owner: AddressSanitizer's fake-stack handle across a switch */
    void *racectx;          /* owner: its ThreadSanitizer fiber (g0: its thread's); NULL without TSan (race.c) */
    AO_t profgen;           /* atomic: the goroutine profile generation whose record of
                             * its stack is taken, | 1 while someone takes it (g.c) */
    weft__waiter w;         /* its waits (park.c); w.g == this G */
    /* SCHEDDEBUG=tracebackancestors=N (g.c): its creators, written by
     * newproc before the G is published.  Room for N, allocated by the
     * first creation with the setting on and kept with the G, so a racy
     * reader (a crash dump, blockwarn) never reads freed memory. */
    weft__ancestor *ancestors; /* newproc, then const while alive */
    int32_t nancestors;     /* newproc, then const while alive: entries in use */
    int64_t blockwarned;    /* sysmon: waitsince of the wait blockwarn last reported */
    /* The execution tracer's view of it (trace.c), written by whoever
     * owns its current transition (the M running it, its waker, the
     * tracer's start with the world stopped). */
    uint64_t traceseq;      /* the trace parser's sequence number for its next event */
    int64_t tracets;        /* the stamp of its last event (weft__trace_emit) */
    uint32_t tracegen;      /* the trace (weft__trace_gen) the two fields belong to */
    uint8_t tracest;        /* its state as that trace shows it (trace.c) */
    uint8_t ntraceregion;   /* owner: user regions open (weft_trace_region_begin) */
    const char *traceregion[TRACE_REGIONS]; /* owner: the innermost ones' names */
};

/* A list of Gs linked through schedlink (Go's gList), with its length. */
typedef struct weft__glist {
    G *head, *tail;
    int32_t n;
} weft__glist;

/* ---- M: an OS thread ------------------------------------------------------ */

/* What the context we switch to must do for the one we left (the "unlock
 * after the switch" pattern, Go's gopark(unlockf) / mcall(fn)).  It runs on
 * the new context — another G or g0 — once the old G is safely off its
 * stack, so nobody can resume a G whose registers are still being saved. */
typedef enum {
    AFTER_NONE = 0,
    AFTER_RUNQPUT,      /* yield: put the old G at the tail of this P's runq */
    AFTER_GLOBRUNQPUT,  /* preempted yield: put it on the global runq */
    AFTER_PARK,         /* block: call unlockf(g, arg); false means "resume it" */
    AFTER_PARK_COMPACT, /* the same for a goroutine whose stack may be compacted (stack.c) */
    AFTER_EXIT,         /* the old G is dead: free it (gfput) */
    AFTER_SYSCALL_EXIT, /* syscall_exit found no P: queue it globally, this M stops */
} weft__after;

/* An unlock callback: releases what a parking goroutine held (the lock of
 * the object it queued on); false means "do not park after all, resume
 * it".  gp is the goroutine that parked, NULL when a waker calls it to
 * release its own locks (chan.h's data movement). */
typedef bool (*weft__unlockf)(G *gp, void *arg);

/* Stacks an M compacts at once (stack.c): one release of their pages. */
#define M_COMPACT_BATCH 64

/* Frames kept of the code that made weft create an M (Go keeps 32). */
#define M_CREATESTACK 32

struct M {
    int64_t id;             /* const */
    G *g0;                  /* const: the scheduler context on the thread's own stack */
    G *curg;                /* owner: the user G running on it, NULL on g0 */
    P *p;                   /* owner: attached P, NULL when idle or in a syscall */
    P *nextp;               /* the P handed to it when it is woken: written by whoever
                             * took it off the idle list (startm, startlockedm) or
                             * created it, before the notewakeup that publishes it;
                             * read by the M itself once it wakes */
    P *oldp;                /* owner: the P it held before a syscall */
    bool spinning;          /* owner: looking for work (counted in sched.nmspinning) */
    AO_t blocked;           /* atomic: parked on its note (for dumps) */
    weft__note park;        /* sleep here when idle */
    M *schedlink;           /* sched.lock: idle list */
    M *alllink;             /* const after publication: allm list (newest first) */
    G *lockedg;             /* owner: G locked to this M */
    G *nextg;               /* owner: G picked by the fast path, handed to schedule() */
    pid_t procid;           /* const: kernel thread id */
    pthread_t thread;       /* const */
    bool ism0;              /* const: the thread that called weft_main */
    bool exited;            /* sched.lock: thread has finished */
    uint32_t fastrand;      /* owner: xorshift state */
    /* pending action for the next context (see weft__after) */
    weft__after after;      /* owner */
    G *afterg;              /* owner */
    weft__unlockf afterf;   /* owner */
    void *afterarg;         /* owner */
    struct weft__stack *cbatch[M_COMPACT_BATCH]; /* owner: stacks of goroutines it parked,
                             * to compact together (stack.c) ... */
    AO_t cbatchw[M_COMPACT_BATCH]; /* owner: ... and the state word of each one's park */
    int64_t cbatcht[M_COMPACT_BATCH]; /* owner: ... and when each one parked (nanotime) */
    int32_t ncbatch;        /* owner: how many, oldest first */
    void *altstack;         /* const: sigaltstack memory */
    size_t altstacksize;    /* const */
    int ncreatestack;       /* const: frames in createstack */
    uintptr_t createstack[M_CREATESTACK]; /* const: who created this M (Go's mp.createstack) */
    /* Stack capture by signal (os/linux.c weft__sigcapture): the requester
     * writes capreq = 1 and signals the thread; its handler fills cappcs
     * and stores capreq = 2. */
    AO_t capreq;            /* atomic */
    int32_t capn;           /* written by the handler before capreq = 2 */
    int64_t capgoid;        /* ditto: the goroutine it interrupted, 0 if none */
    uintptr_t cappcs[64];   /* ditto */
    weft__mdiag diag;       /* diag/'s own (diag/schedview.h): CPU profiler, dump cache */
};

/* ---- P: the right to run Go code ------------------------------------------ */

enum {
    Pidle = 0,
    Prunning = 1,
    Psyscall = 2,
    Pgcstop = 3,
    Pdead = 4,
};

#define RUNQ_SIZE 256
#define P_GFREE_MAX 64
#define P_STACK_CACHE 32
#define P_STACK_COLD RUNQ_SIZE  /* a spawn loop fills the run queue with cold stacks */
#define P_SUDOG_CACHE 64

struct P {
    /* Run queue: a single-producer (the owner) multi-consumer ring.
     * runqhead: consumers CAS it; runqtail: only the owner stores it. */
    AO_t runqhead;          /* atomic */
    AO_t runqtail;          /* atomic; written by owner only */
    AO_t runnext;           /* atomic: G* to run next, ahead of runq */
    AO_t runq[RUNQ_SIZE];   /* atomic slots (G*) */

    int32_t id;             /* const */
    AO_t status;            /* atomic: P status */
    P *link;                /* sched.lock: idle P list */
    M *m;                   /* owner/sched.lock: M that owns it */
    uint32_t schedtick;     /* owner: incremented on every scheduler call that takes a new time slice */
    AO_t syscalltick;       /* atomic: incremented at every syscall enter/exit */
    uint32_t sysmontick_sched;   /* sysmon: schedtick it saw last */
    uint32_t sysmontick_syscall; /* sysmon: syscalltick it saw last */
    int64_t sysmonwhen;     /* sysmon: when it saw it change */
    uint32_t switchtick;    /* owner: incremented at every switch to a G (schedtick is per time slice) */
    uint32_t hogtick;       /* sysmon: switchtick it saw last (hogwarn) */
    uint32_t hogreported;   /* sysmon: switchtick + 1 of the run last reported */
    int64_t hogsince;       /* sysmon: when it saw switchtick change */

    int64_t goidcache, goidcacheend; /* owner: goids reserved for this P */
    AO_t ngoroutines;       /* atomic (written by owner, read by anyone): Gs created minus exited here */

    G *gfree;               /* owner: dead Gs with default stacks, for reuse */
    int32_t gfreecnt;       /* owner */
    weft__stack *stackcache[P_STACK_CACHE]; /* owner: free hot default stacks (stack.c) */
    int32_t nstackcache;    /* owner */
    weft__stack *stackcold[P_STACK_COLD]; /* owner: free cold ones */
    int32_t nstackcold;     /* owner */
    weft__sudog *sudogcache[P_SUDOG_CACHE]; /* owner: free sudogs (park.c) */
    int32_t nsudogcache;    /* owner */

    /* Timers (timer.c): a binary min-heap by `when`, under timerlock. */
    weft__mutex timerlock;
    struct weft__timer **timers;   /* timerlock */
    int32_t ntimers, captimers;    /* timerlock */
    AO_t timer0when;        /* atomic: when of the earliest timer, 0 if none */
    uint32_t timercheck;    /* owner: counts fast-path switches between clock reads */

    /* The execution tracer (trace.c).  "owner" includes whoever took the
     * P from a goroutine in a syscall (sysmon, the stopper) and the
     * stopper while the world is stopped. */
    struct weft__tracebuf *tracebuf; /* owner: its events not yet handed to the writer */
    uint32_t tracegen;      /* owner: the trace tracebuf and tracerunning belong to */
    bool tracerunning;      /* owner: that trace shows it started (ProcStart) */
} __attribute__((aligned(CACHELINE)));

/* ---- the scheduler ------------------------------------------------------ */

/* The fields are grouped by who writes them, a cache line (or more) per
 * group, so that the words every switch reads (gcwaiting, exiting) and
 * the ones every wake-up reads (npidle, nmspinning) do not share a line
 * with a contended lock or a counter another CPU bumps: a 32-byte shift of
 * this struct once cost spawning at 2 Ps half its speed. */
#define SCHED_GROUP _Alignas(CACHELINE)
struct weft__sched {
    /* read on every switch and wake-up, written rarely */
    SCHED_GROUP AO_t gcwaiting; /* atomic: a stop-the-world is in progress */
    AO_t exiting;           /* atomic: main returned, every M is winding down */
    AO_t gprofiling;        /* atomic: a goroutine profile is being taken: a G it has
                             * not recorded yet is recorded before it is readied or
                             * runs (g.c) */
    AO_t booted;            /* atomic: 0 none, 1 booting, 2 running */
    AO_t foreign;           /* atomic: a plain thread has used weft (spawned, or
                             * blocked on a weft primitive): deadlock detection
                             * then cannot know who might still wake a G */
    bool lazy;              /* const: started by weft_go from a plain thread */
    M *m0;                  /* const */
    int64_t starttime;      /* const: nanotime at boot */
    pthread_t sysmon;       /* const */
    bool sysmon_started;    /* const */

    /* sched.lock and what it protects */
    SCHED_GROUP weft__mutex lock;
    M *midle;               /* sched.lock: idle Ms */
    int32_t nmidle;         /* sched.lock */
    int32_t nmidlelocked;   /* sched.lock: locked Ms waiting for their G */
    int64_t mnext;          /* sched.lock: next M id; Ms ever created */
    int32_t nmexited;       /* sched.lock */
    M *allm;                /* sched.lock to write; read racily (newest first) */
    P *pidle;               /* sched.lock: idle Ps */
    G *runqhead, *runqtail; /* sched.lock: the global run queue */
    int32_t stopwait;       /* sched.lock: Ps still to stop */
    bool mainexited;        /* sched.lock: main ended with weft_exit */
    int64_t ndeadwalks;     /* sched.lock: checkdead's walks over every G (tests) */
    bool sysmonwait;        /* sched.lock: sysmon sleeps on sysmonnote until a P is
                             * taken off the idle list (weft__pidleget wakes it) */
    int64_t nsysmonwait;    /* sched.lock: its sleeps there (tests) */

    /* the spinning protocol's counters, and the global queue's length */
    SCHED_GROUP AO_t npidle; /* atomic: read lock-free by wakep; written under sched.lock */
    AO_t nmspinning;        /* atomic */
    AO_t needspinning;      /* atomic: 0/1, see findrunnable */
    AO_t runqsize;          /* sched.lock to write; read racily as a hint */

    /* dead Gs with default stacks (and stacks) shared by all Ps */
    SCHED_GROUP weft__mutex gflock;
    G *gfree;               /* gflock */
    int32_t ngfree;         /* gflock */

    /* free sudogs shared by all Ps, and the blocks they were carved from */
    SCHED_GROUP weft__mutex sudoglock;
    weft__sudog *sudogfree; /* sudoglock: linked by next */
    void *sudogblocks;      /* sudoglock: every block allocated, freed at shutdown */

    /* goroutine accounting */
    SCHED_GROUP AO_t goidgen; /* atomic: last goid handed out */
    AO_t ngoroutines_base;  /* atomic: Gs created minus exited outside any P, or on dead Ps */

    /* sleeping: stop the world, shutdown, sysmon */
    SCHED_GROUP weft__mutex worldsema; /* serializes stop-the-world requests */
    weft__note stopnote;    /* the stopper sleeps here */
    weft__note exitnote;    /* m0 sleeps here until the other Ms are gone */
    weft__note sysmonnote;  /* wakes sysmon early (shutdown), or from sysmonwait */
};

extern struct weft__sched weft__sched;
#define sched weft__sched

/* All Ps.  allp[0..gomaxprocs) are in use.  The array itself never moves
 * and its entries are never freed while the runtime runs (p.c): a resize
 * only creates Ps or marks them Pdead, with the world stopped.  So anyone
 * may read allp[i] for i < gomaxprocs (load-acquire) without a lock —
 * sysmon, a spinning M's recheck, the dumps — and at worst see a stale P. */
extern P **weft__allp;                 /* STW to write */
extern AO_t weft__gomaxprocs;          /* atomic: len(allp); store-release by procresize */

/* All Gs ever created, never freed until shutdown (Go's allgs).
 * Prepending is under allglock; readers walk from the head racily. */
extern AO_t weft__allg;                /* atomic: G* head */

/* ---- settings read once at boot (env.c) --------------------------------- */
extern size_t weft__stack_default;     /* WEFT_STACK or WEFT_STACK_DEFAULT */
int  weft__env_maxprocs(void);         /* WEFT_MAXPROCS or CPUs in our affinity mask */
void weft__env_init(void);

/* ---- current G / M --------------------------------------------------------
 * The current G lives in a thread-local set at every switch.  It is read
 * through a non-inlined accessor with a compiler barrier so that the
 * compiler cannot cache it (or the TLS block's address) across a call after
 * which this code may be running on another thread: a goroutine migrates
 * between Ms at every scheduling point, so no thread-local may be cached
 * across one (docs/design.md, "Context switches"). */
G *weft__getg(void);
void weft__setg(G *gp);
static inline M *weft__getm(void) { G *g = weft__getg(); return g ? g->m : NULL; }

/* A plain thread uses a sync primitive or a channel, even without blocking
 * (it may hold a mutex every goroutine is about to wait for, or wake a
 * goroutine later): deadlock detection must stand down (see
 * checkdead).  Returns the current G. */
static inline G *weft__note_plain_thread(void)
{
    G *gp = weft__getg();
    /* load first: keeps the flag's line shared once set; store: a one-way
     * flag, read with a load under sched.lock */
    if (unlikely(!gp || gp->issystem) && !AO_load(&sched.foreign))
        AO_store(&sched.foreign, 1);
    return gp;
}

/* A scheduling point for the weft calls that return without parking
 * (an I/O call that did not wait, a try operation, a select poll, a
 * trylock, weft_go): a goroutine that sysmon asked to yield (it has run
 * for 10 ms) yields here, so a loop of such calls (an accept loop retrying
 * on EMFILE) cannot starve the goroutines queued behind it.  Go gets this
 * from asynchronous preemption; weft must be asked.  One TLS read and one
 * load when nobody asks. */
void weft__preempted(G *gp);
static inline void weft__preemptpoint(void)
{
    G *gp = weft__getg();
    /* plain load: sysmon's store is a one-way request; seeing it late
     * only delays the yield to the next call */
    if (unlikely(gp != NULL && AO_load(&gp->preempt) != 0))
        weft__preempted(gp);
}

/* ---- sanitizer fiber annotations -------------------------------------------
 * AddressSanitizer must be told when we move to another stack, or it takes
 * the goroutine stacks for wild memory, warns at every noreturn call
 * ("ignoring __asan_handle_no_return") and reports false overflows once a
 * stack is reused.  A WEFT_SANITIZE build calls its interface directly.
 * The ordinary library finds it at run time instead: the interface is
 * referenced weakly, so in a program built with -fsanitize=address (gcc's
 * or clang's runtime, libweft static or shared) the symbols resolve and
 * weft__asan is set at boot; anywhere else they are NULL and each hook
 * costs a load and a branch that is never taken. */
__attribute__((weak)) void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                                          size_t size);
__attribute__((weak)) void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                                           size_t *size_old);
__attribute__((weak)) void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#if defined(__SANITIZE_ADDRESS__)
#define weft__asan true
#else
extern bool weft__asan;     /* const after weft__env_init: ASan is in the process */
#endif
static inline void weft__asan_start(G *from, G *to, bool fromdying)
{
    if (unlikely(weft__asan))
        __sanitizer_start_switch_fiber(fromdying ? NULL : &from->asanfake, (void *)to->stacklo,
                                       to->stackhi - to->stacklo);
}
static inline void weft__asan_finish(G *me)
{
    if (unlikely(weft__asan))
        __sanitizer_finish_switch_fiber(me ? me->asanfake : NULL, NULL, NULL);
}
/* A reused stack still carries the poisoned redzones of frames its last
 * goroutine never returned from (the switch that ended it). */
static inline void weft__asan_fresh_stack(uintptr_t lo, uintptr_t hi)
{
    if (unlikely(weft__asan))
        __asan_unpoison_memory_region((void *)lo, hi - lo);
}

/* ThreadSanitizer (race.h) is told every switch too: each goroutine is a
 * fiber, and g0 is its thread's own.  no_sync (1): the switch itself
 * orders nothing, or two goroutines that merely ran one after the other
 * on one M could never race.  The switch tests one flag for both
 * sanitizers, weft__sanswitch. */
__attribute__((weak)) void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#if defined(__SANITIZE_ADDRESS__)
#define weft__tsan false
#define weft__sanswitch true
#else
extern bool weft__tsan;       /* const after weft__env_init: TSan is in the process */
extern bool weft__sanswitch;  /* const after weft__env_init: weft__asan || weft__tsan */
#endif
extern WEFT_HIDDEN bool weft__vgswitch;    /* const after weft__env_init: under helgrind or DRD (race.c); hidden: read by weft__lock, a direct load */
void weft__race_vgswitch(G *from, G *to);
void weft__race_vgswitched(M *m);
void weft__race_vgready(G *gp);
/* A waker makes gp runnable: under helgrind or DRD, what it did so far
 * happens before gp resumes, on whichever thread (race.c). */
static inline void weft__vg_ready(G *gp)
{
    if (unlikely(weft__vgswitch))
        weft__race_vgready(gp);
}
/* On the context a switch lands in, under helgrind or DRD (race.c). */
static inline void weft__vg_switched(M *m)
{
    if (unlikely(weft__vgswitch))
        weft__race_vgswitched(m);
}
static inline void weft__tsan_switch(G *from, G *to)
{
    if (unlikely(weft__tsan))
        __tsan_switch_to_fiber(to->racectx, 1 /* __tsan_switch_to_fiber_no_sync */);
    else if (unlikely(weft__vgswitch))
        weft__race_vgswitch(from, to);
}

/* ---- lifecycle.c: boot and shutdown ------------------------------------------ */
int  weft__ensure_booted(void);      /* lazily, from weft_go: 0 or -errno */
void weft__main_exit(G *gp);         /* main returned: every M winds down */
int  weft__maxprocs_preboot(int n);  /* env.c: weft_maxprocs before boot */

/* ---- sched.c --------------------------------------------------------------- */
void weft__schedule(void);         /* m0: the scheduler loop; returns at exit */
void weft__mstart(M *m);             /* a new M's first code, on its g0 */
void weft__ready(G *gp, bool next);  /* Gwaiting -> Grunnable and queue it */
/* The raw park: only weft__park (park.c) calls it, which it checks. */
void weft__gopark(weft__unlockf f, void *arg, weft__waitreason r);
void weft__goexit0(G *gp) __attribute__((noreturn));
void weft__wakep(void);
/* Go's injectglist: makes the Gs of l runnable (they are Gwaiting), on the
 * global queue with an M started for each idle P they can use, the rest on
 * the caller's P if it holds one. */
void weft__injectglist(weft__glist *l);
void weft__handoffp(P *pp);
void weft__acquirep(M *m, P *pp);
void weft__pidleput(P *pp);          /* sched.lock */
P   *weft__pidleget(void);           /* sched.lock */
bool weft__stoptheworld(void);
void weft__starttheworld(void);
void weft__finish_switch(M *m);      /* run the pending after-switch action */
/* For tests (test_sched): called by weft_syscall_enter when it has seen a
 * stop the world under way and is about to take sched.lock to count its P,
 * so that a test can hold the thread there as a preemption would. */
extern void (*weft__syscall_gcwait_testhook)(void);

/* ---- runq.c ------------------------------------------------------------------ */
void weft__runqput(P *pp, G *gp, bool next);
G   *weft__runqget(P *pp, bool *inheritTime);
bool weft__runqempty(P *pp);
uint32_t weft__runqsize(P *pp);
G   *weft__runqsteal(P *pp, P *p2, bool stealRunNextG);
uint32_t weft__runqrescue(P *pp);     /* to the global queue; any thread */
void weft__globrunqput(G *gp);       /* sched.lock */
G   *weft__globrunqget(P *pp, int32_t max);               /* sched.lock */
void weft__runqdrain_to_global(P *pp);                    /* sched.lock, STW */

/* A random order of 0..count-1 (coprime stride), as Go's randomOrder. */
typedef struct { uint32_t count; uint32_t coprimes[64]; uint32_t ncoprimes; } weft__randorder;
void weft__randorder_reset(weft__randorder *o, uint32_t count);
uint32_t weft__fastrand(void);

/* ---- g.c ------------------------------------------------------------------------ */
/* flags: NEWPROC_MAIN (goroutine 1 of weft_main), NEWPROC_COMPACT (its stack
 * may be compacted when it parks: weft_attr.compact).  Bits of their own
 * beside g.c's spawn flags, which newproc tests with them in one word. */
enum { NEWPROC_MAIN = 1 << 4, NEWPROC_COMPACT = 1 << 5 };
G   *weft__newproc(void (*fn)(void *), void *arg, size_t stacksize, const char *name,
                   uintptr_t callerpc, unsigned flags, int *err);
void weft__gfput(P *pp, G *gp);
void weft__newproc_init(void);      /* env.c, once SCHEDDEBUG is parsed */
void weft__gfpurge(P *pp);
void weft__gentry(void) __attribute__((noreturn));
/* gp runs for the first time (its sp is NULL), on an M holding pp: gives
 * it its hot stack and its first frame (gogo calls it). */
void weft__gstart(P *pp, G *gp);
/* gp is about to be readied or to run (it is not running): if the
 * goroutine profile being taken has not recorded its stack yet and the
 * caller holds a P, record it now, before it changes.  Call only when
 * sched.gprofiling is set. */
void weft__gprof_execute(G *gp) __attribute__((cold, noinline));

/* ---- m.c ------------------------------------------------------------------------ */
M   *weft__allocm(void);
/* Set (on sysmon's thread) while it hands off a P whose goroutine is stuck
 * in a syscall: Ms created meanwhile record this stack as their cause. */
extern __thread uintptr_t weft__mcause_pcs[M_CREATESTACK];
extern __thread int weft__mcause_n;
int  weft__newm(P *pp, bool spinning);   /* -errno */
void weft__minit(M *m);                  /* on the new thread: TLS, sigaltstack */
void weft__mfree(M *m);

/* ---- p.c ------------------------------------------------------------------------ */
int  weft__procresize(int32_t nprocs);   /* STW; returns 0 or -ENOMEM */
P   *weft__pinit(int32_t id);
void weft__pfreeall(void);               /* shutdown */

/* ---- stack.c ------------------------------------------------------------------ */
int  weft__stackinit(void);
weft__stack *weft__stackalloc(P *pp, size_t size);   /* NULL: out of memory; cold if it can */
/* The stack a goroutine about to run for the first time on the cold s
 * runs on: a hot one from pp's cache or the global list, or s (stack.c;
 * weft__stackwarmup below tries pp's cache first). */
weft__stack *weft__stackwarm(P *pp, weft__stack *s);
void weft__stackfree(P *pp, weft__stack *s);
enum { STACK_SLAB = 1, STACK_OWN = 2 };     /* weft__stack.kind */

/* The three above on the spawn and exit paths, with their common case (a
 * stack from, or back to, the P's caches) inline: every goroutine's life
 * takes each once. */
static inline weft__stack *weft__stackget(P *pp, size_t size)
{
    if (likely(pp && pp->nstackcold > 0 && size == weft__stack_default))
        return pp->stackcold[--pp->nstackcold];
    return weft__stackalloc(pp, size);
}

static inline weft__stack *weft__stackwarmup(P *pp, weft__stack *s)
{
    if (s->hot)
        return s;
    if (likely(pp && pp->nstackcache > 0 && pp->nstackcold < P_STACK_COLD)) {
        weft__stack *h = pp->stackcache[--pp->nstackcache];
        pp->stackcold[pp->nstackcold++] = s;
        return h;
    }
    return weft__stackwarm(pp, s);
}

static inline void weft__stackput(P *pp, weft__stack *s)
{
    if (likely(pp && s->hot && s->kind == STACK_SLAB && pp->nstackcache < P_STACK_CACHE))
        pp->stackcache[pp->nstackcache++] = s;
    else
        weft__stackfree(pp, s);
}
void weft__stackcache_flush(P *pp);
void weft__stackfreeall(void);                       /* shutdown */
void weft__stackfree_own(weft__stack *s);            /* shutdown: a G's own-size stack */
bool weft__stack_guard_hit(G *gp, uintptr_t addr);
int  weft__stack_guards(int lift);   /* a debugger's gcore: lift (1) / restore (0) every guard */
/* Compaction of parked goroutines' stacks (stack.c).  In the park's
 * after-action, before its unlockf: begin (NULL: not compacted), then
 * either cancel (the park did not commit) or compact, after the unlockf,
 * which queues the stack in m's batch.  flush compacts the stacks of the
 * batch whose goroutines have been parked long enough (all: every one
 * still parked) and forgets those woken since; due says whether the
 * oldest has been parked long enough, when at what time it will be (the
 * scheduler loop flushes a due batch, an idle M wakes for it). */
weft__stack *weft__stackcompact_begin(G *gp, AO_t *w);
void weft__stackcompact_cancel(G *gp, weft__stack *s);
void weft__stackcompact(M *m, weft__stack *s, AO_t w);
void weft__stackcompact_flush(M *m, bool all);
bool weft__stackcompact_due(M *m);
int64_t weft__stackcompact_when(M *m);
/* A waker about to move a value into or out of the stack of gp (NULL: a
 * plain thread's wait), parked: if it may be compacted, takes the stack
 * back first (chan.c, with CHANHOOK_COMPACT). */
void weft__stack_pin(G *gp);
/* What a channel's direct hand-off does beyond the copy (chan.c), in one
 * byte so that the hand-off tests one: CHANHOOK_RACE, weft__race (set at
 * boot); CHANHOOK_COMPACT, once a goroutine that may be compacted has been
 * made (newproc sets it before the goroutine is published, so before any
 * waker can find it parked), never cleared. */
enum { CHANHOOK_RACE = 1, CHANHOOK_COMPACT = 2 };
extern unsigned char weft__chanhooks;
/* gogo's slow path for a goroutine that has run before but has no sp:
 * brings its compacted stack back and gives it its sp. */
void weft__stackrestore(G *gp);
/* The SIGSEGV handler: addr is in a compacted stack, which is now back
 * (retry the access).  Async-signal-safe. */
bool weft__stack_fault(uintptr_t addr);
/* Brings every compacted stack back, with its goroutine's sp (crash
 * dumps and core files, a debugger's gcore); async-signal-safe, takes no
 * lock, waits for nobody. */
void weft__stack_restoreall(void);
/* Where a reader finds the word at addr of gp's stack while it is
 * compacted (its copy); addr itself otherwise.  Racy, like every read of
 * another goroutine's stack. */
uintptr_t weft__stack_addr(G *gp, uintptr_t addr);
/* How many stacks have been compacted so far (test_compact). */
uint64_t weft__stack_ncompacted(void);

/* ---- timer.c ------------------------------------------------------------------ */
int  weft__addtimer(weft__timer *t);       /* on the current P; -ENOMEM */
/* true if it was still queued; false if it fired, in which case deltimer
 * first waits until its callback has returned. */
bool weft__deltimer(weft__timer *t);
void weft__runtimers(P *pp, int64_t now);  /* runs pp's expired timers */
int64_t weft__nexttimer(void);             /* earliest `when` over all Ps, 0 if none */
void weft__movetimers(P *from, P *to);     /* procresize, STW */
void weft__timersfree(P *pp);

/* ---- park.c: the one way to wait — see park.h ---------------------------------- */
void weft__sudogcache_flush(P *pp);         /* pdestroy */
void weft__sudogfreeall(void);              /* shutdown */
/* Shutdown (main returned, every M stopped): takes every goroutine's sudogs
 * off the queues of the objects they wait on, so that plain threads can go
 * on using those objects as if the waits had been cancelled. */
void weft__cancelwaits(void);

/* ---- netpoll.c ---------------------------------------------------------------- */
extern AO_t weft__netpoll_waiters;     /* atomic: Gs parked on fds */
extern AO_t weft__netpoll_lastpoll;    /* atomic: last poll time, 0 while an M blocks in epoll */
/* Polls; the Gs whose fds are ready, still Gwaiting, into *l (injectglist). */
void weft__netpoll(int64_t ns, weft__glist *l);
void weft__netpoll_break(void);
void weft__netpoll_fini(void);

/* ---- sysmon.c ------------------------------------------------------------------ */
/* nanotime as of sysmon's last tick (20 µs .. 10 ms old), or of boot until
 * its first, or of the end of its sleep in sysmonwait (whoever takes a P
 * stamps it): cheap enough for every park to stamp waitsince with. */
extern AO_t weft__coarsetime;
int  weft__sysmon_start(void);
void weft__sysmon_stop(void);
#define FORCE_PREEMPT_NS (10 * 1000 * 1000)

/* ---- trace.c: the execution tracer's hooks (diag/trace.h: weft__tracing) ---- */
void weft__trace_gocreate(P *pp, G *newg);     /* pp: the creator's, NULL without */
void weft__trace_gostart(P *pp, G *gp);
void weft__trace_leave(G *gp, int action);     /* switch_from_g: yield, park or exit */
void weft__trace_unblock(G *gp);               /* on the waker's P, or none */
void weft__trace_syscall(G *gp, P *pp);
void weft__trace_sysexit(G *gp, P *pp);        /* pp: the P it got back, NULL: none */
void weft__trace_procstart(P *pp, M *m);
void weft__trace_procstop(P *pp);
void weft__trace_procresize(M *m, int32_t nprocs);
void weft__trace_boot(void);                   /* schedinit: SCHEDDEBUG=tracefile */
void weft__trace_shutdown(void);               /* main returned: the trace ends */

/* ---- local.c ------------------------------------------------------------------- */
void weft__locals_destroy(G *gp);

/* ---- os/linux.c ------------------------------------------------------------- */
int64_t weft__nanotime(void);
/* The nanotime ns >= 0 from now, as Go's when(): a timeout too long to
 * reach saturates at INT64_MAX, which is never, instead of overflowing
 * into the past and firing at once. */
static inline int64_t weft__deadline(int64_t ns)
{
    int64_t now = weft__nanotime();
    return ns > INT64_MAX - now ? INT64_MAX : now + ns;
}
pid_t weft__gettid(void);
int  weft__futexwait(void *addr, uint32_t val, int64_t ns);
void weft__futexwake(void *addr, int32_t cnt);
int  weft__ncpu(void);
void weft__signals_init(void);
int  weft__sigaltstack_init(M *m);
void weft__sigaltstack_fini(M *m);
/* The stacks of signalled threads (weft__sigstack, weft__sigcapture) and
 * the CPU profiler's timers are declared in diag/schedview.h. */

/* panic.c: reports a fatal signal (or SIGQUIT) Go's way and exits 2. */
void weft__sigpanic(int sig, siginfo_t *si, void *uctx) __attribute__((noreturn));

/* ---- panic.c ---------------------------------------------------------------- */
/* A broken runtime invariant: prints "fatal error: <msg>" and exits 2. */
void weft__throw(const char *msg) __attribute__((noreturn));
/* A user error Go reports as fatal (deadlock, ...). */
void weft__fatal(const char *msg) __attribute__((noreturn));
/* Crash output in progress (first panic or fatal signal wins). */
extern AO_t weft__panicking;
/* Async-signal-safe formatted write to fd: %s %d %ld %lld %u %lu %x %lx %p %c %%. */
void weft__printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* WEFT_RUNTIME_H */
