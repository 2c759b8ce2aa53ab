/*
 * test_deadlock.c — Go's crash_test deadlock cases: when every goroutine is
 * blocked with no timer pending, the runtime says so and exits 2.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "runtime.h"
#include "testutil.h"

static void expect(const char *mode, int code, const char *in_err, const char *in_out)
{
    char out[4096], err[16384];
    int st = run_prog("prog_deadlock", mode, out, sizeof out, err, sizeof err);
    cr_assert(WIFEXITED(st), "%s: killed by signal; stderr:\n%s", mode, err);
    cr_assert_eq(WEXITSTATUS(st), code, "%s: exit status; stderr:\n%s", mode, err);
    if (in_err)
        cr_assert_not_null(strstr(err, in_err), "%s: stderr lacks \"%s\":\n%s", mode, in_err, err);
    if (in_out)
        cr_assert_not_null(strstr(out, in_out), "%s: stdout lacks \"%s\":\n%s", mode, in_out, out);
}

Test(deadlock, all_goroutines_asleep_is_fatal, .timeout = 60)
{
    char out[4096], err[16384];
    int st = run_prog("prog_deadlock", "wg", out, sizeof out, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "stderr:\n%s", err);
    cr_assert_eq(strncmp(err, "fatal error: all goroutines are asleep - deadlock!\n",
                         strlen("fatal error: all goroutines are asleep - deadlock!\n")), 0,
                 "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "goroutine 1 [sync.WaitGroup.Wait]:"), "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "[sync.Mutex.Lock]:"), "stderr:\n%s", err);
}

Test(deadlock, main_goexit_then_nothing_left, .timeout = 60)
{
    expect("goexit", 2, "fatal error: no goroutines (main called weft_exit) - deadlock!", NULL);
}

Test(deadlock, a_locked_main_blocked_for_ever_is_fatal, .timeout = 60)
{
    expect("locked", 2, "fatal error: all goroutines are asleep - deadlock!", NULL);
}

Test(deadlock, sleepers_are_not_a_deadlock, .timeout = 60)
{
    expect("sleeping", 0, NULL, "sleeping: ok");
}

/* The deadlock check runs whenever the last M goes idle, and here an M
 * waiting for a timer is idle: with a ticker, that is every tick.  Its
 * walk over every goroutine (tens of ms with a million parked, under
 * sched.lock) made the ticker itself late, so the cheap reasons not to
 * report (a timer pending, goroutines waiting on fds) come first: a ticker
 * among parked goroutines never walks them. */
static weft_chan *tk_never;

static void tk_parked(void *arg)
{
    (void)arg;
    char c;
    weft_chan_recv(tk_never, &c);
}

static int64_t tk_walks;

static void tk_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    tk_never = weft_chan_new(1, 0);
    for (int i = 0; i < 10000; i++)
        cr_assert_gt(weft_go(tk_parked, NULL), 0);
    weft_sleep(10 * 1000 * 1000);
    weft__lock(&sched.lock);
    int64_t before = sched.ndeadwalks;
    weft__unlock(&sched.lock);
    for (int i = 0; i < 200; i++)
        weft_sleep(1000 * 1000);
    weft__lock(&sched.lock);
    tk_walks = sched.ndeadwalks - before;
    weft__unlock(&sched.lock);
}

Test(deadlock, a_ticker_among_parked_goroutines_never_walks_them, .timeout = 60)
{
    cr_assert_eq(weft_main(tk_main, NULL), 0);
    cr_assert_eq(tk_walks, 0, "the deadlock check walked every goroutine %lld times in 200 ticks",
                 (long long)tk_walks);
}
