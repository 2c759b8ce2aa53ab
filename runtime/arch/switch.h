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

#endif
