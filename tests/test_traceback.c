/*
 * test_traceback.c — goroutine tracebacks (weft_stack), the (n, ok)
 * profiles, M creation stacks, the text profiles, and Go's crash output for
 * panics, fatal signals, SIGQUIT and hogwarn (death tests in a child).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "testutil.h"

static char big[1 << 18];

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static void call_fd(int fd, void *f) { (*(void (**)(int))f)(fd); }

/* What f(fd) writes to a pipe. */
static const char *capture(void (*f)(int fd))
{
    return pipe_capture(call_fd, &f, big, sizeof big);
}

/* ---- weft_stack -------------------------------------------------------------------- */

static weft_chan *never;
static int64_t parked_id, spawner_id;

/* No tail calls: a C compiler turns a final call into a jump and the
 * caller's frame is gone from every stack (Go never does that). */
static atomic_int sink;

static __attribute__((noinline)) void tb_parked_receiver(void *arg)
{
    (void)arg;
    int v;
    weft_chan_recv(never, &v);
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void tb_spawner(void *arg)
{
    (void)arg;
    parked_id = weft_go(tb_parked_receiver, NULL);
    weft_chan_recv(never, NULL);
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void start_company(void)
{
    never = weft_chan_new(sizeof(int), 0);
    spawner_id = weft_go(tb_spawner, NULL);
    while (!parked_id)
        weft_sleep(1000 * 1000);
    weft_sleep(5 * 1000 * 1000);
}

static __attribute__((noinline)) void stack_main(void *arg)
{
    (void)arg;
    start_company();
    static char buf[1 << 16];
    char want[256];

    /* Just us. */
    int n = weft_stack(buf, sizeof buf, false);
    cr_assert_gt(n, 0);
    buf[n] = 0;
    snprintf(want, sizeof want, "goroutine %lld [running]:\nstack_main(...)\n", (long long)weft_id());
    cr_assert_eq(strncmp(buf, want, strlen(want)), 0, "got:\n%s", buf);
    cr_assert_not_null(strstr(buf, "test_traceback.c:"), "no file:line:\n%s", buf);
    cr_assert_null(strstr(buf, "weft_stack"), "weft_stack's own frame shows:\n%s", buf);
    cr_assert_eq(count(buf, "goroutine "), 1, "%s", buf);

    /* Everyone: the parked receiver, with wait reason, frames, creator. */
    n = weft_stack(buf, sizeof buf, true);
    cr_assert_gt(n, 0);
    buf[n] = 0;
    snprintf(want, sizeof want, "\ngoroutine %lld [chan receive]:\nweft_chan_recv(...)\n", (long long)parked_id);
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);
    cr_assert_not_null(strstr(buf, "\ntb_parked_receiver(...)\n\t"), "%s", buf);
    snprintf(want, sizeof want, "created by tb_spawner in goroutine %lld\n\t", (long long)spawner_id);
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);
    cr_assert_not_null(strstr(buf, "\ntb_spawner(...)\n\t"), "%s", buf);
    snprintf(want, sizeof want, "created by start_company in goroutine %lld\n", (long long)weft_id());
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);
    /* runtime internals are hidden, as Go hides runtime.gopark */
    cr_assert_null(strstr(buf, "weft__"), "internal frames show:\n%s", buf);
    cr_assert_null(strstr(buf, "switch_from_g"), "internal frames show:\n%s", buf);

    /* Go's TestNumGoroutine: one "goroutine " per live goroutine. */
    cr_assert_eq(count(buf, "goroutine ") - count(buf, "in goroutine "), weft_num_goroutine(), "%s", buf);

    /* A small buffer truncates cleanly: a prefix of the whole, len bytes. */
    char full[1 << 12], small[40];
    int nf = weft_stack(full, sizeof full, false);
    int ns = weft_stack(small, sizeof small, false);
    cr_assert_eq(ns, (int)sizeof small);
    cr_assert_gt(nf, ns);
    cr_assert_eq(memcmp(full, small, sizeof small), 0);
    cr_assert_eq(weft_stack(small, 0, true), 0);
    cr_assert_eq(weft_stack(NULL, 10, true), -EINVAL);
}

Test(traceback, weft_stack_in_gos_format, .timeout = 60)
{
    cr_assert_eq(weft_main(stack_main, NULL), 0);
}

Test(traceback, weft_stack_outside_a_goroutine)
{
    char buf[64];
    cr_assert_eq(weft_stack(buf, sizeof buf, false), -ESRCH);
}

/* ---- header details: minutes, locked to thread ---------------------------------------- */

static G *findg(int64_t goid)
{
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink)
        if (gp->goid == goid)
            return gp;
    return NULL;
}

static atomic_int locked_ready;

static void tb_locked(void *arg)
{
    (void)arg;
    weft_lock_thread();
    atomic_store(&locked_ready, 1);
    weft_chan_recv(never, NULL);
    atomic_fetch_add(&sink, 1);
}

static void header_main(void *arg)
{
    (void)arg;
    start_company();
    int64_t lid = weft_go(tb_locked, NULL);
    while (!atomic_load(&locked_ready))
        weft_sleep(1000 * 1000);
    weft_sleep(5 * 1000 * 1000);
    static char buf[1 << 16];
    char want[128];
    /* Waits of a few milliseconds: no minutes. */
    int n = weft_stack(buf, sizeof buf, true);
    buf[n] = 0;
    snprintf(want, sizeof want, "goroutine %lld [chan receive]:\n", (long long)parked_id);
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);
    snprintf(want, sizeof want, "goroutine %lld [chan receive, locked to thread]:\n", (long long)lid);
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);

    /* Three minutes pass, as far as tracebacks can tell (Go prints minutes
     * once a goroutine has waited one): the clock they read, sysmon's
     * weft__coarsetime, is moved on to three minutes after the later of
     * the two parks, with sysmon stopped so that it cannot move it back.
     * The clock goes forward rather than the parks back: on a machine up
     * for less than three minutes, "three minutes ago" is before the
     * monotonic clock's zero and no real wait can start there. */
    G *rg = findg(parked_id), *lg = findg(lid);
    cr_assert(rg && lg);
    int64_t rsince = rg->waitsince, lsince = lg->waitsince;
    cr_assert(rsince > 0 && lsince > 0, "waits without a start time: %lld %lld",
              (long long)rsince, (long long)lsince);
    weft__sysmon_stop();
    int64_t later = rsince > lsince ? rsince : lsince;
    AO_store(&weft__coarsetime, (AO_t)(later + 3 * 60 * 1000000000LL + 1000000));
    n = weft_stack(buf, sizeof buf, true);
    cr_assert_eq(weft__sysmon_start(), 0);
    buf[n] = 0;
    snprintf(want, sizeof want, "goroutine %lld [chan receive, 3 minutes]:\n", (long long)parked_id);
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);
    snprintf(want, sizeof want, "goroutine %lld [chan receive, 3 minutes, locked to thread]:\n", (long long)lid);
    cr_assert_not_null(strstr(buf, want), "missing \"%s\" in:\n%s", want, buf);
}

Test(traceback, minutes_and_locked_to_thread, .timeout = 60)
{
    cr_assert_eq(weft_main(header_main, NULL), 0);
}

/* A goroutine that parks the moment the runtime has booted, before sysmon
 * has ticked, still has a start time for its wait, and one from this run:
 * not 0 ("unknown") nor the last tick of a previous weft_main. */
static weft_chan *bootch;
static int64_t bootgoid;

static void boot_checker(void *arg)
{
    (void)arg;
    G *gp = findg(bootgoid);
    cr_assert_not_null(gp);
    while (AO_load(&gp->atomicstatus) != Gwaiting)
        weft_yield();       /* stolen by another M before main parked */
    cr_assert_geq(gp->waitsince, sched.starttime,
                  "main parked at %lld, before this run started (%lld); 0 is unknown",
                  (long long)gp->waitsince, (long long)sched.starttime);
    cr_assert_eq(weft_chan_send(bootch, NULL), 0);
}

static void boot_main(void *arg)
{
    (void)arg;
    bootgoid = weft_id();
    weft_go(boot_checker, NULL);
    weft_chan_recv(bootch, NULL);
}

Test(traceback, a_wait_from_boot_has_its_start_time, .timeout = 60)
{
    for (int run = 0; run < 2; run++) {     /* the second after a first left its clock behind */
        bootch = weft_chan_new(0, 0);
        cr_assert_not_null(bootch);
        cr_assert_eq(weft_main(boot_main, NULL), 0);
        weft_chan_free(bootch);
    }
}

/* ---- (n, ok) profiles and the text forms ----------------------------------------------- */

static void write_goroutine1(int fd) { cr_assert_eq(weft_profile_write("goroutine", fd, 1), 0); }
static void write_goroutine2(int fd) { cr_assert_eq(weft_profile_write("goroutine", fd, 2), 0); }

static __attribute__((noinline)) void tb_func1(void *a) { (void)a; weft_chan_recv(never, NULL); atomic_fetch_add(&sink, 1); }
static __attribute__((noinline)) void tb_func2(void *a) { (void)a; weft_chan_recv(never, NULL); atomic_fetch_add(&sink, 1); }

static void profile_main(void *arg)
{
    (void)arg;
    never = weft_chan_new(sizeof(int), 0);
    /* Go's TestGoroutineCounts, smaller: 10 in func1, 40 in func2. */
    for (int i = 0; i < 10; i++)
        weft_go(tb_func1, NULL);
    for (int i = 0; i < 40; i++)
        weft_go(tb_func2, NULL);
    weft_sleep(20 * 1000 * 1000);

    bool ok = true;
    int n = weft_goroutine_profile(NULL, 0, &ok);
    cr_assert_eq(n, 51);
    cr_assert(!ok);
    weft_stack_record *r = calloc((size_t)n, sizeof *r);
    weft_stack_record canary = { .stack = { 7 } };
    r[0] = canary;
    cr_assert_eq(weft_goroutine_profile(r, n - 1, &ok), n);
    cr_assert(!ok);
    cr_assert_eq(r[0].stack[0], 7, "a too-small profile call must not touch p");
    cr_assert_eq(weft_goroutine_profile(r, n, &ok), n);
    cr_assert(ok);
    for (int i = 0; i < n; i++)
        cr_assert_neq(r[i].stack[0], 0, "record %d is empty", i);
    free(r);
    cr_assert_eq(weft_goroutine_profile(NULL, 0, NULL), -EINVAL);
    cr_assert_eq(weft_goroutine_profile(NULL, 3, &ok), -EINVAL);

    const char *t = capture(write_goroutine1);
    cr_assert_eq(strncmp(t, "goroutine profile: total 51\n", 28), 0, "%s", t);
    const char *p40 = strstr(t, "\n40 @ "), *p10 = strstr(t, "\n10 @ "), *p1 = strstr(t, "\n1 @ ");
    cr_assert(p40 && p10 && p1 && p40 < p10 && p10 < p1, "counts not in order:\n%s", t);
    cr_assert_not_null(strstr(p40, "\ttb_func2+0x"), "%s", t);
    cr_assert_not_null(strstr(p10, "\ttb_func1+0x"), "%s", t);
    cr_assert_not_null(strstr(t, "#\t0x"), "%s", t);

    t = capture(write_goroutine2);
    cr_assert_eq(count(t, "goroutine ") - count(t, "in goroutine "), 51, "%s", t);
    cr_assert_eq(count(t, "\ntb_func2(...)\n"), 40, "%s", t);

    cr_assert_eq(weft_profile_write("heap", 1, 1), -EINVAL);
    cr_assert_eq(weft_profile_write(NULL, 1, 1), -EINVAL);
    cr_assert_eq(weft_profile_write("goroutine", 1, -1), -EINVAL);
    cr_assert_eq(weft_profile_write("goroutine", -1, 1), -EBADF);
}

Test(traceback, goroutine_profile_n_ok_and_counts, .timeout = 60)
{
    cr_assert_eq(weft_main(profile_main, NULL), 0);
}

/* ---- M creation stacks ------------------------------------------------------------ */

static int sc_pipe[2];
static atomic_int in_syscall;

static __attribute__((noinline)) void tb_blocking_reader(void *arg)
{
    (void)arg;
    char c;
    weft_syscall_enter();
    atomic_store(&in_syscall, 1);
    ssize_t r = read(sc_pipe[0], &c, 1);
    weft_syscall_exit();
    (void)r;
}

static void write_threadcreate(int fd) { cr_assert_eq(weft_profile_write("threadcreate", fd, 1), 0); }
static void write_detail(int fd) { weft_schedtrace(fd, true); }

static void threadcreate_main(void *arg)
{
    (void)arg;
    cr_assert_eq(pipe(sc_pipe), 0);
    /* With one P, the reader runs on our M and blocks it; sysmon hands
     * the P (and us) to a new M, which the reader caused. */
    M *me0 = weft__getm();
    weft_go(tb_blocking_reader, NULL);
    while (!atomic_load(&in_syscall) || weft__getm() == me0)
        weft_yield();       /* until we run on another M */

    bool ok = true;
    int n = weft_threadcreate_profile(NULL, 0, &ok);
    cr_assert_geq(n, 2);
    cr_assert(!ok);
    weft_stack_record r[64];
    cr_assert_eq(weft_threadcreate_profile(r, 64, &ok), n);
    cr_assert(ok);

    const char *t = capture(write_threadcreate);
    char want[64];
    snprintf(want, sizeof want, "threadcreate profile: total %d\n", n);
    cr_assert_eq(strncmp(t, want, strlen(want)), 0, "%s", t);
    cr_assert_not_null(strstr(t, "\ttb_blocking_reader+0x"), "the new M's creation stack lacks its cause:\n%s", t);
    cr_assert_not_null(strstr(t, "test_traceback.c:"), "%s", t);

    t = capture(write_detail);
    cr_assert_not_null(strstr(t, "    #\t0x"), "%s", t);
    cr_assert_not_null(strstr(t, "\ttb_blocking_reader+0x"), "scheddetail lacks the creation stack:\n%s", t);
    cr_assert_eq(write(sc_pipe[1], "x", 1), 1);
}

Test(traceback, a_syscall_handoff_m_shows_its_cause, .timeout = 60)
{
    setenv("WEFT_MAXPROCS", "1", 1);
    cr_assert_eq(weft_main(threadcreate_main, NULL), 0);
}

/* ---- death tests --------------------------------------------------------------------- */

static char out[1 << 16], err[1 << 18];

static int die(const char *mode, const char *scheddebug)
{
    if (scheddebug)
        setenv("SCHEDDEBUG", scheddebug, 1);
    else
        unsetenv("SCHEDDEBUG");
    return run_prog("prog_crash", mode, out, sizeof out, err, sizeof err);
}

static void exits2(int st)
{
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x; stderr:\n%s", st, err);
}

Test(traceback, panic_prints_the_goroutine_and_exits_2, .timeout = 60)
{
    exits2(die("panic", NULL));
    const char *want = "panic: boom 42\n\ngoroutine 1 [running]:\nweft_panic(...)\n";
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "\ncrash_panicker(...)\n\t"), "%s", err);
    cr_assert_not_null(strstr(err, "prog_crash.c:"), "%s", err);
    cr_assert_eq(count(err, "goroutine "), 1, "traceback=single shows one goroutine:\n%s", err);
    cr_assert_null(strstr(err, "SCHED "), "%s", err);
}

Test(traceback, panic_with_traceback_all_and_a_dump, .timeout = 60)
{
    exits2(die("panic", "traceback=all,schedtrace=1000"));
    const char *pl = strstr(err, "panic: boom 42\n");
    const char *sc = pl ? strstr(pl, "SCHED ") : NULL;   /* schedtrace=1000 also dumps at start */
    const char *g1 = strstr(err, "goroutine 1 [running]:");
    cr_assert(pl && sc && g1 && pl < sc && sc < g1, "panic, then the dump, then goroutines:\n%s", err);
    cr_assert_not_null(strstr(err, "  P0: status="), "the dump is detailed:\n%s", err);
    cr_assert_not_null(strstr(err, "[chan receive]:\nweft_chan_recv(...)"), "%s", err);
    cr_assert_not_null(strstr(err, "\ncrash_parked(...)\n"), "%s", err);
    /* The goroutine running on the other P is captured by signalling its M. */
    cr_assert_not_null(strstr(err, "[running]:\ncrash_spin_forever(...)\n"), "%s", err);
}

Test(traceback, panic_with_traceback_none, .timeout = 60)
{
    exits2(die("panic", "traceback=none"));
    cr_assert_eq(strcmp(err, "panic: boom 42\n"), 0, "stderr:\n%s", err);
}

/* Under UBSan, the sanitizer reports the nil store and the division
 * itself, before any signal. */
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_SANITIZER() cr_skip_test("UBSan catches it first")
#else
#define SKIP_UNDER_SANITIZER() (void)0
#endif

Test(traceback, sigsegv_in_a_goroutine, .timeout = 60)
{
    SKIP_UNDER_SANITIZER();
    exits2(die("segv", NULL));
    const char *want = "panic: runtime error: invalid memory address or nil pointer dereference\n"
                       "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x";
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "]\n\ngoroutine 1 [running]:\ncrash_segv(...)\n"), "faulting frame first:\n%s", err);
}

Test(traceback, sigfpe_in_a_goroutine, .timeout = 60)
{
    SKIP_UNDER_SANITIZER();
    exits2(die("fpe", NULL));
    cr_assert_eq(strncmp(err, "panic: runtime error: integer divide by zero\n[signal SIGFPE: floating-point exception code=0x1 addr=0x", 84), 0,
                 "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "goroutine 1 [running]:\ncrash_divide(...)\n"), "%s", err);
}

Test(traceback, sigbus_in_a_goroutine, .timeout = 60)
{
    exits2(die("bus", NULL));
    cr_assert_eq(strncmp(err, "unexpected fault address 0x", 27), 0, "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "\nfatal error: fault\n[signal SIGBUS: bus error code=0x2 addr=0x"), "%s", err);
    cr_assert_not_null(strstr(err, "goroutine 1 [running]:\ncrash_bus(...)\n"), "%s", err);
}

Test(traceback, sigill_in_a_goroutine, .timeout = 60)
{
    exits2(die("ill", NULL));
    cr_assert_eq(strncmp(err, "fatal error: unexpected signal\n[signal SIGILL: illegal instruction code=0x", 72), 0,
                 "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "goroutine 1 [running]:\ncrash_ill(...)\n"), "%s", err);
}

Test(traceback, sigquit_dumps_every_goroutine, .timeout = 60)
{
    exits2(die("sigquit", NULL));
    cr_assert_eq(strncmp(err, "SIGQUIT: quit\nPC=0x", 19), 0, "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "\ncrash_parked(...)\n"), "%s", err);
    cr_assert_not_null(strstr(err, "goroutine 1 ["), "%s", err);
    cr_assert_geq(count(err, "goroutine ") - count(err, "in goroutine "), 3, "%s", err);
}

Test(traceback, sigquit_with_traceback_none_prints_the_headline_alone, .timeout = 60)
{
    exits2(die("sigquit", "traceback=none"));
    cr_assert_eq(strncmp(err, "SIGQUIT: quit\nPC=0x", 19), 0, "stderr:\n%s", err);
    cr_assert_null(strstr(err, "goroutine "), "traceback=none prints no goroutine:\n%s", err);
}

Test(traceback, hogwarn_names_the_hog_and_its_stack, .timeout = 60)
{
    int st = die("hog", "hogwarn=50");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status 0x%x; stderr:\n%s", st, err);
    long long id = 0;
    cr_assert_eq(sscanf(out, "hog=%lld", &id), 1, "%s", out);
    char want[160];
    snprintf(want, sizeof want, "weft: hogwarn: goroutine %lld has run for ", id);
    const char *w = strstr(err, want);
    cr_assert_not_null(w, "missing \"%s\" in:\n%s", want, err);
    cr_assert_not_null(strstr(w, " without reaching a scheduling point\n"), "%s", err);
    cr_assert_not_null(strstr(w, "\ncrash_hog_loop(...)\n"), "the hog's stack:\n%s", err);
    cr_assert_eq(count(err, "weft: hogwarn:"), 1, "reported once:\n%s", err);
}

Test(traceback, deadlock_with_a_dump, .timeout = 60)
{
    setenv("SCHEDDEBUG", "scheddetail=1", 1);
    int st = run_prog("prog_deadlock", "wg", out, sizeof out, err, sizeof err);
    exits2(st);
    const char *f = strstr(err, "fatal error: all goroutines are asleep - deadlock!\n");
    const char *sc = strstr(err, "SCHED ");
    const char *g1 = strstr(err, "goroutine 1 [sync.WaitGroup.Wait]:\nweft_wg_wait(...)");
    cr_assert(f == err && sc && g1 && sc < g1, "stderr:\n%s", err);
}
