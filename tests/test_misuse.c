/*
 * test_misuse.c — misuse of the runtime that Go reports as a fatal error
 * is one here too: a clear message naming the call, a traceback, exit 2.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "testutil.h"

static char out[1 << 14], err[1 << 16];

static void expect_fatal(const char *mode, const char *call)
{
    int st = run_prog("prog_misuse", mode, out, sizeof out, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: status 0x%x; stderr:\n%s", mode, st, err);
    char want[200];
    snprintf(want, sizeof want,
             "fatal error: %s between weft_syscall_enter and weft_syscall_exit (goroutine 1)\n", call);
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s: stderr:\n%s", mode, err);
    cr_assert_not_null(strstr(err, "\nmisuse_in_bracket(...)\n"), "%s: the traceback shows where:\n%s", mode, err);
    cr_assert_null(strstr(out, "survived"), "%s", out);
}

Test(misuse, yield_inside_a_syscall_bracket_is_fatal, .timeout = 60)
{
    expect_fatal("yield", "weft_yield");
}

Test(misuse, sleep_inside_a_syscall_bracket_is_fatal, .timeout = 60)
{
    expect_fatal("sleep", "weft_sleep");
}

Test(misuse, a_channel_wait_inside_a_syscall_bracket_is_fatal, .timeout = 60)
{
    expect_fatal("recv", "weft_chan_recv");
}

Test(misuse, a_mutex_wait_inside_a_syscall_bracket_is_fatal, .timeout = 60)
{
    expect_fatal("mutex", "weft_mutex_lock");
}
