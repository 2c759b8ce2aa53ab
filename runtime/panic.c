/*
 * panic.c — dying Go's way: weft__throw (a runtime bug), weft__fatal (a user
 * error Go treats as fatal: deadlock), weft_panic (misuse Go panics on) and
 * fatal signals (weft__sigpanic, from os/linux.c), as Go's startpanic /
 * dopanic.  This file decides who dies and prints the headline:
 *
 *   panic: <message>                      or  fatal error: <message>
 *   [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x...]
 *
 * and diag/crash.c (weft__crashdump) prints the rest, the tracebacks and
 * a scheduler dump as SCHEDDEBUG asks, and exits with status 2.
 *
 * The first thread to start dying prints; any other thread that fails
 * meanwhile waits for it to exit (Go's paniclk), and a failure while
 * printing exits at once.  Everything here may run in a signal handler:
 * output goes through diag/print.c (no malloc, no locks, no stdio).
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/unwind.h"

AO_t weft__panicking;

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
    /* Compacted stacks (stack.c) come back before anything walks them,
     * and so that a core file holds them.  A fault on one inside this
     * handler would kill the process: SIGSEGV is blocked here. */
    weft__stack_restoreall();
}

void weft__throw(const char *msg)
{
    startpanic();
    weft__printf(2, "fatal error: %s\n", msg);
    weft__crashdump(WEFT_CRASH_THROW, NULL);
}

void weft__fatal(const char *msg)
{
    startpanic();
    weft__printf(2, "fatal error: %s\n", msg);
    weft__crashdump(WEFT_CRASH_FATAL, NULL);
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
    weft__crashdump(WEFT_CRASH_PANIC, NULL);
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
        weft__crashdump(WEFT_CRASH_SIGQUIT, uctx);
    }
    uintptr_t addr = (uintptr_t)si->si_addr;
    int kind = WEFT_CRASH_PANIC;
    if ((sig == SIGSEGV || sig == SIGBUS) && addr < 0x1000) {
        weft__printf(2, "panic: runtime error: invalid memory address or nil pointer dereference\n");
    } else if (sig == SIGSEGV || sig == SIGBUS) {
        weft__printf(2, "unexpected fault address %p\nfatal error: fault\n", (void *)addr);
        kind = WEFT_CRASH_FATAL;
    } else if (sig == SIGFPE && si->si_code == FPE_INTDIV) {
        weft__printf(2, "panic: runtime error: integer divide by zero\n");
    } else if (sig == SIGFPE && si->si_code == FPE_INTOVF) {
        weft__printf(2, "panic: runtime error: integer overflow\n");
    } else if (sig == SIGFPE) {
        weft__printf(2, "panic: runtime error: floating point error\n");
    } else {
        weft__printf(2, "fatal error: unexpected signal\n");
        kind = WEFT_CRASH_FATAL;
    }
    weft__printf(2, "[signal %s code=0x%x addr=%p pc=%p]\n", signame(sig), (unsigned)si->si_code,
                 (void *)addr, (void *)pc);
    weft__crashdump(kind, uctx);
}
