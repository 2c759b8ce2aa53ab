/*
 * test_deadlock.c — Go's crash_test deadlock cases: when every goroutine is
 * blocked with no timer pending, the runtime says so and exits 2.
 */
#include <criterion/criterion.h>
#include <string.h>

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
