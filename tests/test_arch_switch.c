/*
 * test_arch_switch.c — standalone test of the machine-dependent context
 * switch (runtime/arch/<cpu>/switch.S + ctx.c), no other weft code.
 *
 * Plain C with its own checks (Criterion has no arm64 package), so it runs
 * natively and under qemu-aarch64:
 *
 *   cc -O2 -Wall -Wextra -Werror -fno-omit-frame-pointer -Iruntime \
 *      tests/test_arch_switch.c runtime/arch/$CPU/switch.S runtime/arch/$CPU/ctx.c -lm
 *
 * Three contexts (the main thread's stack, A and B on heap stacks) ping-pong
 * in a ring main -> A -> B -> main, ROUNDS times.  On every switch each
 * context checks that its callee-saved registers survived (pinned by inline
 * asm around the call, and as the compiler allocates many live integer and
 * double locals), and that its own rounding mode is in force.  For the first
 * half all run in round-to-nearest (swapctx's no-FP-load fast path); then A
 * switches to upward and B to downward, so every switch loads other FP
 * control words.  Fresh contexts check their stack alignment and that the
 * frame-pointer chain ends in 0, and that they inherit the FP modes of the
 * thread that called weft__ctx_init.  Meanwhile a CPU-time timer samples
 * the ring: every sample that lands inside weft__swapctx (on either side
 * of the stack switch) unwinds with libgcc's DWARF unwinder through the
 * switch's CFI into the code that called it, and the unwind ends cleanly
 * (end of stack, not an error or a garbage frame).
 */
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unwind.h>

#include "arch/switch.h"

#define ROUNDS 100000
#define STACK_SIZE (256 * 1024)

/* ---- tiny harness --------------------------------------------------------- */

enum {
    T_PINGPONG,
    T_GPR_ASM,
    T_FP_ASM,
    T_GPR_LOCALS,
    T_FP_LOCALS,
    T_ROUNDING,
    T_INHERIT_FP,
    T_ALIGN,
    T_FRAME_CHAIN,
    T_NO_WRITE_ABOVE_TOP,
    T_UNWIND,
    T_COUNT
};
static const char *const test_names[T_COUNT] = {
    "pingpong", "gpr_asm", "fp_asm", "gpr_locals", "fp_locals", "rounding",
    "inherit_fp", "align", "frame_chain", "no_write_above_top", "unwind",
};
static unsigned long checks[T_COUNT], failures[T_COUNT];

#define CHECK(t, cond)                                                          \
    do {                                                                        \
        checks[t]++;                                                            \
        if (!(cond) && failures[t]++ < 5)                                       \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, \
                    test_names[t], #cond);                                      \
    } while (0)

/* ---- callee-saved registers pinned with inline asm -------------------------
 *
 * Loads a pattern derived from seed into every callee-saved register the
 * compiler lets us clobber, calls weft__swapctx directly from the asm, and
 * stores the registers to out[] afterwards.  The other contexts load their
 * own patterns meanwhile, so a register the switch fails to save/restore
 * shows up as another context's value (or the crash of a bad out pointer:
 * the out pointer itself lives in a callee-saved register across the call).
 * The frame pointer cannot be clobbered by asm; it is covered by every
 * access to a local after a switch and by the frame-chain checks.
 */
#define PATTERN_WORDS 18   /* out pointer, 9 GPR patterns, 8 FP patterns */

#if defined(__aarch64__)
static void __attribute__((noinline))
swap_pattern(void **save, void *next, uint64_t *out, uint64_t seed)
{
    register void **x0 __asm__("x0") = save;
    register void *x1 __asm__("x1") = next;
    register uint64_t *x2 __asm__("x2") = out;
    register uint64_t x3 __asm__("x3") = seed;
    __asm__ volatile(
        "mov  x19, x2\n\t"
        "mov  x20, x3\n\t"
        "add  x21, x3, #1\n\t"
        "add  x22, x3, #2\n\t"
        "add  x23, x3, #3\n\t"
        "add  x24, x3, #4\n\t"
        "add  x25, x3, #5\n\t"
        "add  x26, x3, #6\n\t"
        "add  x27, x3, #7\n\t"
        "add  x28, x3, #8\n\t"
        "fmov d8,  x20\n\t"
        "fmov d9,  x21\n\t"
        "fmov d10, x22\n\t"
        "fmov d11, x23\n\t"
        "fmov d12, x24\n\t"
        "fmov d13, x25\n\t"
        "fmov d14, x26\n\t"
        "fmov d15, x27\n\t"
        "bl   weft__swapctx\n\t"
        "stp  x19, x20, [x19, #0]\n\t"
        "stp  x21, x22, [x19, #16]\n\t"
        "stp  x23, x24, [x19, #32]\n\t"
        "stp  x25, x26, [x19, #48]\n\t"
        "stp  x27, x28, [x19, #64]\n\t"
        "stp  d8,  d9,  [x19, #80]\n\t"
        "stp  d10, d11, [x19, #96]\n\t"
        "stp  d12, d13, [x19, #112]\n\t"
        "stp  d14, d15, [x19, #128]\n\t"
        : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3)
        :
        : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
          "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24",
          "x25", "x26", "x27", "x28", "x30",
          "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",
          "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20",
          "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30",
          "v31", "cc", "memory");
}
#define PATTERN_GPRS 9
#define PATTERN_FPRS 8
#elif defined(__x86_64__)
static void __attribute__((noinline))
swap_pattern(void **save, void *next, uint64_t *out, uint64_t seed)
{
    /* rbp is the frame pointer and cannot be clobbered; there are no
     * callee-saved vector registers in the System V ABI. */
    __asm__ volatile(
        "movq %%rdx, %%rbx\n\t"
        "movq %%rcx, %%r12\n\t"
        "leaq 1(%%rcx), %%r13\n\t"
        "leaq 2(%%rcx), %%r14\n\t"
        "leaq 3(%%rcx), %%r15\n\t"
        "leaq -128(%%rsp), %%rsp\n\t"   /* step over the red zone */
        "call weft__swapctx\n\t"
        "leaq 128(%%rsp), %%rsp\n\t"
        "movq %%rbx, 0(%%rbx)\n\t"
        "movq %%r12, 8(%%rbx)\n\t"
        "movq %%r13, 16(%%rbx)\n\t"
        "movq %%r14, 24(%%rbx)\n\t"
        "movq %%r15, 32(%%rbx)\n\t"
        : "+D"(save), "+S"(next), "+d"(out), "+c"(seed)
        :
        : "rax", "rbx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
          "cc", "memory");
}
#define PATTERN_GPRS 4
#define PATTERN_FPRS 0
#else
#error "test_arch_switch: no register-pattern switch for this CPU"
#endif

static void check_pattern(const uint64_t *out, uint64_t seed)
{
    CHECK(T_GPR_ASM, out[0] == (uint64_t)(uintptr_t)out);
    for (int k = 0; k < PATTERN_GPRS; k++)
        CHECK(T_GPR_ASM, out[1 + k] == seed + (uint64_t)k);
    for (int k = 0; k < PATTERN_FPRS; k++)
        CHECK(T_FP_ASM, out[1 + PATTERN_GPRS + k] == seed + (uint64_t)k);
}

/* One switch through the asm pattern. */
static void switch_pattern(void **save, void *next, uint64_t seed)
{
    uint64_t out[PATTERN_WORDS];
    memset(out, 0, sizeof out);
    swap_pattern(save, next, out, seed);
    check_pattern(out, seed);
}

/* ---- callee-saved registers as the compiler allocates them -----------------
 *
 * Twelve integer and eight double values, made opaque with empty asm so the
 * compiler must keep them (in callee-saved registers, or spilled to the
 * stack) across the call instead of recomputing them from seed.
 */
#if defined(__aarch64__)
#define FPREG "+w"
#elif defined(__x86_64__)
#define FPREG "+x"
#endif

static void __attribute__((noinline))
switch_locals(void **save, void *next, uint64_t seed)
{
    uint64_t a0 = seed * 3 + 1, a1 = seed ^ 0x5555, a2 = seed + 77, a3 = ~seed;
    uint64_t a4 = seed << 3, a5 = seed * 7, a6 = seed - 1, a7 = seed | 0x8000;
    uint64_t a8 = seed * 11, a9 = seed + 0x1234567, a10 = seed ^ ~0ull, a11 = seed * 13 + 5;
    double f0 = (double)seed * 0.5, f1 = (double)seed + 0.25, f2 = (double)seed * 3.0;
    double f3 = -(double)seed, f4 = (double)seed + 1e9, f5 = (double)seed * 1e-3;
    double f6 = (double)seed - 0.125, f7 = (double)seed * 2.0 + 1.0;

    __asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5),
                          "+r"(a6), "+r"(a7), "+r"(a8), "+r"(a9), "+r"(a10), "+r"(a11));
    __asm__ volatile("" : FPREG(f0), FPREG(f1), FPREG(f2), FPREG(f3),
                          FPREG(f4), FPREG(f5), FPREG(f6), FPREG(f7));
    weft__swapctx(save, next);
    __asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5),
                          "+r"(a6), "+r"(a7), "+r"(a8), "+r"(a9), "+r"(a10), "+r"(a11));
    __asm__ volatile("" : FPREG(f0), FPREG(f1), FPREG(f2), FPREG(f3),
                          FPREG(f4), FPREG(f5), FPREG(f6), FPREG(f7));

    CHECK(T_GPR_LOCALS, a0 == seed * 3 + 1 && a1 == (seed ^ 0x5555) && a2 == seed + 77 &&
                        a3 == ~seed && a4 == seed << 3 && a5 == seed * 7 && a6 == seed - 1 &&
                        a7 == (seed | 0x8000) && a8 == seed * 11 && a9 == seed + 0x1234567 &&
                        a10 == (seed ^ ~0ull) && a11 == seed * 13 + 5);
    /* The doubles were computed and are compared in this context's rounding
     * mode; equal operations give equal results. */
    CHECK(T_FP_LOCALS, f0 == (double)seed * 0.5 && f1 == (double)seed + 0.25 &&
                       f2 == (double)seed * 3.0 && f3 == -(double)seed &&
                       f4 == (double)seed + 1e9 && f5 == (double)seed * 1e-3 &&
                       f6 == (double)seed - 0.125 && f7 == (double)seed * 2.0 + 1.0);
}

/* ---- rounding mode -------------------------------------------------------- */

/* 1/3, 1/10 and -1/3 in the current rounding mode (volatile: computed at
 * run time).  The triple tells all four IEEE modes apart: to nearest, 1/3
 * rounds down and 1/10 up; -1/3 separates downward from toward-zero. */
typedef struct probe { double a, b, c; } probe;

static probe rounding_probe(void)
{
    volatile double one = 1.0, three = 3.0, ten = 10.0;
    probe p = {one / three, one / ten, -one / three};
    return p;
}

static int probe_eq(probe x, probe y)
{
    return x.a == y.a && x.b == y.b && x.c == y.c;
}

/* ---- fresh-context checks -------------------------------------------------- */

static void __attribute__((noinline)) check_alignment(void)
{
    /* aligned(16) is the ABI stack alignment, so the compiler does not
     * realign: buf is misaligned exactly when the incoming SP was. */
    char buf[16] __attribute__((aligned(16)));
    uintptr_t p = (uintptr_t)buf;
    __asm__ volatile("" : "+r"(p));
    CHECK(T_ALIGN, (p & 15) == 0);
    /* varargs with a double: x86-64 glibc uses movaps on the stack here,
     * which faults on a misaligned stack. */
    char s[32];
    snprintf(s, sizeof s, "%.3f", 2.5);
    CHECK(T_ALIGN, strcmp(s, "2.500") == 0);
#if defined(__aarch64__)
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    CHECK(T_ALIGN, (sp & 15) == 0);
#endif
}

/* Walks the frame-pointer chain from a function called by a fresh context's
 * entry: caller frames are this one, entry()'s, and entry()'s record must
 * hold a zero saved frame pointer and a zero return address. */
static void __attribute__((noinline)) check_frame_chain(void *entry_frame)
{
    void **fp = __builtin_frame_address(0);
    int depth = 0;
    CHECK(T_FRAME_CHAIN, fp != NULL);
    while (fp != NULL && depth < 8) {
        if (fp == entry_frame)
            break;
        fp = (void **)fp[0];
        depth++;
    }
    CHECK(T_FRAME_CHAIN, fp == entry_frame);
    if (fp == entry_frame) {
        CHECK(T_FRAME_CHAIN, fp[0] == NULL);   /* saved caller frame pointer */
#if defined(__aarch64__) && defined(__ARM_FEATURE_PAC_DEFAULT)
        /* a signed zero: strip the PAC bits before comparing */
        register void *lr __asm__("x30") = fp[1];
        __asm__("hint #7" : "+r"(lr));   /* xpaclri: strip x30 (ARMv8.0 encoding) */
        CHECK(T_FRAME_CHAIN, lr == NULL);
#else
        CHECK(T_FRAME_CHAIN, fp[1] == NULL);   /* return address */
#endif
    }
}

static void fresh_context_checks(void *entry_frame)
{
    CHECK(T_ALIGN, ((uintptr_t)entry_frame & 15) == 0);
    check_alignment();
    check_frame_chain(entry_frame);
}

/* ---- DWARF unwinding through the switch ------------------------------------- */

/* Whether ret is the return address of a direct call of weft__swapctx. */
static int returns_from_swapctx(uintptr_t ret)
{
#if defined(__x86_64__)
    const unsigned char *i = (const unsigned char *)ret - 5;
    int32_t rel;
    memcpy(&rel, i + 1, 4);
    return i[0] == 0xe8 && ret + (uintptr_t)(intptr_t)rel == (uintptr_t)weft__swapctx;
#elif defined(__aarch64__)
    uint32_t i;
    memcpy(&i, (const void *)(ret - 4), 4);
    int64_t imm = (int64_t)((uint64_t)(i & 0x03ffffffu) << 38) >> 36;     /* imm26 * 4 */
    return (i & 0xfc000000u) == 0x94000000u && ret - 4 + (uintptr_t)imm == (uintptr_t)weft__swapctx;
#else
    (void)ret;
    return 1;
#endif
}

struct uwalk {
    int n;
    int inswitch;       /* index of the frame inside weft__swapctx, -1 if none */
    uintptr_t ip[64];
};

static _Unwind_Reason_Code uwalk_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct uwalk *w = arg;
    if (w->n == 64)
        return _URC_NORMAL_STOP;
    if (w->inswitch < 0 && _Unwind_GetRegionStart(ctx) == (uintptr_t)weft__swapctx)
        w->inswitch = w->n;
    w->ip[w->n++] = _Unwind_GetIP(ctx);
    return _URC_NO_REASON;
}

static volatile sig_atomic_t switch_samples;

static void sample(int sig)
{
    (void)sig;
    struct uwalk w = { .inswitch = -1 };
    _Unwind_Reason_Code r = _Unwind_Backtrace(uwalk_frame, &w);
    if (w.inswitch < 0)
        return;     /* elsewhere in the ring: not what this checks */
    switch_samples++;
    /* the caller of the switch, then on to the end of the stack */
    CHECK(T_UNWIND, w.inswitch + 1 < w.n && returns_from_swapctx(w.ip[w.inswitch + 1]));
    CHECK(T_UNWIND, r == _URC_END_OF_STACK);
}

/* ---- the ring --------------------------------------------------------------- */

enum { CTX_MAIN, CTX_A, CTX_B, CTX_C, NCTX };

static void *sp_of[NCTX];
static int ring_next[3] = {CTX_A, CTX_B, CTX_MAIN};
static int mode_of[3];                 /* rounding mode each ring member expects */
static probe probe_of[3];              /* rounding_probe() in that mode */
static int ran[NCTX];                  /* iterations done, per context */
static uint64_t entry_marks;

static const int phase2_mode[3] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD};

/* One ring step for context id: switch on, alternating the two ways. */
static void ring_step(int id, int i)
{
    uint64_t seed = ((uint64_t)id << 56) ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);

    if (i == ROUNDS / 2) {
        /* phase 2: A and B leave round-to-nearest */
        fesetround(phase2_mode[id]);
        mode_of[id] = phase2_mode[id];
        probe_of[id] = rounding_probe();
    }
    if (i & 1)
        switch_pattern(&sp_of[id], sp_of[ring_next[id]], seed);
    else
        switch_locals(&sp_of[id], sp_of[ring_next[id]], seed);

    CHECK(T_ROUNDING, fegetround() == mode_of[id]);
    CHECK(T_ROUNDING, probe_eq(rounding_probe(), probe_of[id]));
    ran[id]++;
}

static void ring_member(int id) __attribute__((noreturn));
static void ring_member(int id)
{
    mode_of[id] = fegetround();
    probe_of[id] = rounding_probe();
    for (int i = 0;; i++)
        ring_step(id, i);   /* main stops resuming us after ROUNDS */
}

static void __attribute__((noreturn)) entry_a(void)
{
    void *fp = __builtin_frame_address(0);
    entry_marks |= 1;
    fresh_context_checks(fp);
    ring_member(CTX_A);
}

static void __attribute__((noreturn)) entry_b(void)
{
    void *fp = __builtin_frame_address(0);
    entry_marks |= 2;
    fresh_context_checks(fp);
    ring_member(CTX_B);
}

/* C: created while the thread ran in FE_TOWARDZERO; must start in it. */
static int c_saw_mode = -1;
static probe c_probe;
static void __attribute__((noreturn)) entry_c(void)
{
    void *fp = __builtin_frame_address(0);
    c_saw_mode = fegetround();
    c_probe = rounding_probe();
    entry_marks |= 4;
    fresh_context_checks(fp);
    fesetround(FE_UPWARD);              /* must not leak into main */
    for (;;) {
        weft__swapctx(&sp_of[CTX_C], sp_of[CTX_MAIN]);
        CHECK(T_INHERIT_FP, fegetround() == FE_UPWARD);   /* resumed in its own mode */
    }
}

static unsigned char *new_stack(unsigned char **top_out, unsigned misalign)
{
    unsigned char *base = aligned_alloc(64, STACK_SIZE);
    if (base == NULL) {
        perror("aligned_alloc");
        exit(2);
    }
    memset(base, 0xA5, STACK_SIZE);
    *top_out = base + STACK_SIZE - 64 - misalign;   /* canary bytes above top */
    return base;
}

static int above_top_untouched(const unsigned char *base, const unsigned char *top)
{
    for (const unsigned char *p = top; p < base + STACK_SIZE; p++)
        if (*p != 0xA5)
            return 0;
    return 1;
}

int main(void)
{
    unsigned char *top_a, *top_b, *top_c;
    unsigned char *stack_a = new_stack(&top_a, 0);
    unsigned char *stack_b = new_stack(&top_b, 8);    /* ctx_init must realign */
    unsigned char *stack_c = new_stack(&top_c, 7);

    fesetround(FE_TONEAREST);

    /* C inherits the FP modes in force at weft__ctx_init. */
    fesetround(FE_TOWARDZERO);
    probe probe_rz = rounding_probe();
    sp_of[CTX_C] = weft__ctx_init(top_c, entry_c);
    fesetround(FE_TONEAREST);
    probe probe_rn = rounding_probe();
    CHECK(T_INHERIT_FP, !probe_eq(probe_rn, probe_rz));
    CHECK(T_NO_WRITE_ABOVE_TOP, above_top_untouched(stack_c, top_c));
    weft__swapctx(&sp_of[CTX_MAIN], sp_of[CTX_C]);
    CHECK(T_INHERIT_FP, entry_marks == 4);
    CHECK(T_INHERIT_FP, c_saw_mode == FE_TOWARDZERO);
    CHECK(T_INHERIT_FP, probe_eq(c_probe, probe_rz));
    CHECK(T_INHERIT_FP, fegetround() == FE_TONEAREST);   /* C's FE_UPWARD stayed in C */
    CHECK(T_INHERIT_FP, probe_eq(rounding_probe(), probe_rn));
    weft__swapctx(&sp_of[CTX_MAIN], sp_of[CTX_C]);       /* C resumes in its own mode... */
    CHECK(T_INHERIT_FP, fegetround() == FE_TONEAREST);   /* ...and we get ours back */
    CHECK(T_NO_WRITE_ABOVE_TOP, above_top_untouched(stack_c, top_c));

    /* The ring. */
    sp_of[CTX_A] = weft__ctx_init(top_a, entry_a);
    sp_of[CTX_B] = weft__ctx_init(top_b, entry_b);
    CHECK(T_NO_WRITE_ABOVE_TOP, above_top_untouched(stack_a, top_a));
    CHECK(T_NO_WRITE_ABOVE_TOP, above_top_untouched(stack_b, top_b));
    mode_of[CTX_MAIN] = fegetround();
    probe_of[CTX_MAIN] = rounding_probe();
    signal(SIGPROF, sample);
    struct itimerval it = { .it_interval = { 0, 200 }, .it_value = { 0, 200 } };
    setitimer(ITIMER_PROF, &it, NULL);
    for (int i = 0; i < ROUNDS; i++)
        ring_step(CTX_MAIN, i);
    /* More samples inside the switch if the ring was too quick for
     * them: main and C switch back and forth (for at most 10 s). */
    for (time_t t0 = time(NULL); switch_samples < 20 && time(NULL) - t0 < 10;)
        for (int i = 0; i < 10000; i++)
            weft__swapctx(&sp_of[CTX_MAIN], sp_of[CTX_C]);
    setitimer(ITIMER_PROF, &(struct itimerval){ 0 }, NULL);
    signal(SIGPROF, SIG_IGN);
    CHECK(T_UNWIND, switch_samples > 0);
    CHECK(T_INHERIT_FP, fegetround() == FE_TONEAREST);
    CHECK(T_PINGPONG, entry_marks == 7);
    CHECK(T_PINGPONG, ran[CTX_MAIN] == ROUNDS);
    /* A and B are suspended inside their last step (main's ended the ring) */
    CHECK(T_PINGPONG, ran[CTX_A] == ROUNDS - 1);
    CHECK(T_PINGPONG, ran[CTX_B] == ROUNDS - 1);
    CHECK(T_ROUNDING, mode_of[CTX_A] == FE_UPWARD && mode_of[CTX_B] == FE_DOWNWARD);
    CHECK(T_ROUNDING, !probe_eq(probe_of[CTX_A], probe_of[CTX_MAIN]) &&
                      !probe_eq(probe_of[CTX_B], probe_of[CTX_MAIN]) &&
                      !probe_eq(probe_of[CTX_A], probe_of[CTX_B]));
    CHECK(T_ROUNDING, fegetround() == FE_TONEAREST);
    CHECK(T_NO_WRITE_ABOVE_TOP, above_top_untouched(stack_a, top_a));
    CHECK(T_NO_WRITE_ABOVE_TOP, above_top_untouched(stack_b, top_b));

    /* A, B and C stay suspended forever; their stacks are not freed. */
    int passed = 0, failed = 0;
    for (int t = 0; t < T_COUNT; t++) {
        if (t == T_FP_ASM && PATTERN_FPRS == 0)
            continue;   /* no callee-saved FP registers in this ABI */
        if (failures[t] == 0 && checks[t] > 0) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "test_arch_switch: FAIL %s (%lu of %lu checks failed)\n",
                    test_names[t], failures[t], checks[t]);
        }
    }
    printf("test_arch_switch: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
