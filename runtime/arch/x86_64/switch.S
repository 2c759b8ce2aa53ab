/*
 * x86-64 System V context switch.  See runtime/arch/switch.h.
 *
 * Saved frame, from the saved SP upwards (56 + 8 bytes):
 *
 *     sp+0   MXCSR (4 bytes) | x87 control word (2 bytes) | unused (2 bytes)
 *     sp+8   r15
 *     sp+16  r14
 *     sp+24  r13
 *     sp+32  r12
 *     sp+40  rbx
 *     sp+48  rbp
 *     sp+56  return address
 *
 * weft__ctx_init (ctx.c) builds the same frame on a fresh stack.
 */
        .text
        .globl  weft__swapctx
        .hidden weft__swapctx
        .type   weft__swapctx, @function
        .p2align 4
weft__swapctx:                          /* rdi = void **save_sp, rsi = void *next_sp */
        /* CFI: the frame is the same on both sides of the switch (ours
         * while we push, the other context's while we pop), so rules
         * relative to rsp describe whichever context the stack belongs
         * to: a debugger, perf --call-graph dwarf or libunwind stopping
         * anywhere in here unwinds into the right caller. */
        .cfi_startproc
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbp, 0
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset rbx, 0
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r12, 0
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r13, 0
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r14, 0
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        .cfi_rel_offset r15, 0
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        /* Read the two words back separately: one 8-byte load spanning
         * both stores would defeat store-to-load forwarding (a stall of
         * a dozen cycles on every switch). */
        movl    (%rsp), %eax            /* eax = our MXCSR */
        movzwl  4(%rsp), %edx           /* dx = our x87 control word */
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp              /* now on the other context's stack (same frame) */
        cmpl    (%rsp), %eax
        .cfi_remember_state
        jne     2f                      /* rare: the other context uses other FP modes */
        cmpw    4(%rsp), %dx
        jne     2f
1:      addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        .cfi_restore r15
        popq    %r14
        .cfi_adjust_cfa_offset -8
        .cfi_restore r14
        popq    %r13
        .cfi_adjust_cfa_offset -8
        .cfi_restore r13
        popq    %r12
        .cfi_adjust_cfa_offset -8
        .cfi_restore r12
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbx
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        .cfi_restore rbp
        /* pop + jmp instead of ret: the return address is not the one our
         * caller's call pushed, so a ret would always miss the CPU's
         * return-stack predictor (measured: 15 ns vs 6.6 ns per switch). */
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmp     *%rcx
2:      .cfi_restore_state
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        jmp     1b
        .cfi_endproc
        .size   weft__swapctx, .-weft__swapctx

        .section .note.GNU-stack,"",@progbits
