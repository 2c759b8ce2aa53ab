/*
 * panic.c — dying Go's way: weft__throw (a runtime bug), weft__fatal (a user
 * error Go treats as fatal: deadlock), weft_panic (misuse Go panics on) and
 * fatal signals (weft__sigpanic, from os/linux.c), as Go's startpanic /
 * dopanic (go-formats.md §2.5):
 *
 *   panic: <message>                      or  fatal error: <message>
 *   [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x...]
 *   SCHED ... (a detailed dump, if SCHEDDEBUG has schedtrace or scheddetail)
 *
 *   goroutine 7 [running]:
 *   ...
 *
 * then every other goroutine when SCHEDDEBUG=traceback=all or for fatal
 * errors (Go: fatal errors always dump everyone), none with
 * traceback=none; exit status 2.
 *
 * The first thread to start dying prints; any other thread that fails
 * meanwhile waits for it to exit (Go's paniclk), and a failure while
 * printing exits at once.  Everything here may run in a signal handler:
 * output goes through print.c, and symbols are looked up without waiting
 * for the symbolizer's lock (a thread that crashed inside it cannot
 * deadlock us; its frames print as bare addresses).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "diag/scheddebug.h"
#include "diag/traceback.h"
#include "diag/unwind.h"

AO_t weft__panicking;

enum { DIE_PANIC, DIE_FATAL, DIE_THROW };

/* Go's startpanic_m: one thread dies, others wait. */
static void startpanic(void)
{
    static __thread int dying;
    if (dying++) {
        weft__printf(2, "\nfatal error: panic during panic\n");
        _exit(2);
    }
    /* CAS-full: exactly one printer; the others park below forever. */
    if (!AO_compare_and_swap_full(&weft__panicking, 0, 1)) {
        for (;;)
            pause();
    }
}

static void dump_sched(void)
{
    if (weft__debug.schedtrace > 0 || weft__debug.scheddetail > 0)
        weft__schedtrace_crash(2);
}

/* Prints the goroutines after the headline, per SCHEDDEBUG=traceback.
 * (pc, fp) start the current goroutine's frames (a signal context, exact
 * pc), or 0 to start at our caller's caller. */
static __attribute__((noreturn)) void dopanic(int kind, uintptr_t pc, uintptr_t fp)
{
    dump_sched();
    int tb = weft__debug.traceback;
    bool all = tb == TRACEBACK_ALL || (kind != DIE_PANIC && tb != TRACEBACK_NONE);
    weft__tbopts opt = { .runtime_frames = kind == DIE_THROW, .crash = true };
    G *gp = weft__getg();
    bool user = gp && !gp->issystem;
    weft__out o;
    weft__out_fd(&o, 2);
    if (tb != TRACEBACK_NONE) {
        if (pc) {
            weft__outf(&o, "\n");
            weft__unwinder u;
            if (user) {
                weft__goroutineheader(&o, gp);
                weft__unwind_init(&u, pc, fp, gp->stacklo, gp->stackhi);
                weft__traceback(&o, gp, &u, true, &opt);
            } else {
                weft__outf(&o, "runtime stack:\n");
                weft__unwind_init(&u, pc, fp, gp ? gp->stacklo : 0, gp ? gp->stackhi : 0);
                weft__traceback(&o, NULL, &u, true, &opt);
            }
        } else if (user || kind == DIE_THROW) {
            weft__outf(&o, "\n");
            weft__traceback_self(&o, &opt);
        }
        if (all)
            weft__tracebackothers(&o, user ? gp : NULL, true, &opt);
    }
    weft__out_flush(&o);
    _exit(2);
}

void weft__throw(const char *msg)
{
    startpanic();
    weft__printf(2, "fatal error: %s\n", msg);
    dopanic(DIE_THROW, 0, 0);
}

void weft__fatal(const char *msg)
{
    startpanic();
    weft__printf(2, "fatal error: %s\n", msg);
    dopanic(DIE_FATAL, 0, 0);
}

void weft_panic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    startpanic();
    weft__printf(2, "panic: %s\n", msg);
    dopanic(DIE_PANIC, 0, 0);
}

/* ---- fatal signals ------------------------------------------------------------ */

static const char *signame(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV: segmentation violation";
    case SIGBUS: return "SIGBUS: bus error";
    case SIGFPE: return "SIGFPE: floating-point exception";
    case SIGILL: return "SIGILL: illegal instruction";
    case SIGQUIT: return "SIGQUIT: quit";
    default: return "unknown signal";
    }
}

void weft__sigpanic(int sig, siginfo_t *si, void *uctx)
{
    uintptr_t pc, fp;
    weft__sigctx(uctx, &pc, &fp);
    startpanic();
    G *gp = weft__getg();
    if (sig == SIGQUIT) {
        /* Go: the signal, where it landed, then every goroutine. */
        M *m = gp ? gp->m : NULL;
        weft__printf(2, "%s\nPC=%p m=%lld sigcode=%d\n", signame(sig), (void *)pc,
                     m ? (long long)m->id : -1LL, si->si_code);
        dump_sched();
        weft__tbopts opt = { .crash = true };
        weft__out o;
        weft__out_fd(&o, 2);
        if (gp && !gp->issystem) {
            weft__outf(&o, "\n");
            weft__goroutineheader(&o, gp);
            weft__unwinder u;
            weft__unwind_init(&u, pc, fp, gp->stacklo, gp->stackhi);
            weft__traceback(&o, gp, &u, true, &opt);
        }
        if (weft__debug.traceback != TRACEBACK_NONE)
            weft__tracebackothers(&o, gp && !gp->issystem ? gp : NULL, true, &opt);
        weft__out_flush(&o);
        _exit(2);
    }
    uintptr_t addr = (uintptr_t)si->si_addr;
    int kind = DIE_PANIC;
    if ((sig == SIGSEGV || sig == SIGBUS) && addr < 0x1000) {
        weft__printf(2, "panic: runtime error: invalid memory address or nil pointer dereference\n");
    } else if (sig == SIGSEGV || sig == SIGBUS) {
        weft__printf(2, "unexpected fault address %p\nfatal error: fault\n", (void *)addr);
        kind = DIE_FATAL;
    } else if (sig == SIGFPE && si->si_code == FPE_INTDIV) {
        weft__printf(2, "panic: runtime error: integer divide by zero\n");
    } else if (sig == SIGFPE && si->si_code == FPE_INTOVF) {
        weft__printf(2, "panic: runtime error: integer overflow\n");
    } else if (sig == SIGFPE) {
        weft__printf(2, "panic: runtime error: floating point error\n");
    } else {
        weft__printf(2, "fatal error: unexpected signal\n");
        kind = DIE_FATAL;
    }
    weft__printf(2, "[signal %s code=0x%x addr=%p pc=%p]\n", signame(sig), (unsigned)si->si_code,
                 (void *)addr, (void *)pc);
    dopanic(kind, pc, fp);
}

const char *weft__waitreason_str(int r)
{
    static const char *const names[waitReasonCount] = {
        [waitReasonZero] = "",
        [waitReasonIOWait] = "IO wait",
        [waitReasonSemacquire] = "semacquire",
        [waitReasonSleep] = "sleep",
        [waitReasonChanReceiveNilChan] = "chan receive (nil chan)",
        [waitReasonChanSendNilChan] = "chan send (nil chan)",
        [waitReasonSelectNoCases] = "select (no cases)",
        [waitReasonSelect] = "select",
        [waitReasonChanReceive] = "chan receive",
        [waitReasonChanSend] = "chan send",
        [waitReasonSyncCondWait] = "sync.Cond.Wait",
        [waitReasonSyncMutexLock] = "sync.Mutex.Lock",
        [waitReasonSyncRWMutexRLock] = "sync.RWMutex.RLock",
        [waitReasonSyncRWMutexLock] = "sync.RWMutex.Lock",
        [waitReasonSyncWaitGroupWait] = "sync.WaitGroup.Wait",
        [waitReasonPreempted] = "preempted",
        [waitReasonStoppingTheWorld] = "stopping the world",
        [waitReasonLockedThread] = "locked thread",
    };
    if (r < 0 || r >= waitReasonCount)
        return "unknown wait reason";
    return names[r];
}
