/*
 * AArch64 (AAPCS64) context switch.  See runtime/arch/switch.h.
 *
 * Callee-saved state: x19-x28, x29 (frame pointer), x30 (link register:
 * where this context resumes), the low 64 bits of v8-v15 (d8-d15) and FPCR.
 * The stack pointer itself is the context handle.
 *
 * Saved frame, from the saved SP upwards (176 bytes, a multiple of 16 so
 * SP stays 16-byte aligned as the architecture requires):
 *
 *     sp+0    FPCR (8 bytes; the register is 32 bits wide, upper half 0)
 *     sp+8    0 (pad)
 *     sp+16   x19, x20
 *     sp+32   x21, x22
 *     sp+48   x23, x24
 *     sp+64   x25, x26
 *     sp+80   x27, x28
 *     sp+96   x29 (frame pointer)
 *     sp+104  x30 (link register: the "return address" ret jumps to)
 *     sp+112  d8,  d9
 *     sp+128  d10, d11
 *     sp+144  d12, d13
 *     sp+160  d14, d15
 *     sp+176  (the caller's frame; SP after the restoring ret)
 *
 * weft__ctx_init (ctx.c) builds the same frame on a fresh stack, with
 * x30 = weft__ctx_start and x19 = entry: the first switch "returns" into the
 * trampoline below, which clears x19 and x30 and jumps to entry(), so that
 * entry() begins with x29 = 0 and x30 = 0 and its frame record ends the
 * frame chain (a ret straight to entry would leave x30 = entry instead).
 *
 * FPCR is saved on every switch but only written when the incoming value
 * differs from the current one: msr fpcr is a serialising write on many
 * cores, and in practice every goroutine runs with the same FP modes.
 */
#define WEFT_FRAME 176

        .text
        .globl  weft__swapctx
        .hidden weft__swapctx
        .type   weft__swapctx, %function
        .p2align 4
weft__swapctx:                          /* x0 = void **save_sp, x1 = void *next_sp */
        /* CFI: the frame is the same on both sides of the switch (ours
         * while we store, the other context's while we load), so rules
         * relative to sp describe whichever context the stack belongs to:
         * gdb, perf --call-graph dwarf or libunwind stopping anywhere in
         * here unwind into the right caller. */
        .cfi_startproc
#if defined(__ARM_FEATURE_BTI_DEFAULT)
        hint    #34                     /* bti c: we may be reached by blr */
#endif
        sub     sp, sp, #WEFT_FRAME
        .cfi_def_cfa_offset WEFT_FRAME
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     x29, x30, [sp, #96]
        .cfi_offset x19, -160
        .cfi_offset x20, -152
        .cfi_offset x21, -144
        .cfi_offset x22, -136
        .cfi_offset x23, -128
        .cfi_offset x24, -120
        .cfi_offset x25, -112
        .cfi_offset x26, -104
        .cfi_offset x27, -96
        .cfi_offset x28, -88
        .cfi_offset x29, -80
        .cfi_offset x30, -72
        stp     d8,  d9,  [sp, #112]
        stp     d10, d11, [sp, #128]
        stp     d12, d13, [sp, #144]
        stp     d14, d15, [sp, #160]
        .cfi_offset d8,  -64
        .cfi_offset d9,  -56
        .cfi_offset d10, -48
        .cfi_offset d11, -40
        .cfi_offset d12, -32
        .cfi_offset d13, -24
        .cfi_offset d14, -16
        .cfi_offset d15, -8
        mrs     x9, fpcr                /* x9 = our FPCR */
        stp     x9, xzr, [sp]
        mov     x10, sp
        str     x10, [x0]               /* *save_sp = sp */
        mov     sp, x1                  /* now on the other context's stack (same frame layout) */
        ldr     x10, [sp]               /* x10 = its FPCR */
        cmp     x9, x10
        .cfi_remember_state
        b.ne    2f                      /* rare: the other context uses other FP modes */
1:      ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     x29, x30, [sp, #96]
        ldp     d8,  d9,  [sp, #112]
        ldp     d10, d11, [sp, #128]
        ldp     d12, d13, [sp, #144]
        ldp     d14, d15, [sp, #160]
        add     sp, sp, #WEFT_FRAME
        /* The frame is gone (below SP, where a signal may overwrite it):
         * from here every register, x30 the return address included,
         * holds its caller's value. */
        .cfi_def_cfa_offset 0
        .cfi_restore x19
        .cfi_restore x20
        .cfi_restore x21
        .cfi_restore x22
        .cfi_restore x23
        .cfi_restore x24
        .cfi_restore x25
        .cfi_restore x26
        .cfi_restore x27
        .cfi_restore x28
        .cfi_restore x29
        .cfi_restore x30
        .cfi_restore d8
        .cfi_restore d9
        .cfi_restore d10
        .cfi_restore d11
        .cfi_restore d12
        .cfi_restore d13
        .cfi_restore d14
        .cfi_restore d15
        ret                             /* to x30: the resumed caller, or weft__ctx_start (fresh context) */
2:      .cfi_restore_state              /* the whole frame, as before the b.ne */
        msr     fpcr, x10
        b       1b
        .cfi_endproc
        .size   weft__swapctx, .-weft__swapctx

/* First code of a fresh context; see weft__ctx_init.  x19 = entry. */
        .globl  weft__ctx_start
        .hidden weft__ctx_start
        .type   weft__ctx_start, %function
        .p2align 4
weft__ctx_start:
        .cfi_startproc
        .cfi_undefined x30              /* outermost frame: unwinders stop here */
        mov     x16, x19                /* x16: a br through it may land on "bti c" */
        mov     x19, xzr
        mov     x29, xzr
        mov     x30, xzr
        br      x16
        .cfi_endproc
        .size   weft__ctx_start, .-weft__ctx_start

        .section .note.GNU-stack,"",%progbits

#if defined(__ARM_FEATURE_BTI_DEFAULT) || defined(__ARM_FEATURE_PAC_DEFAULT)
/* Tell the linker this object is BTI/PAC-compatible, so that building with
 * -mbranch-protection=standard keeps the property for the whole binary. */
#define GNU_PROPERTY_AARCH64_FEATURE_1_AND 0xc0000000
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define WEFT_BTI 1
#else
#define WEFT_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT)
#define WEFT_PAC 2
#else
#define WEFT_PAC 0
#endif
        .section .note.gnu.property, "a"
        .p2align 3
        .word   4                       /* name size ("GNU\0") */
        .word   16                      /* descriptor size */
        .word   5                       /* NT_GNU_PROPERTY_TYPE_0 */
        .asciz  "GNU"
        .word   GNU_PROPERTY_AARCH64_FEATURE_1_AND
        .word   4                       /* pr_datasz */
        .word   (WEFT_BTI | WEFT_PAC)
        .word   0                       /* pad to 8 */
#endif
