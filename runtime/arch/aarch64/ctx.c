/*
 * ctx.c — AArch64: the initial frame of a fresh goroutine stack.
 * Layout matches switch.S (176 bytes, see the table there).
 */
#include <stdint.h>
#include <string.h>

#include "../switch.h"

enum {
    FRAME_WORDS = WEFT_CTX_FRAME / 8,
    SLOT_FPCR = 0,                  /* sp+0 */
    SLOT_X19 = 2,                   /* sp+16 */
    SLOT_X29 = WEFT_CTX_FP / 8,     /* sp+96 */
    SLOT_X30 = WEFT_CTX_PC / 8,     /* sp+104 */
};

void *weft__ctx_init(void *stack_top, void (*entry)(void))
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top - FRAME_WORDS;
    uint64_t fpcr;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));

    /* Registers start as 0.  swapctx's final ret goes to weft__ctx_start with
     * SP = top (16-byte aligned, as at any function entry), which enters
     * entry() with x29 = 0 and x30 = 0: the frame chain ends at entry()'s
     * frame record, and unwinders stop at the zero return address. */
    memset(sp, 0, FRAME_WORDS * sizeof *sp);
    sp[SLOT_FPCR] = fpcr;
    sp[SLOT_X19] = (uint64_t)(uintptr_t)entry;
    sp[SLOT_X29] = 0;
    sp[SLOT_X30] = (uint64_t)(uintptr_t)weft__ctx_start;
    return sp;
}

/* Not instrumented: a crash's traceback reads the saved context of a
 * goroutine that another M may be running again meanwhile, whose frames
 * now cover it (the walk reads each word once and checks it). */
__attribute__((no_sanitize_address))
void weft__ctx_frame(void *sp, uintptr_t *pc, uintptr_t *fp)
{
    const uint64_t *f = sp;
    *fp = (uintptr_t)f[SLOT_X29];
    *pc = (uintptr_t)f[SLOT_X30];
}
