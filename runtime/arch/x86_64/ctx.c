/*
 * ctx.c — x86-64: the initial frame of a fresh goroutine stack.
 * Layout matches switch.S.
 */
#include <stdint.h>
#include <string.h>

#include "../switch.h"

void *weft__ctx_init(void *stack_top, void (*entry)(void))
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    uint32_t mxcsr;
    uint16_t fpucw;

    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));

    /* entry() sees [sp] = 0 as its return address: at a function's entry
     * rsp + 8 is 16-byte aligned, and unwinders stop at a zero return PC. */
    *--sp = 0;
    *--sp = (uint64_t)(uintptr_t)entry;   /* popped by swapctx's ret */
    *--sp = 0;                            /* rbp: the frame-pointer chain ends here */
    *--sp = 0;                            /* rbx */
    *--sp = 0;                            /* r12 */
    *--sp = 0;                            /* r13 */
    *--sp = 0;                            /* r14 */
    *--sp = 0;                            /* r15 */
    *--sp = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    return sp;
}

/* Not instrumented: a crash's traceback reads the saved context of a
 * goroutine that another M may be running again meanwhile, whose frames
 * now cover it (the walk reads each word once and checks it). */
__attribute__((no_sanitize_address))
void weft__ctx_frame(void *sp, uintptr_t *pc, uintptr_t *fp)
{
    const char *f = sp;
    *fp = (uintptr_t)*(const uint64_t *)(f + WEFT_CTX_FP);   /* rbp */
    *pc = (uintptr_t)*(const uint64_t *)(f + WEFT_CTX_PC);   /* return address */
}
