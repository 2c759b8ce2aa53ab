/*
 * traceback.h — goroutine stacks: capturing them by frame pointers and
 * printing them in Go's traceback format (traceback.c), and capturing the
 * stack of code running on another M by signalling it (sigcapture in
 * os/linux.c).
 */
#ifndef WEFT_TRACEBACK_H
#define WEFT_TRACEBACK_H

#include "print.h"
#include "runtime.h"
#include "unwind.h"

#define TB_MAXPCS 32    /* a stack record: Go's StackRecord.Stack0 */

/* How much to show (Go's traceback levels). */
typedef struct {
    bool runtime_frames;    /* also weft's internal frames (runtime bug: Go's level 2) */
    bool crash;             /* inside a crash: symbolize without waiting on locks */
} weft__tbopts;

/* Where gp's frame chain starts while it is not running: its saved
 * context, or the frame that called weft_syscall_enter.  *fresh: it has
 * not started yet (pc is meaningless; its frame is gp->fn).  False when
 * its stack cannot be read now (running, dead). */
bool weft__gframe(G *gp, uintptr_t *pc, uintptr_t *fp, bool *fresh);

/* A stack record for gp (not running, or the caller itself): up to max
 * return addresses, zero-terminated when shorter.  Returns the count. */
int weft__gstackrecord(G *gp, uintptr_t *pcs, int max);

/* "goroutine N [status]:" with Go's wait reason, minutes and lock. */
void weft__goroutineheader(weft__out *o, G *gp);

/* The frames of the walk start (copied, not advanced; its first pc exact
 * when exact: an interrupted instruction rather than a return address),
 * then gp's "created by" if gp is not NULL. */
void weft__traceback(weft__out *o, G *gp, const weft__unwinder *start, bool exact,
                     const weft__tbopts *opt);

/* The calling goroutine (or thread), header and frames, starting at the
 * caller of the function that calls this (skip its own frame). */
void weft__traceback_self(weft__out *o, const weft__tbopts *opt);

/* Every other user goroutine, each preceded by a blank line, as Go's
 * tracebackothers.  Goroutines running on other Ms are captured by
 * signalling their M when capture is true, else reported as unavailable. */
void weft__tracebackothers(weft__out *o, G *me, bool capture, const weft__tbopts *opt);

/* One symbolized frame line pair: "func(...)\n\tfile:line +0xoff\n". */
void weft__printframe(weft__out *o, uintptr_t pc, bool exact, const weft__tbopts *opt);

/* Go's "#\t0x...\tfunc+0x..\tfile:line" lines for a stack record (hiding
 * leading runtime frames, as printStackRecord), for the debug=1 profiles
 * and the M creation stacks in scheddetail dumps. */
void weft__printstackrecord(weft__out *o, const char *prefix, const uintptr_t *pcs, int n);

/* ---- capturing a running M's stack (os/linux.c) ---------------------------
 * Signals m's thread; its handler walks the interrupted context's frames.
 * Waits at most timeout_ns.  Returns the number of pcs (the first is the
 * exact interrupted pc) or -1; *goid gets the goroutine it was running (0
 * if none).  One capture at a time (crash: don't wait for the lock). */
int weft__sigcapture(M *m, uintptr_t *pcs, int max, int64_t *goid, int64_t timeout_ns, bool crash);
void weft__sigcapture_handler(void *uctx);

#endif
