/*
 * unwind.h — the one stack walker.  Every stack weft records or prints is
 * walked here: tracebacks and goroutine profiles (traceback.c, stackprof.c),
 * CPU samples and stack captures inside signal handlers (cpuprof.c through
 * os/linux.c's weft__sigstack), and the creation stacks of Ms (m.c,
 * sysmon.c).  Nothing else reads frame records, so replacing frame-pointer
 * walking (with DWARF unwinding through libunwind, say) changes this file
 * and its .c only.
 *
 * Today a walk follows frame pointers, which weft and its users keep
 * (-fno-omit-frame-pointer): a frame record is {saved frame pointer,
 * return address} on both x86-64 and AArch64.  A walk is bounded by the
 * stack it walks, [lo, hi): each frame record must lie inside it, be
 * aligned and sit above the previous one, so a walk over a stack that
 * changes underneath it (dumps do not stop the world) can return wrong
 * frames but never faults and always ends.
 *
 * The first pc of a walk is either an exact pc (an interrupted
 * instruction: weft__unwind_init_sigctx) or, like every later one, a
 * return address; callers that symbolize look up a return address minus
 * one.  Nothing here takes a lock or allocates: every function is safe in
 * a signal handler and in a crash.
 */
#ifndef WEFT_DIAG_UNWIND_H
#define WEFT_DIAG_UNWIND_H

#include <stdint.h>

/* Stack walks read other frames' memory, redzones included: not a bug to
 * AddressSanitizer's taste, so they are not instrumented.  (runtime.h
 * defines the same.) */
#ifndef WEFT_NO_ASAN
#define WEFT_NO_ASAN __attribute__((no_sanitize_address))
#endif

/* A walk in progress.  Treat as opaque: only unwind.c reads it. */
typedef struct weft__unwinder {
    uintptr_t lo, hi;   /* the stack being walked */
    uintptr_t fp;       /* the next frame record to read; 0 at the end */
    uintptr_t pc[2];    /* pcs to return before reading fp's record ... */
    int npc;            /* ... how many of them are left */
} weft__unwinder;

/* Starts at pc, in the function whose frame record is at fp, on the stack
 * [lo, hi).  lo == 0 means the bounds are unknown (a plain thread): the
 * walk then reads at most the 8 MiB above fp, which covers any thread's
 * stack but is no guarantee against a frame chain that is garbage (code
 * built without frame pointers).  pc == 0 gives an empty walk. */
void weft__unwind_init(weft__unwinder *u, uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi);

/* Starts at the context a signal handler's uctx (a ucontext_t) says the
 * thread was interrupted in, on the stack [lo, hi): the exact pc first.
 * When that pc is in a function's prologue or epilogue, or in a leaf
 * function without a frame record, the frame pointer still names the
 * caller's frame and a plain walk would skip the caller; its return
 * address is then recovered from the stack pointer or link register. */
void weft__unwind_init_sigctx(weft__unwinder *u, const void *uctx, uintptr_t lo, uintptr_t hi);

/* Starts at the code calling this: the first pc is the return address
 * into the function that called weft__unwind_init_self, then its callers;
 * the first skip pcs are dropped.  [lo, hi) is the current stack, treated
 * as unknown (see weft__unwind_init) when lo == 0 or the current frame is
 * not inside it. */
void weft__unwind_init_self(weft__unwinder *u, int skip, uintptr_t lo, uintptr_t hi)
    __attribute__((noinline));

/* The next pc, or 0 at the end of the walk. */
uintptr_t weft__unwind_next(weft__unwinder *u);

/* Up to max pcs of the rest of the walk into pcs; returns how many. */
int weft__unwind_pcs(weft__unwinder *u, uintptr_t *pcs, int max);

/* weft__unwind_init(pc, fp, lo, hi), then up to max pcs. */
int weft__unwind(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max);

/* Go's runtime.Callers: up to max return addresses of the current call
 * chain, pcs[0] being the one into the function that calls weft__callers,
 * after dropping skip of them.  [lo, hi) as for weft__unwind_init_self. */
int weft__callers(int skip, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
    __attribute__((noinline));

/* The pc and frame pointer a signal handler's uctx says the thread was
 * interrupted at. */
void weft__sigctx(const void *uctx, uintptr_t *pc, uintptr_t *fp);

#endif
