/*
 * test_debuginfo.c — the debug descriptor (diag/debuginfo.h) read as a
 * tool outside the process reads it: only weft_debug_info's addresses,
 * offsets and sizes, never runtime.h.  gdb's extension and weftprof rely
 * on exactly this (their own tests: tools/gdb/tests, tools/weftprof/tests).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <weft.h>

#include "diag/debuginfo.h"

extern const struct weft_debug_info weft_debug_info;
#define D (&weft_debug_info)

/* A field of the struct at addr, as an unsigned integer (little-endian
 * targets: x86-64 and AArch64). */
static uint64_t field(uint64_t addr, weft_debug_field f)
{
    uint64_t v = 0;
    memcpy(&v, (const char *)(uintptr_t)addr + f.off, f.size);
    return v;
}

static uint64_t word(uint64_t addr)
{
    return *(const uint64_t *)(uintptr_t)addr;
}

static const char *reason(uint64_t g)
{
    uint64_t r = field(g, D->g_waitreason);
    cr_assert_lt(r, D->nwaitreasons);
    return (const char *)(uintptr_t)word(D->waitreasons + 8 * r);
}

static const char *gname(uint64_t g)
{
    uint64_t p = field(g, D->g_name);
    return p ? (const char *)(uintptr_t)p : "";
}

/* Counts the goroutines named name that wait with reason why. */
static int count_waiting(const char *name, const char *why)
{
    int n = 0;
    for (uint64_t g = word(D->allg); g; g = field(g, D->g_allglink))
        if (!field(g, D->g_issystem) && field(g, D->g_status) == D->g_status_waiting &&
            strcmp(gname(g), name) == 0 && strcmp(reason(g), why) == 0)
            n++;
    return n;
}

static uint64_t find_g(int64_t goid)
{
    for (uint64_t g = word(D->allg); g; g = field(g, D->g_allglink))
        if ((int64_t)field(g, D->g_goid) == goid)
            return g;
    return 0;
}

static weft_chan *never;

static void receiver(void *arg)
{
    (void)arg;
    int v;
    weft_chan_recv(never, &v);
}

static void sleeper(void *arg)
{
    (void)arg;
    weft_sleep(3600LL * 1000000000LL);
}

static void go_named(void (*fn)(void *), const char *name, size_t stack)
{
    weft_attr a = { .name = name, .stack_size = stack };
    cr_assert_gt(weft_go_attr(&a, fn, NULL), 0);
}

/* Parks 5 receivers and 3 sleepers (one on an odd-size stack of its own)
 * and waits until the descriptor shows them parked. */
static void park_some(void)
{
    never = weft_chan_new(sizeof(int), 0);
    for (int i = 0; i < 5; i++)
        go_named(receiver, "recv", 0);
    for (int i = 0; i < 2; i++)
        go_named(sleeper, "sleep", 0);
    go_named(sleeper, "sleep", 256 * 1024);
    while (count_waiting("recv", "chan receive") < 5 || count_waiting("sleep", "sleep") < 3)
        weft_sleep(1000000);
}

Test(debuginfo, header_says_what_it_is)
{
    cr_assert_str_eq(D->magic, WEFT_DEBUG_MAGIC);
    cr_assert_eq(D->version, WEFT_DEBUG_VERSION);
    cr_assert_eq(D->size, sizeof(struct weft_debug_info));
    cr_assert_eq(D->ptrsize, sizeof(void *));
    cr_assert_gt(D->frame_nregs, 0);
    cr_assert_leq(D->frame_nregs, WEFT_DEBUG_MAXREGS);
}

static void lists_main(void *arg)
{
    (void)arg;
    park_some();
    cr_assert_eq(count_waiting("recv", "chan receive"), 5);
    cr_assert_eq(count_waiting("sleep", "sleep"), 3);

    /* We are running, on an M whose tid is our thread's. */
    uint64_t me = find_g(weft_id());
    cr_assert_neq(me, 0);
    cr_assert_eq(field(me, D->g_status), D->g_status_running);
    uint64_t m = field(me, D->g_m);
    cr_assert_neq(m, 0);
    bool listed = false;
    for (uint64_t mp = word(D->allm); mp; mp = field(mp, D->m_alllink))
        listed |= mp == m;
    cr_assert(listed, "our M is on the allm list");
    cr_assert_eq(field(m, D->m_curg), me);
    cr_assert_eq((pid_t)field(m, D->m_tid), (pid_t)syscall(SYS_gettid));
    cr_assert_eq(field(m, D->m_exited), 0);
}

Test(debuginfo, lists_goroutines_threads_and_wait_reasons, .timeout = 30)
{
    cr_assert_eq(weft_main(lists_main, NULL), 0);
}

/* Goroutine g's saved sp, into *sp, and the address its saved frame is
 * read at: g_sp itself; or, for a compacted stack (g_sp 0 once it has run:
 * SCHEDDEBUG=compactstacks=1), the saved sp its stack record keeps, read
 * in the copy while the stack is compacted or restoring (version 2). */
static uint64_t saved_frame(uint64_t g, uint64_t *sp)
{
    *sp = field(g, D->g_sp);
    if (*sp || !field(g, D->g_stacklo))
        return *sp;
    uint64_t s = field(g, D->g_stack);
    *sp = field(s, D->stack_savedsp);
    uint64_t st = field(s, D->stack_cstate) & D->stack_state_mask;
    if (st == D->stack_state_compacted || st == D->stack_state_restoring)
        return field(s, D->stack_copy);
    return *sp;
}

static void fresh_child(void *arg)
{
    (void)arg;
}

static void frames_main(void *arg)
{
    (void)arg;
    park_some();
    /* A parked goroutine resumes on its own stack, with the frame chain
     * of the code that parked it. */
    int checked = 0;
    for (uint64_t g = word(D->allg); g; g = field(g, D->g_allglink)) {
        if (field(g, D->g_status) != D->g_status_waiting || strcmp(gname(g), "recv") != 0)
            continue;
        uint64_t sp, at = saved_frame(g, &sp), lo = field(g, D->g_stacklo), hi = field(g, D->g_stackhi);
        cr_assert(sp >= lo && sp + D->frame_size <= hi, "saved sp 0x%lx in [0x%lx, 0x%lx)",
                  (unsigned long)sp, (unsigned long)lo, (unsigned long)hi);
        uint64_t fp = word(at + D->frame_fp), pc = word(at + D->frame_pc);
        cr_assert(fp > sp + D->frame_size && fp < hi, "saved frame pointer on the goroutine's stack");
        cr_assert_neq(pc, 0);
        cr_assert_neq(pc, D->freshpc);
        checked++;
    }
    cr_assert_eq(checked, 5);
    /* On one P, a goroutine just made has not run: it has no frame yet
     * (saved sp 0), and gets its stack's bounds when it first runs.  The
     * yield starts main's time slice afresh: had sysmon flagged main for
     * running 10 ms (an ASan build's parks above can take that long),
     * weft_go's scheduling point would yield to the child before the
     * checks. */
    weft_yield();
    int64_t id = weft_go(fresh_child, NULL);
    cr_assert_gt(id, 0);
    uint64_t g = find_g(id);
    cr_assert_neq(g, 0);
    cr_assert_eq(field(g, D->g_status), D->g_status_runnable);
    cr_assert_eq(field(g, D->g_sp), 0);
    cr_assert_eq(field(g, D->g_stacklo), 0);
    cr_assert_eq(field(g, D->g_stackhi), 0);
    cr_assert_eq(field(g, D->g_fn), (uint64_t)(uintptr_t)fresh_child);
    cr_assert_eq((int64_t)field(g, D->g_parentgoid), weft_id());
}

Test(debuginfo, saved_frames_follow_the_switch_layout, .timeout = 30)
{
    weft_maxprocs(1);
    cr_assert_eq(weft_main(frames_main, NULL), 0);
}

/* Whether the byte at addr reads through /proc/self/mem, as gcore reads. */
static bool readable(int memfd, uint64_t addr)
{
    char c;
    return pread(memfd, &c, 1, (off_t)addr) == 1;
}

static void guards_main(void *arg)
{
    (void)arg;
    park_some();
    int (*guards)(int) = (int (*)(int))(uintptr_t)D->guards;
    cr_assert_not_null(guards);
    int memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    cr_assert_geq(memfd, 0);
    /* The guard page just below a slab stack and an own-size stack. */
    uint64_t below[2] = { 0, 0 };
    for (uint64_t g = word(D->allg); g; g = field(g, D->g_allglink)) {
        if (field(g, D->g_status) != D->g_status_waiting)
            continue;
        size_t size = field(g, D->g_stackhi) - field(g, D->g_stacklo);
        below[size > 128 * 1024] = field(g, D->g_stacklo) - 4096;
    }
    cr_assert(below[0] && below[1], "a slab stack and an own-size stack");
    if (readable(memfd, below[0])) {
        /* mprotect guards (a kernel before 6.13): gdb skips those mappings */
        cr_assert_eq(guards(1), 0);
        close(memfd);
        return;
    }
    int lifted = guards(1);
    cr_assert_geq(lifted, 9, "every slab stack and the own-size one: %d", lifted);
    cr_assert(readable(memfd, below[0]) && readable(memfd, below[1]), "guards lifted");
    cr_assert_eq(guards(0), lifted);
    cr_assert(!readable(memfd, below[0]) && !readable(memfd, below[1]), "guards back");
    close(memfd);
}

Test(debuginfo, gcore_lifts_the_stack_guards_and_puts_them_back, .timeout = 30)
{
    cr_assert_eq(weft_main(guards_main, NULL), 0);
}
