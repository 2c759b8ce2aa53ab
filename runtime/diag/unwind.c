/*
 * unwind.c — the one stack walker (unwind.h): frame pointers, bounded by
 * the stack being walked, with the prologue, epilogue and leaf cases of an
 * interrupted context recovered from the stack pointer or link register.
 *
 *   frame record at fp:  fp[0] = the caller's frame pointer
 *                        fp[1] = the return address into the caller
 *
 * x86-64 (push %rbp; mov %rsp,%rbp) and AArch64 (stp x29, x30, [sp, #-n]!;
 * mov x29, sp) lay it out the same way.
 */
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "unwind.h"

#include <valgrind/memcheck.h>

/* The window a walk of a stack with unknown bounds may read (unwind.h). */
#define UNKNOWN_STACK (8u << 20)

static int inside(uintptr_t a, uintptr_t lo, uintptr_t hi) { return lo && a >= lo && a < hi; }

/* ---- the frame chain ------------------------------------------------------------- */

/* The return address in the frame record at u->fp, moving u->fp to the
 * caller's record; 0 at the end of the chain. */
WEFT_NO_ASAN static uintptr_t fpnext(weft__unwinder *u)
{
    uintptr_t fp = u->fp;
    if (u->hi - u->lo < 2 * sizeof(uintptr_t) || fp < u->lo || fp > u->hi - 2 * sizeof(uintptr_t) ||
        (fp & (sizeof(uintptr_t) - 1)))
        return 0;
    const uintptr_t *f = (const uintptr_t *)fp;
    uintptr_t next = f[0], ret = f[1];
    /* The chain climbs the stack; anything else ends it. */
    u->fp = next > fp ? next : 0;
    return ret;
}

void weft__unwind_init(weft__unwinder *u, uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
    if (!lo) {
        lo = fp;
        hi = fp + UNKNOWN_STACK;
    }
    u->lo = lo;
    u->hi = hi;
    u->fp = pc ? fp : 0;
    u->pc[0] = pc;
    u->pc[1] = 0;
    u->npc = pc ? 1 : 0;
}

uintptr_t weft__unwind_next(weft__unwinder *u)
{
    if (u->npc > 0) {
        uintptr_t pc = u->pc[0];
        u->pc[0] = u->pc[1];
        u->npc--;
        return pc;
    }
    return fpnext(u);
}

int weft__unwind_pcs(weft__unwinder *u, uintptr_t *pcs, int max)
{
    int n = 0;
    uintptr_t pc;
    while (n < max && (pc = weft__unwind_next(u)) != 0)
        pcs[n++] = pc;
    return n;
}

int weft__unwind(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
{
    weft__unwinder u;
    weft__unwind_init(&u, pc, fp, lo, hi);
    return weft__unwind_pcs(&u, pcs, max);
}

/* ---- from the running code --------------------------------------------------------- */

WEFT_NO_ASAN __attribute__((noinline)) void weft__unwind_init_self(weft__unwinder *u, int skip,
                                                                   uintptr_t lo, uintptr_t hi)
{
    /* Our own frame record: the return address into our caller, and our
     * caller's record, which stays valid after we return (our caller is
     * still running). */
    uintptr_t *fp = __builtin_frame_address(0);
    if (!inside((uintptr_t)fp, lo, hi))
        lo = hi = 0;
    weft__unwind_init(u, fp[1], fp[0], lo, hi);
    while (skip-- > 0 && weft__unwind_next(u))
        ;
}

__attribute__((noinline)) int weft__callers(int skip, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
{
    weft__unwinder u;
    weft__unwind_init_self(&u, skip + 1, lo, hi);   /* + 1: not weft__callers itself */
    return weft__unwind_pcs(&u, pcs, max);
}

/* ---- from a signal context ------------------------------------------------------------ */

void weft__sigctx(const void *uctx, uintptr_t *pc, uintptr_t *fp)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
#error "weft: no signal context accessors for this architecture"
#endif
}

/* Where the return address is when pc is in a function's prologue or
 * epilogue, before its frame record exists or after it is gone (then the
 * frame pointer still names the caller's frame, and the walk would skip
 * the caller): an offset from SP, or -1 when the frame record is in place.
 * x86-64: at endbr64 / push %rbp (entry), mov %rsp,%rbp (after the push),
 * ret (after pop %rbp).  AArch64: at stp x29, x30, [sp, #-n]! (entry) or
 * ret, where the link register holds it (-2). */
static int retaddr_at(uintptr_t pc)
{
#if defined(__x86_64__)
    const uint8_t *i = (const uint8_t *)pc;
    if (i[0] == 0x55 || i[0] == 0xc3 || (i[0] == 0xf3 && i[1] == 0x0f && i[2] == 0x1e && i[3] == 0xfa))
        return 0;
    if (i[0] == 0x48 && i[1] == 0x89 && i[2] == 0xe5)
        return 8;
#elif defined(__aarch64__)
    uint32_t i = *(const uint32_t *)pc;
    if ((i & 0xffc07fffu) == 0xa9807bfdu || i == 0xd65f03c0u)
        return -2;
#endif
    return -1;
}

/* Reads n bytes at addr without faulting (process_vm_readv on ourselves
 * fails with EFAULT on an unmapped address): async-signal-safe. */
static int saferead(uintptr_t addr, void *buf, size_t n)
{
    struct iovec local = { .iov_base = buf, .iov_len = n };
    struct iovec remote = { .iov_base = (void *)addr, .iov_len = n };
    return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) == (long)n;
}

/* A leaf function without a frame record (GCC omits it in leaves even
 * with -fno-omit-frame-pointer): the frame pointer still names its
 * caller's frame, so the walk would skip the caller.  ret is the return
 * address the leaf would have (x86-64: [sp]; AArch64: the link register);
 * believe it when the instruction before it is a direct call to a function
 * that starts at most 64 KiB before pc. */
static int leafcall(uintptr_t ret, uintptr_t pc)
{
#if defined(__x86_64__)
    uint8_t ins[5];
    if (ret < 5 || !saferead(ret - 5, ins, 5) || ins[0] != 0xe8)
        return 0;
    int32_t rel;
    memcpy(&rel, ins + 1, 4);
    uintptr_t target = ret + (uintptr_t)(intptr_t)rel;
#elif defined(__aarch64__)
    uint32_t ins;
    if (ret < 4 || !saferead(ret - 4, &ins, 4) || (ins & 0xfc000000u) != 0x94000000u)
        return 0;
    int64_t imm = (int64_t)((ins & 0x03ffffffu) << 6) >> 4;    /* imm26 * 4, sign-extended */
    uintptr_t target = ret - 4 + (uintptr_t)imm;
#endif
    return target <= pc && pc - target < 65536;
}

WEFT_NO_ASAN void weft__unwind_init_sigctx(weft__unwinder *u, const void *uctx, uintptr_t lo, uintptr_t hi)
{
    const ucontext_t *uc = uctx;
    uintptr_t pc, fp;
    weft__sigctx(uctx, &pc, &fp);
    weft__unwind_init(u, pc, fp, lo, hi);
    if (!pc)
        return;
    int off = retaddr_at(pc);
    uintptr_t ret = 0;
#if defined(__x86_64__)
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    if (off >= 0 && inside(sp + (uintptr_t)off, lo, hi)) {
        ret = *(const uintptr_t *)(sp + (uintptr_t)off);
    } else if (off == -1 && inside(sp, lo, hi)) {
        /* the word at SP may be anything (it is only a guess until
         * leafcall has checked it): tell valgrind we know */
        uintptr_t cand = *(const uintptr_t *)sp;
        VALGRIND_MAKE_MEM_DEFINED(&cand, sizeof cand);
        if (leafcall(cand, pc))
            ret = cand;
    }
#else
    uintptr_t lr = (uintptr_t)uc->uc_mcontext.regs[30];
    if (off != -1 || leafcall(lr, pc))
        ret = lr;
#endif
    if (ret) {
        /* the caller's frame record is what fp names: continue from there */
        u->pc[1] = ret;
        u->npc = 2;
    }
}
