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

/* Symbols looked up once per dump: a dump of many goroutines names the
 * same few hundred pcs over and over, and each lookup costs microseconds
 * under the symbolizer's lock.  Not for crash paths (it allocates). */
typedef struct weft__symcache weft__symcache;
weft__symcache *weft__symcache_new(void);      /* NULL: no memory (then dumps go without) */
void weft__symcache_free(weft__symcache *c);

/* How much to show (Go's traceback levels). */
typedef struct {
    bool runtime_frames;    /* also weft's internal frames (runtime bug: Go's level 2) */
    bool crash;             /* inside a crash: symbolize without waiting on locks */
    weft__symcache *cache;  /* symbols already looked up, or NULL */
} weft__tbopts;

/* A stack record for a goroutine that is not running (the world stopped):
 * up to max return addresses, zero-terminated when shorter.  Returns the
 * count.  A switched-out goroutine's record starts above the scheduler
 * frame that switched, so records of goroutines blocked the same way
 * compare equal; one that never ran is its function's entry + 1. */
int weft__gstackrecord(const weft__gview *g, uintptr_t *pcs, int max);

/* Starts u at g's frames if its snapshot has a walk (saved context or
 * syscall), bounded by its stack.  False if not (running, dead, or never
 * ran). */
bool weft__gwalk_init(const weft__gview *g, weft__unwinder *u);

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

/* One goroutine's traceback, header first: a goroutine that is not
 * running is walked from its saved context (a parked one's stack changes
 * only once it runs again; the walk is bounded by its stack either way);
 * a running one is captured by signalling its M when capture is true. */
void weft__tracebackg(weft__out *o, G *gp, bool capture, const weft__tbopts *opt);

/* Every user goroutine but me (NULL: none), each preceded by a blank line,
 * as Go's tracebackothers.  Goroutines running on other Ms are captured by
 * signalling their M when capture is true, else reported as unavailable. */
void weft__tracebackothers(weft__out *o, G *me, bool capture, const weft__tbopts *opt);

/* One symbolized frame line pair: "func(...)\n\tfile:line +0xoff\n". */
void weft__printframe(weft__out *o, uintptr_t pc, bool exact, const weft__tbopts *opt);

/* ---- goroutine records: a goroutine profile taken while the world runs ----
 * (diag/schedview.h has the protocol.)  Each goroutine of the snapshot gets
 * one record: its header fields and its frames, as raw pcs (symbols are
 * looked up later, outside any stop).  A stack deeper than head + tail
 * frames keeps its head innermost and tail outermost frames and counts
 * the ones between: a traceback prints at most 50 + 50 frames of a user
 * stack (Go's), so with head 100 and tail 52 it prints such a record as it
 * would have printed the live stack, "...N frames elided..." included. */
#define TB_RECHEAD 100
#define TB_RECTAIL 52

typedef struct weft__grec {
    int64_t goid, parentgoid;
    int64_t waitsince;      /* as weft__gview */
    uintptr_t gopc;
    const char *statusname, *waitreason;
    uint32_t off;           /* its frames are the profile's pcs[off, off + n) ... */
    uint32_t n;
    uint32_t nhead;         /* ... the first nhead innermost, the rest outermost ... */
    uint32_t gap;           /* ... with gap frames between them not kept */
    int8_t status;          /* VG* */
    uint8_t walk;           /* weft__gwalk: where its frames started */
    bool ismain, locked;
    bool lost;              /* no room was left for its frames */
    uint32_t ancoff;        /* its ancestors: nanc weft__ancestor copies in the profile's */
    uint32_t nanc;          /* pcs from ancoff on (3 words each) */
    uint32_t waitoff;       /* what it waits on: nwait weft__waitobj copies from pcs[waitoff] */
    uint16_t nwait;         /* (at most TB_RECWAITS) ... */
    uint16_t nwaitall;      /* ... of this many objects */
    int64_t lockedm;        /* the M it is locked to, -1 */
    uint32_t nameoff;       /* its weft_attr name's first TB_RECNAME - 1 bytes, NUL-ended,
                             * from pcs[nameoff] (copied: the string need only outlive
                             * the goroutine, which may end before the record is read) */
    bool hasname;
} weft__grec;

#define TB_RECNAME 32

/* The objects a record keeps of a wait on many (a select of many cases). */
#define TB_RECWAITS 8

/* Record r's wait object i (i < r->nwait). */
weft__waitobj weft__grec_waitobj(const weft__gprof *p, const weft__grec *r, uint32_t i);

/* Record r's ancestor i (i < r->nanc). */
weft__ancestor weft__grec_ancestor(const weft__gprof *p, const weft__grec *r, uint32_t i);

struct weft__gprof {
    weft__grec *recs;       /* recs[0, min(nrecs, cap)) are taken */
    uint32_t cap;
    size_t recsmapped;
    AO_t nrecs;             /* atomic: records handed out (may pass cap: those are lost) */
    uintptr_t *pcs;         /* the records' frames, handed out by npcs */
    size_t pcscap, pcsmapped;
    AO_t npcs;              /* atomic */
    uint32_t head, tail;    /* frames kept of a deep stack (tail 0: the innermost head) */
};

/* Room for cap records of up to head + tail frames each.  0 or -ENOMEM. */
int weft__gprof_init(weft__gprof *p, uint32_t cap, uint32_t head, uint32_t tail);
void weft__gprof_free(weft__gprof *p);
/* The records taken (after the profile ended). */
static inline uint32_t weft__gprof_len(const weft__gprof *p)
{
    AO_t n = AO_load(&p->nrecs);     /* the stop that ended the profile ordered it */
    return n < p->cap ? (uint32_t)n : p->cap;
}

/* A record as a stack record (weft__gstackrecord's form). */
int weft__grec_stackrecord(const weft__gprof *p, const weft__grec *r, uintptr_t *pcs, int max);

/* A record's traceback: header, frames, "created by" (tracebackothers'
 * form, without the blank line before it). */
void weft__tracebackrec(weft__out *o, const weft__gprof *p, const weft__grec *r, const weft__tbopts *opt);

/* ---- goroutines as JSON (docs/formats.md, the JSON goroutine dump) ----
 * Each writes one goroutine object, without a separator.  The frames are
 * the ones a traceback shows (weft's internal ones hidden), all of them;
 * wait_ns counts from its wait's start to now (coarse clock).  count
 * (may be NULL) gives the goroutines of the dump parked on a channel on
 * each side. */
typedef void (*weft__waitcountf)(void *arg, uintptr_t chan, int *nrecv, int *nsend);
void weft__jsonrec(weft__out *o, const weft__gprof *p, const weft__grec *r, int64_t now, const weft__tbopts *opt,
                   weft__waitcountf count, void *arg);
/* The calling goroutine, from the caller of the function that calls this;
 * nothing off a goroutine. */
void weft__jsonself(weft__out *o, const weft__tbopts *opt);
/* VWAIT_* as the dumps name it: "chan", "mutex", ... */
const char *weft__waitkind(uint32_t kind);

/* The last dump of every goroutine (stackprof.c), for bench/bench_dump.c:
 * how long taking the stacks took (both stops included), formatting, and
 * the longer of its two stops, in ns.  Each word atomic (plain stores and
 * loads: they are figures, read after the dump, ordering nothing). */
struct weft__dumpstats {
    AO_t collect_ns, format_ns, stw_max_ns;
};
extern struct weft__dumpstats weft__dumpstats;
/* The most goroutine?debug=2 writes (stackprof.c; tests lower it). */
extern size_t weft__dumplimit;
/* Tests: called by the collector right after the snapshot, with the world
 * running again and no goroutine recorded yet but the ones that ran. */
extern void (*weft__gprof_testhook)(void);

/* Go's "#\t0x...\tfunc+0x..\tfile:line" lines for a stack record (hiding
 * leading runtime frames, as printStackRecord), for the debug=1 profiles
 * and the M creation stacks in scheddetail dumps. */
void weft__printstackrecord(weft__out *o, const char *prefix, const uintptr_t *pcs, int n);

#endif
