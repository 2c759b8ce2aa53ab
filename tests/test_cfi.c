/*
 * test_cfi.c — DWARF unwinders (libunwind here; gdb and perf read the same
 * .eh_frame) walk goroutine stacks cleanly: through the context switch,
 * wherever in it they stop, and to the goroutine's entry, where the stack
 * ends without a bogus frame.
 */
#define UNW_LOCAL_ONLY
#include <criterion/criterion.h>
#include <libunwind.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>

#include "weft.h"

#define MAXF 64

/* Walks the stack from the cursor; returns the depth, or -1 if unw_step
 * failed (a frame it could not unwind: garbage). */
static int walk(unw_cursor_t *c, unw_word_t *ips, int max)
{
    int n = 0, r;
    do {
        unw_word_t ip;
        unw_get_reg(c, UNW_REG_IP, &ip);
        if (n < max)
            ips[n] = ip;
        n++;
    } while ((r = unw_step(c)) > 0);
    return r < 0 ? -1 : (n < max ? n : max);
}

static bool named(unw_word_t ip, const char *want)
{
    unw_cursor_t c;
    unw_context_t uc;
    unw_getcontext(&uc);
    unw_init_local(&c, &uc);
    char name[128];
    unw_word_t off;
    /* unw_get_proc_name works on a cursor: aim one at ip. */
    if (unw_set_reg(&c, UNW_REG_IP, ip) != 0)
        return false;
    return unw_get_proc_name(&c, name, sizeof name, &off) == 0 && strcmp(name, want) == 0;
}

/* ---- a goroutine's stack ends at its entry ------------------------------------ */

static unw_word_t entry_ips[MAXF];
static int entry_n;

static __attribute__((noinline)) void entry_walk(void)
{
    unw_context_t uc;
    unw_cursor_t c;
    unw_getcontext(&uc);
    unw_init_local(&c, &uc);
    entry_n = walk(&c, entry_ips, MAXF);
}

static void entry_worker(void *arg)
{
    (void)arg;
    entry_walk();
    __asm__ volatile("");   /* not a tail call */
}

static void entry_main(void *arg)
{
    (void)arg;
    weft_go(entry_worker, NULL);
    for (int i = 0; i < 100 && entry_n == 0; i++)
        weft_yield();
}

Test(cfi, a_goroutine_stack_ends_at_its_entry, .timeout = 30)
{
    cr_assert_eq(weft_main(entry_main, NULL), 0);
    cr_assert_gt(entry_n, 0, "the unwind failed (a bogus frame past the entry)");
    for (int i = 0; i < entry_n; i++)
        cr_assert_neq(entry_ips[i], 0, "frame %d has pc 0", i);
    cr_assert(named(entry_ips[entry_n - 1], "weft__gentry"), "the last frame is not the goroutine entry");
}

/* ---- through the switch, wherever it is interrupted --------------------------- */

static atomic_int stop;
static atomic_long samples, in_switch, bad;
static unw_word_t bad_ips[MAXF];
static int bad_n;

/* SIGPROF while goroutines do nothing but switch: many samples land
 * inside weft__swapctx, before, during and after the stack switch; each
 * must unwind to its end without error. */
static void onprof(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)si;
    unw_cursor_t c;
    if (unw_init_local2(&c, (unw_context_t *)uctx, UNW_INIT_SIGNAL_FRAME) != 0)
        return;
    unw_word_t ips[MAXF];
    unw_word_t off;
    char name[32];
    bool sw = unw_get_proc_name(&c, name, sizeof name, &off) == 0 && strcmp(name, "weft__swapctx") == 0;
    int n = walk(&c, ips, MAXF);
    atomic_fetch_add(&samples, 1);
    if (sw)
        atomic_fetch_add(&in_switch, 1);
    if (n < 0 && sw && atomic_fetch_add(&bad, 1) == 0) {
        memcpy(bad_ips, ips, sizeof ips);
        bad_n = MAXF;
    }
}

static void switcher(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        weft_yield();
}

static void switch_main(void *arg)
{
    (void)arg;
    weft_go(switcher, NULL);
    weft_go(switcher, NULL);
    int64_t end = weft_nanotime() + 10LL * 1000 * 1000 * 1000;
    while (atomic_load(&in_switch) < 200 && weft_nanotime() < end)
        weft_yield();
    atomic_store(&stop, 1);
}

Test(cfi, unwinds_through_the_context_switch, .timeout = 60)
{
    struct sigaction sa = { .sa_sigaction = onprof, .sa_flags = SA_SIGINFO | SA_RESTART };
    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGPROF, &sa, NULL), 0);
    weft_maxprocs(1);
    struct itimerval it = { { 0, 200 }, { 0, 200 } };
    cr_assert_eq(setitimer(ITIMER_PROF, &it, NULL), 0);
    cr_assert_eq(weft_main(switch_main, NULL), 0);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_PROF, &off, NULL);
    cr_assert_gt(atomic_load(&in_switch), 20, "only %ld of %ld samples in the switch",
                 atomic_load(&in_switch), atomic_load(&samples));
    cr_assert_eq(atomic_load(&bad), 0, "%ld of %ld samples in the switch did not unwind (first: %#lx %#lx %#lx)",
                 atomic_load(&bad), atomic_load(&in_switch), (unsigned long)bad_ips[0],
                 (unsigned long)bad_ips[1], (unsigned long)bad_ips[2]);
}
