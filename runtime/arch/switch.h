/*
 * switch.h — the machine-dependent context switch, one implementation per
 * architecture under arch/<cpu>/ (chosen by CMake).
 *
 * A context is just a saved stack pointer: weft__swapctx pushes the
 * callee-saved registers and the floating-point control words onto the
 * current stack, stores the resulting SP through save_sp, loads next_sp and
 * pops the other context's registers.  Caller-saved registers need no saving:
 * to the compiler, weft__swapctx is an ordinary call that clobbers them.
 *
 * The FP control words (x86-64: MXCSR and the x87 control word; AArch64:
 * FPCR) are saved on every switch but only *loaded* when they differ from the
 * current value: ldmxcsr/fldcw cost tens of nanoseconds, and in practice
 * every goroutine runs with the same rounding mode.
 */
#ifndef WEFT_ARCH_SWITCH_H
#define WEFT_ARCH_SWITCH_H

#include <stdint.h>

/* Saves the running context (SP into *save_sp) and resumes the one saved at
 * next_sp.  Returns when someone switches back to the saved context. */
void weft__swapctx(void **save_sp, void *next_sp);

/* Prepares a fresh stack [.., stack_top) so that the first weft__swapctx to
 * the returned SP enters entry() as if it had been called, with a correctly
 * aligned stack, a zero frame pointer (the frame chain ends there) and the
 * calling thread's current FP control words.  entry must never return. */
void *weft__ctx_init(void *stack_top, void (*entry)(void));

/* The pc and frame pointer a context saved by weft__swapctx resumes with:
 * where a traceback of a switched-out goroutine starts.  For a fresh
 * context from weft__ctx_init, fp is 0. */
void weft__ctx_frame(void *sp, uintptr_t *pc, uintptr_t *fp);

/* The saved frame's layout (the tables at the top of arch/<cpu>/switch.S),
 * for ctx.c and the debug descriptor (debuginfo.c), through which
 * debuggers unwind a switched-out goroutine:
 *   WEFT_CTX_FRAME  the context resumes with SP = saved SP + this
 *   WEFT_CTX_PC     offset from the saved SP of the pc it resumes at
 *   WEFT_CTX_FP     ... of its frame pointer (0 in a fresh context)
 *   WEFT_CTX_REGS   {DWARF register number, offset} of every saved register */
#if defined(__x86_64__)
#define WEFT_CTX_FRAME 64
#define WEFT_CTX_PC    56
#define WEFT_CTX_FP    48
#define WEFT_CTX_REGS  {6, 48}, {3, 40}, {12, 32}, {13, 24}, {14, 16}, {15, 8}
#elif defined(__aarch64__)
#define WEFT_CTX_FRAME 176
#define WEFT_CTX_PC    104
#define WEFT_CTX_FP    96
#define WEFT_CTX_REGS                                                          \
    {19, 16}, {20, 24}, {21, 32}, {22, 40}, {23, 48}, {24, 56}, {25, 64},      \
    {26, 72}, {27, 80}, {28, 88}, {29, 96}, {30, 104},                         \
    {72, 112}, {73, 120}, {74, 128}, {75, 136}, {76, 144}, {77, 152},          \
    {78, 160}, {79, 168}
/* switch.S: a fresh context's first code (clears x19/x29/x30, enters entry). */
void weft__ctx_start(void) __attribute__((visibility("hidden")));
#endif

#endif
