/*
 * traceback.h — goroutine stacks printed in Go's traceback format, and
 * stack records (traceback.c).  Stacks are walked by diag/unwind.h, from
 * the snapshots diag/schedview.h gives of goroutines; the stacks of
 * goroutines running on other Ms are captured by signalling those Ms
 * (weft__sigcapture).
 */
#ifndef WEFT_TRACEBACK_H
#define WEFT_TRACEBACK_H

#include <stdbool.h>
#include <stdint.h>

#include "print.h"
#include "schedview.h"
#include "unwind.h"

#define TB_MAXPCS 32    /* a stack record: Go's StackRecord.Stack0 */

/* How much to show (Go's traceback levels). */
typedef struct {
    bool runtime_frames;    /* also weft's internal frames (runtime bug: Go's level 2) */
    bool crash;             /* inside a crash: symbolize without waiting on locks */
} weft__tbopts;

/* A stack record for a goroutine that is not running (the world stopped):
 * up to max return addresses, zero-terminated when shorter.  Returns the
 * count.  A switched-out goroutine's record starts above the scheduler
 * frame that switched, so records of goroutines blocked the same way
 * compare equal; one that never ran is its function's entry + 1. */
int weft__gstackrecord(const weft__gview *g, uintptr_t *pcs, int max);

/* "goroutine N [status]:" with Go's wait reason, minutes and lock. */
void weft__goroutineheader(weft__out *o, const weft__gview *g);

/* The frames of the walk start (copied, not advanced; its first pc exact
 * when exact: an interrupted instruction rather than a return address),
 * then g's "created by" if g is not NULL. */
void weft__traceback(weft__out *o, const weft__gview *g, const weft__unwinder *start, bool exact,
                     const weft__tbopts *opt);

/* The calling goroutine (or thread), header and frames, starting at the
 * caller of the function that calls this (skip its own frame). */
void weft__traceback_self(weft__out *o, const weft__tbopts *opt);

/* Every user goroutine but me (NULL: none), each preceded by a blank line,
 * as Go's tracebackothers.  Goroutines running on other Ms are captured by
 * signalling their M when capture is true, else reported as unavailable. */
void weft__tracebackothers(weft__out *o, G *me, bool capture, const weft__tbopts *opt);

/* One symbolized frame line pair: "func(...)\n\tfile:line +0xoff\n". */
void weft__printframe(weft__out *o, uintptr_t pc, bool exact, const weft__tbopts *opt);

/* Go's "#\t0x...\tfunc+0x..\tfile:line" lines for a stack record (hiding
 * leading runtime frames, as printStackRecord), for the debug=1 profiles
 * and the M creation stacks in scheddetail dumps. */
void weft__printstackrecord(weft__out *o, const char *prefix, const uintptr_t *pcs, int n);

#endif
