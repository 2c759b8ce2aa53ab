/*
 * crash.c — what a dying process prints after its headline (Go's dopanic;
 * docs/formats.md, goroutine tracebacks and dumps):
 *
 *   panic: boom                           (the headline: panic.c)
 *   weft: flight recorder: window written to PATH   (SCHEDDEBUG=flightrecorder)
 *   SCHED ... (a detailed dump, if SCHEDDEBUG has schedtrace or scheddetail)
 *
 *   goroutine 7 [running]:
 *   ...
 *
 * then every other goroutine when SCHEDDEBUG=traceback=all or for fatal
 * errors (Go: fatal errors always dump everyone), none with
 * traceback=none; then exit status 2.
 *
 * panic.c decides who dies and prints the headline; this file prints the
 * rest.  Everything here may run in a signal handler that interrupted
 * anything, malloc and the scheduler's locks included: output goes through
 * print.c into a stack buffer, stacks are captured without waiting for the
 * capture lock, and symbols are looked up without waiting for the
 * symbolizer's lock (a thread that crashed inside it cannot deadlock us;
 * its frames print as bare addresses).
 */
#include <unistd.h>

#include "../lockcycle.h"
#include "print.h"
#include "scheddebug.h"
#include "schedview.h"
#include "trace.h"
#include "traceback.h"
#include "unwind.h"

void weft__crashdump(int kind, const void *uctx)
{
    /* What led here, before anything else can go wrong: the flight
     * recorder's window (SCHEDDEBUG=flightrecorder). */
    weft__trace_crash();
    uintptr_t pc = 0, fp;
    if (uctx)
        weft__sigctx(uctx, &pc, &fp);   /* only whether there is one: the walk reads uctx */
    if (weft__debug.schedtrace > 0 || weft__debug.scheddetail > 0)
        weft__schedtrace_crash(2);
    int tb = weft__debug.traceback;
    bool others = tb == TRACEBACK_ALL || (kind != WEFT_CRASH_PANIC && tb != TRACEBACK_NONE);
    weft__tbopts opt = { .runtime_frames = kind == WEFT_CRASH_THROW, .crash = true };
    weft__selfview self;
    weft__view_self(&self);
    weft__gview g = { 0 };
    if (self.g)
        weft__view_g(self.g, &g);
    weft__out o;
    weft__out_fd(&o, 2);
    if (kind == WEFT_CRASH_SIGQUIT) {
        /* Go: where the signal landed, if on a goroutine, then everyone;
         * with traceback=none, the headline alone. */
        if (self.g && tb != TRACEBACK_NONE) {
            weft__outf(&o, "\n");
            weft__goroutineheader(&o, &g);
            weft__unwinder u;
            weft__unwind_init_sigctx(&u, uctx, self.stacklo, self.stackhi);
            weft__traceback(&o, &g, &u, true, &opt);
        }
    } else if (tb != TRACEBACK_NONE) {
        if (pc) {
            /* a fatal signal: from the interrupted instruction */
            weft__outf(&o, "\n");
            if (self.g)
                weft__goroutineheader(&o, &g);
            else
                weft__outf(&o, "runtime stack:\n");
            weft__unwinder u;
            weft__unwind_init_sigctx(&u, uctx, self.stacklo, self.stackhi);
            weft__traceback(&o, self.g ? &g : NULL, &u, true, &opt);
        } else if (self.g || kind == WEFT_CRASH_THROW) {
            /* from our caller's caller: the code that panicked or threw */
            weft__outf(&o, "\n");
            weft__traceback_self(&o, &opt);
        }
    }
    if (others)
        weft__tracebackothers(&o, self.g, true, &opt);
    if (kind == WEFT_CRASH_SIGQUIT && tb != TRACEBACK_NONE) {
        /* What Go cannot say: the lock cycles already reported (their
         * members are among the goroutines above). */
        weft__outf(&o, "\n");
        weft__lockcycle_print(&o);
    }
    weft__out_flush(&o);
    _exit(2);
}
