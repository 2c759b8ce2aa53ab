/*
 * unwind.h — the one stack walker.  Every stack weft records or prints is
 * walked here: tracebacks and goroutine profiles (traceback.c, stackprof.c),
 * CPU samples and stack captures inside signal handlers (cpuprof.c through
 * os/linux.c's weft__sigstack), and the creation stacks of Ms (m.c,
 * sysmon.c).  Nothing else reads frames.
 *
 * DWARF first.  A walk unwinds with the call frame information every
 * object carries in .eh_frame (GCC and Clang emit it at every -O level;
 * glibc, the vDSO and weft's own assembly have it too), through
 * libunwind's DWARF engine: so a stack is whole through code built
 * without frame pointers, through libc and through the vDSO.  weft does
 * not use libunwind's local address space as it is: it creates its own
 * (unw_create_addr_space) whose accessors are weft's, for three reasons:
 *
 *   - Memory.  A dump does not stop the world, so the stack it walks may
 *     change underneath it.  The local address space reads any address it
 *     computes (it validates them only when it falls back to frame
 *     pointers), so a stale CFA would fault.  weft's access_mem reads
 *     directly only inside the stack being walked and inside the loaded
 *     segments of known objects (where .eh_frame and the code are), and
 *     anything else through process_vm_readv, which fails instead of
 *     faulting.  A walk of a changing stack can return wrong frames; it
 *     never faults, and it always ends (the stack pointer must climb
 *     inside the stack at every step).
 *   - No dl_iterate_phdr in a signal handler.  libunwind finds a pc's
 *     .eh_frame_hdr by dl_iterate_phdr on every cache miss, which takes
 *     the loader's lock (held by an interrupted dlopen, malloc inside).
 *     weft's find_proc_info searches a table of every object's
 *     .eh_frame_hdr built by weft__unwind_prepare outside any signal
 *     handler (at start-up, when a CPU profile starts, at every dump and
 *     weft_stack); a pc in an object loaded since is "no information",
 *     after which libunwind tries the frame pointer.
 *   - Cheap steps, with no lock a signal could break.  libunwind parses
 *     CFI into a cache whose lock it takes with every signal blocked
 *     (two sigprocmask calls per step: Debian's libunwind has no
 *     per-thread cache).  So weft learns from libunwind, once per pc, the
 *     recipe of that pc's frame (the CFA is SP or FP plus a constant, the
 *     return address and the saved FP at constant offsets from it), keeps
 *     it in a lock-free table, and steps by it with two reads; libunwind
 *     steps only the frames whose CFI is not that simple (stack
 *     realignment, signal frames).  Inside a signal handler the libunwind
 *     lock is safe: its holder has every signal blocked, so no handler
 *     interrupts it on its own thread.  libunwind's other allocations
 *     (parsed CIEs) come from its mempool: mmap, under the same kind of
 *     lock.  Nothing in a walk calls malloc.
 *
 * Frame pointers are the fallback: when libunwind or an object's table is
 * missing (the AArch64 cross build has no libunwind), before the first
 * weft__unwind_prepare, and for walks that only know a pc and a frame
 * pointer.  A frame record is {saved frame pointer, return address} on
 * both x86-64 and AArch64, each record must lie inside the stack [lo, hi)
 * and sit above the previous one.
 *
 * What no unwinder recovers: a function that ends in a tail call compiled
 * to a jump has no frame by the time its callee runs, so the callee's
 * caller shows as the caller of the function that jumped
 * (-fno-optimize-sibling-calls keeps those frames).
 *
 * The first pc of a walk is either an exact pc (an interrupted
 * instruction: weft__unwind_init_sigctx) or, like every later one, a
 * return address; callers that symbolize look up a return address minus
 * one.  Walks take no weft lock and do not allocate: every init and next
 * is safe in a signal handler and in a crash (weft__unwind_prepare is not).
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

/* Room for libunwind's cursor and the registers a walk starts from
 * (unwind.c checks that it is enough).  Fixed, whether or not this build
 * has libunwind, so every includer agrees on the layout. */
#if defined(__aarch64__)
#define WEFT__UNWIND_DWARF 2560
#else
#define WEFT__UNWIND_DWARF 1280
#endif

/* A walk in progress.  Treat as opaque: only unwind.c reads it.  A copy
 * continues the walk independently, as long as the original lives (the
 * copy's first registers are still read from it). */
typedef struct weft__unwinder {
    uintptr_t lo, hi;   /* the stack being walked */
    intptr_t delta;     /* frame-pointer walks read the word at a at a + delta: 0, or the
                         * distance to a compacted stack's copy (weft__unwind_alias) */
    uintptr_t fp;       /* frame pointers: the next frame record to read; 0 at the end */
    uintptr_t pc[2];    /* pcs to return before stepping ... */
    int npc;            /* ... how many of them are left */
    int dwarf;          /* 1: stepping with libunwind (dw); 0: with frame pointers */
    _Alignas(16) unsigned char dw[WEFT__UNWIND_DWARF];
} weft__unwinder;

/* Builds (or refreshes, when objects were loaded or unloaded since) the
 * table of every loaded object's unwind information that DWARF walks
 * search.  Not signal-safe: called at start-up, before a CPU profile
 * starts and at the top of every dump, never from a walk. */
void weft__unwind_prepare(void);

/* Frees the table and libunwind's address space (weft_main's exit, when
 * nothing walks any more); walks fall back to frame pointers until the
 * next weft__unwind_prepare. */
void weft__unwind_fini(void);

/* Starts at pc, in the function whose frame record is at fp, on the stack
 * [lo, hi), walking frame pointers only (no stack pointer is known).  lo ==
 * 0 means the bounds are unknown (a plain thread): the walk then reads at
 * most the 8 MiB above fp, which covers any thread's stack but is no
 * guarantee against a frame chain that is garbage (code built without
 * frame pointers).  pc == 0 gives an empty walk. */
void weft__unwind_init(weft__unwinder *u, uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi);

/* Starts at the return address pc, where the caller's stack pointer is sp
 * and its frame pointer fp (the other registers unknown), on the stack
 * [lo, hi): a call that has not returned yet, such as a goroutine's
 * weft_syscall_enter.  A DWARF walk when it can, else as weft__unwind_init. */
void weft__unwind_init_regs(weft__unwinder *u, uintptr_t pc, uintptr_t sp, uintptr_t fp, uintptr_t lo,
                            uintptr_t hi);

/* Starts at a context weft__swapctx saved at sp (a switched-out
 * goroutine), on the stack [lo, hi): its first pc is the return address
 * into the code that switched, and every register the switch saved is
 * known, so a goroutine parked deep in code without frame pointers
 * unwinds whole. */
void weft__unwind_init_ctx(weft__unwinder *u, uintptr_t sp, uintptr_t lo, uintptr_t hi,
                           uintptr_t copy);
/* copy != 0: the stack is compacted (runtime/stack.c) and its live part,
 * [sp, hi), is read at copy instead; the walk reads nothing below sp.
 * weft__unwind_alias does the same for a frame-pointer walk that
 * weft__unwind_init started at a frame of that stack. */
void weft__unwind_alias(weft__unwinder *u, uintptr_t sp, uintptr_t copy);

/* Starts at the context a signal handler's uctx (a ucontext_t) says the
 * thread was interrupted in, on the stack [lo, hi): the exact pc first.
 * With DWARF every register is known and prologues, epilogues and leaves
 * need nothing special.  With frame pointers, when that pc is in a
 * function's prologue or epilogue, or in a leaf function without a frame
 * record, the frame pointer still names the caller's frame and a plain
 * walk would skip the caller; its return address is then recovered from
 * the stack pointer or link register. */
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

/* Go's runtime.Callers: up to max return addresses of the current call
 * chain, pcs[0] being the one into the function that calls weft__callers,
 * after dropping skip of them.  [lo, hi) as for weft__unwind_init_self.
 * The same pcs as that walk, faster: it steps by the recipes unwind.c
 * learned, without a libunwind cursor (the tracer calls it per event). */
int weft__callers(int skip, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
    __attribute__((noinline));

/* weft__callers for a caller that maps each walk to something of its own
 * (the tracer: a stack id) and may take that instead of the pcs.  A walk
 * answered by a memo (see unwind.c) carries a tag word for the caller:
 * key in its high half, the caller's value in its low half.  If that
 * memo's tag has key (not 0) in its high half, the walk returns
 * WEFT__CALLERS_TAGGED with *slot at the tag, and pcs unwritten: no pcs to
 * copy, nothing to look up.  Otherwise it returns the pcs, with *slot at
 * the tag of the memo this walk made or matched (the caller stores
 * key << 32 | value there), or NULL if it has none.  The slot is the
 * calling thread's and valid until its next walk. */
#define WEFT__CALLERS_TAGGED (-1)
int weft__callers_tagged(int skip, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max, uint32_t key,
                         uint64_t **slot) __attribute__((noinline));

/* The pc and frame pointer a signal handler's uctx says the thread was
 * interrupted at. */
void weft__sigctx(const void *uctx, uintptr_t *pc, uintptr_t *fp);

/* ... and its stack pointer: which stack it was on (the frame pointer is
 * just another register in code without frame pointers). */
uintptr_t weft__sigctx_sp(const void *uctx);

#endif
