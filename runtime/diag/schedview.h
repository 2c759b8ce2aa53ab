/*
 * schedview.h — everything diag/ knows of the scheduler, and everything the
 * scheduler calls in diag/.
 *
 * The diagnostics (tracebacks, dumps, profiles, the debug server) read
 * scheduler state only through this header: they see Gs, Ms and Ps as
 * opaque handles and read them as snapshots, never through runtime.h's
 * struct layouts (diag/ is compiled without runtime/ on its include path,
 * so it cannot include runtime.h).  The core implements the views in runtime/schedview.c,
 * and the stack capture by signal in os/linux.c.  The one exception is a
 * small block of per-M state diag/ owns (weft__mdiag, below), which the M
 * carries for reasons given there.
 *
 * How to read a snapshot.  Unless the world is stopped (weft__stoptheworld)
 * a snapshot is racy: each field is read once, as one word, so no field is
 * ever torn, but two fields may come from different instants.  G, M and P
 * structs are never freed while the runtime runs, so a handle stays valid
 * and a walk of the lists can never touch freed memory; a G may die and be
 * reused meanwhile (its snapshot then shows its new life).  A stack walk
 * from a stale snapshot is bounded by the stack bounds it carries, so it
 * can return wrong frames but never fault (diag/unwind.h).
 *
 * Unless said otherwise, a function here takes no lock, does not allocate
 * and is safe in a crash; "signal-safe" means async-signal-safe as well.
 */
#ifndef WEFT_DIAG_SCHEDVIEW_H
#define WEFT_DIAG_SCHEDVIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The runtime's locks and notes: diag/'s own locks are runtime locks too,
 * ranked in lockrank.h and checked with the others. */
#include "../lock.h"
#include "stacktab.h"

/* Opaque here: only the core (runtime.h) knows the layouts. */
typedef struct G G;
typedef struct M M;
typedef struct P P;

/* ---- the scheduler as a whole ---------------------------------------------- */

/* Whether the runtime has booted and not shut down (it may be exiting:
 * main returned).  Load-acquire: when true, the scheduler's structures are
 * initialised.  Signal-safe. */
bool weft__view_running(void);
/* Whether main has returned and every M is winding down.  Signal-safe. */
bool weft__view_exiting(void);
/* Crash output in progress (panic.c: a panic, a fatal signal or SIGQUIT
 * printing; set once, never cleared).  Load it with AO_load. */
extern AO_t weft__panicking;

/* The scheduler lock (sched.lock).  Holding it freezes the idle lists and
 * the counters it protects (idle Ps and Ms, the global run queue's length,
 * stopwait ...), the set of Ms, each M's exited flag and its diag block's
 * timer fields, and the array of Ps (gomaxprocs); it does not freeze
 * running Ps, Ms or Gs.  Hold it briefly: every M takes it to park or to
 * find work, so nothing slow goes under it (dumps format into memory and
 * write after; symbols are looked up before).  Not signal-safe; trylock
 * never waits, for crashes. */
void weft__view_lock(void);
bool weft__view_trylock(void);
void weft__view_unlock(void);

/* Go's runtime.schedtrace summary.  Fields marked "lock" are exact under
 * weft__view_lock, racy otherwise; the rest are always racy.
 * weft__view_sched is signal-safe. */
typedef struct weft__schedsnap {
    int64_t uptime;         /* ns since boot */
    uint32_t gomaxprocs;    /* lock: Ps in use */
    uint32_t idleprocs;     /* lock: Ps on the idle list */
    int64_t threads;        /* lock: Ms alive, plus sysmon */
    uint32_t spinning;      /* Ms looking for work */
    uint32_t needspinning;  /* 0/1: a spinner was wanted but no P was free */
    int32_t idlethreads;    /* lock: Ms parked on the idle list */
    uint32_t runqueue;      /* lock: Gs in the global run queue */
    bool gcwaiting;         /* a stop-the-world is in progress */
    int32_t nmidlelocked;   /* lock: locked Ms waiting for their G */
    int32_t stopwait;       /* lock: Ps still to stop */
    bool sysmon;            /* sysmon is running */
    bool sysmonwait;        /* lock: sysmon sleeps until a P is taken (every P idle) */
} weft__schedsnap;
void weft__view_sched(weft__schedsnap *out);

/* Stops every P (Go's stopTheWorld; the runtime must be running):
 * afterwards every goroutine but the caller sits in a saved context or a
 * syscall, so goroutine snapshots and their stacks hold still.  False if
 * the runtime started exiting meanwhile: the world then never restarts, so
 * do not call weft__starttheworld.  A goroutine yields while another stop
 * is in progress, a plain thread blocks; not for crashes. */
bool weft__stoptheworld(void);
void weft__starttheworld(void);

/* The coarse clock goroutines stamp waitsince with (sysmon's last tick,
 * 20 µs .. 10 ms old).  Signal-safe. */
int64_t weft__view_coarsetime(void);

/* The monotonic clock in ns (os/linux.c).  Signal-safe. */
int64_t weft__nanotime(void);

/* ---- Ps ---------------------------------------------------------------------------- */

typedef struct weft__pview {
    int32_t id;
    int status;             /* Go's numbers: 0 idle, 1 running, 2 syscall, 3 stopped (STW), 4 dead */
    uint32_t schedtick;     /* time slices started */
    uint32_t syscalltick;   /* syscall entries and exits */
    int64_t m;              /* id of the M holding it, -1 if none */
    uint32_t runqsize;      /* its local run queue (runnext not counted) */
    int32_t gfreecnt;       /* dead Gs cached for reuse */
    int32_t timerslen;      /* timers in its heap */
} weft__pview;

/* P number i, for i < gomaxprocs: false if there is no such P.  The array
 * of Ps is replaced only with the world stopped and under the view lock:
 * hold one of them, or accept a racy read in a crash.  Signal-safe. */
bool weft__view_p(uint32_t i, weft__pview *out);

/* ---- Ms ---------------------------------------------------------------------------- */

typedef struct weft__mview {
    M *m;                   /* the handle */
    int64_t id;
    int32_t procid;         /* kernel thread id; 0 before the thread started */
    bool exited;            /* lock: its thread has finished */
    int32_t p;              /* id of the P it holds, -1 */
    int64_t curg;           /* goid of the goroutine it runs, -1 (scheduler code, or idle) */
    int64_t lockedg;        /* goid of the goroutine locked to it, -1 */
    bool spinning;          /* looking for work */
    bool blocked;           /* parked on its note */
    /* Go's createstack: who made weft create this M (the caller of
     * weft_main for M0, the goroutine that spawned work, or the goroutine
     * whose syscall made sysmon hand its P away).  Return addresses,
     * constant for the M's life. */
    const uintptr_t *createstack;
    int ncreatestack;
} weft__mview;

/* Walks every M ever created, newest first: pass NULL for the first,
 * then the previous handle; NULL at the end.  Ms are only ever prepended
 * (load-acquire of the head: an M seen is fully initialised).  Exited Ms
 * are included.  Both signal-safe. */
M *weft__view_allm(M *prev);
void weft__view_m(M *m, weft__mview *out);

/* ---- Gs ---------------------------------------------------------------------------- */

/* G status, Go's numbers (runtime2.go).  Checked against the core's. */
enum {
    VGidle = 0,         /* being created */
    VGrunnable = 1,     /* on a run queue */
    VGrunning = 2,      /* running on an M */
    VGsyscall = 3,      /* in weft_syscall_enter ... weft_syscall_exit */
    VGwaiting = 4,      /* parked: see waitreason */
    VGdead = 6,         /* exited, cached for reuse: not a goroutine */
};

/* Where a walk of a goroutine's frames can start. */
typedef enum {
    VGwalk_none = 0,    /* none: it runs on an M (weft__sigcapture it) or is dead */
    VGwalk_saved,       /* switched out: pc is the return address into the code that
                         * switched (a scheduler frame), fp that code's frame record */
    VGwalk_syscall,     /* in a syscall: pc/fp are the frame that called weft_syscall_enter */
    VGwalk_fresh,       /* created, never ran: pc is the entry of its function, no frames */
} weft__gwalk;

/* One creator of a goroutine, SCHEDDEBUG=tracebackancestors (Go's
 * ancestorInfo): the goroutine that ran the weft_go, its stack at that
 * call (from the function that called weft_go outwards, at most 50
 * frames: Go's tracebackInnerFrames) and where it was created itself.  A
 * goroutine keeps its creator first, then its creator's ancestors. */
typedef struct weft__ancestor {
    const weft__stkrec *stk;    /* shared by every goroutine created by that stack; NULL:
                                 * no memory was left to record it */
    int64_t goid;               /* the creator */
    uintptr_t gopc;             /* the creator's own creation pc; 0 for goroutine 1 */
} weft__ancestor;
#define WEFT_ANCESTOR_FRAMES 50

typedef struct weft__gview {
    G *g;                   /* the handle */
    int64_t goid;
    int status;             /* VG* */
    const char *statusname; /* Go's word for status: "runnable", "waiting", ... */
    const char *waitreason; /* Go's wait reason ("chan receive"); "" if none.  Meaningful
                             * while waiting, stale otherwise */
    int64_t waitsince;      /* coarse time it began waiting or its syscall, 0 unknown */
    uintptr_t gopc;         /* return address of the weft_go call that created it, 0 if none */
    int64_t parentgoid;     /* the creator's goid, 0 if a plain thread */
    const char *name;       /* weft_attr's name, or NULL */
    bool ismain;            /* goroutine 1 of weft_main */
    bool locked;            /* locked to its M (weft_lock_thread) */
    int64_t lockedm;        /* that M's id, -1 */
    M *m;                   /* the M running it, NULL: for weft__sigcapture */
    int64_t mid;            /* that M's id, -1 */
    uintptr_t stacklo, stackhi; /* its stack */
    weft__gwalk walk;       /* where its frames start: */
    uintptr_t pc, fp;       /* see weft__gwalk */
    uintptr_t sp;           /* VGwalk_saved: the saved context (weft__unwind_init_ctx);
                             * VGwalk_syscall: the stack pointer of pc's frame */
    uintptr_t copy;         /* VGwalk_saved of a compacted stack (runtime/stack.c): where
                             * [sp, stackhi) is read (its copy); 0: in place */
    const weft__ancestor *ancestors; /* its creators, newest first (tracebackancestors) ... */
    int nancestors;         /* ... how many */
} weft__gview;

/* What a parked goroutine waits on (its queued sudogs, park.h). */
enum {
    VWAIT_OTHER = 0,    /* a runtime semaphore */
    VWAIT_CHAN,         /* a weft_chan */
    VWAIT_MUTEX,        /* a weft_mutex (also a weft_rwmutex's writer lock) */
    VWAIT_RWMUTEX,      /* a weft_rwmutex: a reader, or a writer waiting for readers */
    VWAIT_WAITGROUP,    /* a weft_wg */
    VWAIT_COND,         /* a weft_cond */
    VWAIT_FD,           /* a descriptor in the poller (its pollDesc) */
};
enum { VDIR_NONE = 0, VDIR_RECV = 1, VDIR_SEND = 2 };
typedef struct weft__waitobj {
    uintptr_t addr;         /* the object (the weft_mutex, not its semaphore) */
    uint32_t kind;          /* VWAIT_* */
    uint8_t dir;            /* channels: VDIR_*, the side it waits on */
    bool closed;            /* channels, racy: closed */
    uint64_t len, cap;      /* channels: elements buffered (racy) and capacity */
} weft__waitobj;
_Static_assert(sizeof(weft__waitobj) == 4 * sizeof(uint64_t), "four words");

/* Up to max of the objects gp's current wait is queued on (a select has
 * one per case); returns how many it found, which may exceed max.  Racy
 * unless gp cannot run (a goroutine profile's save, a stopped world): the
 * result may then mix two waits, but the memory read stays valid (sudogs
 * are never freed while the runtime runs).  A sleep queues nothing: 0. */
int weft__view_gwaits(G *gp, weft__waitobj *out, int max);

/* The goroutines and threads parked on channel c, on each side, counted
 * under c's lock, with its len, cap and closed flag as of then, if gp
 * still waits on c in the wait that began at since (which keeps c alive:
 * weft_chan_free waits for the count to end).  False if it does not. */
bool weft__view_chanwaiters(G *gp, int64_t since, uintptr_t c, weft__waitobj *out, int *nrecv, int *nsend);

/* Whether gp is still parked in the wait that began at since. */
bool weft__view_stillwaiting(G *gp, int64_t since);

/* Walks every goroutine ever created (Go's allgs), newest first, dead ones
 * included (status VGdead): as weft__view_allm.  Both signal-safe. */
G *weft__view_allg(G *prev);
void weft__view_g(G *gp, weft__gview *out);

/* Goroutines alive (Go's gcount): exact while the world is stopped, but for
 * a plain thread spawning meanwhile.  Signal-safe. */
int64_t weft__view_gcount(void);

/* ---- goroutine profiles without a long stop (g.c) ------------------------------------
 * Go 1.19's concurrent goroutine profile: the world stops only to mark a
 * snapshot and to end it, and each goroutine's stack is recorded while the
 * world runs, but as it was at the snapshot:
 *
 *   1. Stop the world; weft__view_gprof_start(p, me): every goroutine
 *      alive (but me, which records itself) is pending; returns the newest
 *      G of the snapshot.  Start the world.
 *   2. weft__view_gprof_visit every G from that one on (it returns the next):
 *      each pending one is recorded, by weft__gprof_save(p, gp).
 *      Meanwhile the scheduler records a pending G itself before it runs
 *      it, and a G leaving a syscall before it returns; a G created after
 *      the snapshot is never pending.  So every live goroutine of the
 *      snapshot is recorded exactly once, with the stack it had then.
 *   3. Stop the world; weft__view_gprof_end(): nothing records into p any
 *      more and the records may be read.  Start the world.
 *
 * One profile at a time: the caller serializes (stackprof.c's lock). */
typedef struct weft__gprof weft__gprof;    /* diag's (traceback.c) */
G *weft__view_gprof_start(weft__gprof *p, G *me);     /* world stopped */
G *weft__view_gprof_visit(G *gp);      /* returns the next G, as weft__view_allg */
void weft__view_gprof_end(void);                      /* world stopped */
/* diag's: records gp into p.  gp is not running and cannot run until this
 * returns; called by the collector or by the scheduler (on g0, or on the
 * stack of the goroutine switching to gp), so it must not block, take a
 * lock, allocate, or use much stack. */
void weft__gprof_save(weft__gprof *p, G *gp);

/* The code calling this. */
typedef struct weft__selfview {
    G *g;                   /* the goroutine it runs on; NULL on an M's scheduler stack
                             * (g0), on sysmon or on a plain thread */
    M *m;                   /* the M it runs on, NULL off weft's Ms */
    uintptr_t stacklo, stackhi; /* the stack it runs on (the goroutine's or g0's); 0, 0
                                 * when unknown (plain threads, sysmon) */
} weft__selfview;
void weft__view_self(weft__selfview *out);     /* signal-safe */

/* ---- stacks of running code, by signal (os/linux.c) ----------------------------- */

/* Inside a signal handler on any thread: the interrupted frames (pcs[0]
 * the exact pc) of the stack the thread was on, walked by diag/unwind.h,
 * and the goroutine that owns that stack (*goid, 0 if none: g0, or a plain
 * thread, whose only frame is then the pc).  Signal-safe. */
int weft__sigstack(void *uctx, uintptr_t *pcs, int max, int64_t *goid);

/* The stack m's thread is running now: signals it (SIGURG), its handler
 * runs weft__sigstack.  Waits at most timeout_ns.  Returns the number of
 * pcs or -1; *goid as weft__sigstack (compare it with the goroutine you
 * expected: it may have moved on).  One capture at a time, under a lock;
 * crash: don't wait for that lock, fail instead.  Not signal-safe itself
 * (it spins and yields), but safe in a crash with crash = true. */
int weft__sigcapture(M *m, uintptr_t *pcs, int max, int64_t *goid, int64_t timeout_ns, bool crash);
/* How long a dump waits for one M to answer a capture: a thread that does
 * not get to run within it (a stopped process, a starved CPU) is reported
 * without its frames rather than stalling the dump. */
#define WEFT__CAPTURE_TIMEOUT_NS (100 * 1000 * 1000)

/* ---- per-M state owned by diag/ -----------------------------------------------------
 * Each M carries one weft__mdiag (runtime.h: M.diag) that only diag/ reads
 * or writes; the core zeroes it with the M and calls weft__cpuprof_mfree
 * and weft__schedtrace_mfree before freeing the M.  It lives in the M
 * rather than in a table of diag/'s own because the CPU profiler's SIGPROF
 * handler must find its M's sample ring with no lookup and no lock, and
 * because Ms are never freed while the runtime runs, so a dump may use
 * what it cached there without holding anything. */
struct weft__profbuf;
typedef struct weft__mdiag {
    struct weft__profbuf *profbuf; /* atomic: the CPU profiler's sample ring (cpuprof.c), set
                                    * once, freed with the M */
    timer_t proftimer;      /* view lock: its SIGPROF timer ... */
    bool proftimer_armed;   /* view lock: ... while this is true */
    char *createtext;       /* atomic: createstack symbolized, set once by the first
                             * detailed dump (schedtrace.c) */
} weft__mdiag;
weft__mdiag *weft__view_mdiag(M *m);
weft__mdiag *weft__view_mdiag_self(void);      /* this thread's M's; NULL off an M.  Signal-safe */

/* The CPU profiler's timers (os/linux.c): SIGPROF hz times per CPU-second
 * of m's thread, delivered to that thread (its diag block's proftimer);
 * the handler calls weft__cpuprof_signal.  Call with the view lock held. */
void weft__sigprof_install(void);
int  weft__proftimer_start(M *m, int hz);  /* 0 or -errno */
void weft__proftimer_stop(M *m);

/* ---- what the core calls in diag/ -----------------------------------------------------
 * Besides these, the core reads SCHEDDEBUG's settings (scheddebug.h:
 * weft__debug), sysmon calls weft_schedtrace (weft.h) every schedtrace=N
 * ms, m.c and sysmon.c record M creation stacks with diag/unwind.h, and the
 * error tier prints through diag/print.h. */

/* env.c, at boot: parses SCHEDDEBUG once per process (schedtrace.c). */
void weft__scheddebug_init(void);

/* m.c: a new M, on its own thread, is armed if a CPU profile is running;
 * before an M is freed, its timer and ring, and its cached creation text,
 * are released.  (cpuprof.c, schedtrace.c) */
void weft__cpuprof_minit(M *m);
void weft__cpuprof_mfree(M *m);
void weft__schedtrace_mfree(M *m);

/* os/linux.c: SIGPROF from an M's profiling timer, standing for n of its
 * expirations (1 + the signal's overrun).  Signal-safe: appends one sample
 * of weight n to the M's ring, no lock, no allocation.  (cpuprof.c) */
void weft__cpuprof_signal(void *uctx, int64_t n);

/* proc.c: main returned; stops (and writes) a running CPU profile. */
void weft__cpuprof_shutdown(void);

/* lifecycle.c: main returned and the runtime's goroutines will never run
 * again: closes every debug server's listening socket (weft_debug_serve),
 * so that its port is free and clients are refused; with release (every
 * other thread has left, waits are cancelled), also its connections and
 * its memory.  (debugserver.c) */
void weft__debugserver_shutdown(bool release);

/* The debug server's /debug/lockcycles: the lock cycles reported so far,
 * as SIGQUIT's dump ends with them, or a line saying there are none or
 * that detection is off.  (lockcycle.c) */
void weft__lockcycle_write(int fd);

/* sysmon.c, SCHEDDEBUG=blockwarn=N: gp has been parked in one wait since
 * since (coarse ns), more than N s before now.  Prints it, with what it
 * waits on, unless it moved on meanwhile.  Called on sysmon only.
 * (blockwarn.c) */
void weft__blockwarn(G *gp, int64_t since, int64_t now);

/* sysmon.c, SCHEDDEBUG=hogwarn=N: gp has run on P pid (held by m) for ns
 * without reaching a scheduling point.  Prints it with the stack it is
 * running, captured by signalling m.  (schedtrace.c) */
void weft__hogwarn(M *m, G *gp, int32_t pid, int64_t ns);

/* panic.c: what a crash prints after its headline, then exit(2) (crash.c).
 * uctx: the context a fatal signal interrupted (a ucontext_t), or NULL to start
 * the current goroutine's traceback at the caller of the function that
 * calls weft__crashdump.  Safe in a crash and in a signal handler: no
 * allocation, symbols looked up without waiting on the symbolizer's lock. */
enum {
    WEFT_CRASH_PANIC,       /* weft_panic, a runtime error signal: this goroutine, others
                             * only with traceback=all */
    WEFT_CRASH_FATAL,       /* a fatal error (deadlock, fault): every goroutine */
    WEFT_CRASH_THROW,       /* a runtime bug: every goroutine, runtime frames shown */
    WEFT_CRASH_SIGQUIT,     /* SIGQUIT: every goroutine */
};
void weft__crashdump(int kind, const void *uctx) __attribute__((noreturn));

#endif
