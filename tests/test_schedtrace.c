/*
 * test_schedtrace.c — SCHEDDEBUG parsing, and scheduler dumps whose
 * fields are true and whose lines are never torn, even flat out.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/scheddebug.h"
#include "testutil.h"

/* ---- the parser --------------------------------------------------------------- */

static int nwarn;
static char lastwarn[256];

static void warn(const char *e, size_t len, const char *why, void *arg)
{
    (void)arg;
    nwarn++;
    snprintf(lastwarn, sizeof lastwarn, "%.*s: %s", (int)len, e, why);
}

static weft__scheddebug parse(const char *s)
{
    weft__scheddebug d;
    nwarn = 0;
    lastwarn[0] = 0;
    weft__scheddebug_parse(s, &d, warn, NULL);
    return d;
}

Test(scheddebug, defaults_and_valid_entries)
{
    weft__scheddebug d = parse(NULL);
    cr_assert_eq(d.schedtrace, 0);
    cr_assert_eq(d.traceback, TRACEBACK_SINGLE);
    cr_assert_eq(nwarn, 0);
    d = parse("");
    cr_assert_eq(nwarn, 0, "an empty SCHEDDEBUG is fine");
    d = parse("schedtrace=1000,scheddetail=1,traceback=all,hogwarn=50");
    cr_assert_eq(nwarn, 0);
    cr_assert_eq(d.schedtrace, 1000);
    cr_assert_eq(d.scheddetail, 1);
    cr_assert_eq(d.traceback, TRACEBACK_ALL);
    cr_assert_eq(d.hogwarn, 50);
    d = parse("schedtrace=5,schedtrace=7,traceback=none");
    cr_assert_eq(d.schedtrace, 7, "later entries win");
    cr_assert_eq(d.traceback, TRACEBACK_NONE);
    d = parse("schedtrace=2147483647");
    cr_assert_eq(d.schedtrace, 2147483647);
}

Test(scheddebug, every_bad_entry_warns_once_and_is_ignored)
{
    static const struct { const char *in; const char *warn; } cases[] = {
        { "schedtrace=abc", "schedtrace=abc: not a decimal number" },
        { "schedtrace=-5", "schedtrace=-5: negative value" },
        { "=1", "=1: empty name" },
        { "foo=1", "foo=1: unknown name" },
        { "schedtrace", "schedtrace: want name=value" },
        { "schedtrace=", "schedtrace=: empty value" },
        { "schedtrace=99999999999999999999", "schedtrace=99999999999999999999: number too large" },
        { "schedtrace=2147483648", "schedtrace=2147483648: number too large" },
        { "scheddetail=2", "scheddetail=2: want 0 or 1" },
        { "traceback=loud", "traceback=loud: want none, single or all" },
        { "schedtrace=1 ", "schedtrace=1 : not a decimal number" },
        { "schedtrace=0x10", "schedtrace=0x10: not a decimal number" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        weft__scheddebug d = parse(cases[i].in);
        cr_assert_eq(nwarn, 1, "%s: %d warnings", cases[i].in, nwarn);
        cr_assert_str_eq(lastwarn, cases[i].warn);
        cr_assert_eq(d.schedtrace, 0, "%s changed schedtrace", cases[i].in);
        cr_assert_eq(d.scheddetail, 0);
        cr_assert_eq(d.traceback, TRACEBACK_SINGLE);
    }
    weft__scheddebug d = parse("schedtrace=10,,foo=1,scheddetail=1,");
    cr_assert_eq(nwarn, 3, "two empty entries and one unknown");
    cr_assert_eq(d.schedtrace, 10);
    cr_assert_eq(d.scheddetail, 1);
}

/* ---- dumps tell the truth ------------------------------------------------------ */

static atomic_long spin_stop, spin_started;
static weft_chan *never;
static int sc_pipe[2];
static atomic_long in_syscall;
static int64_t spinner_id, parked_ids[3], syscall_id;

static void spinner(void *arg)
{
    (void)arg;
    atomic_store(&spin_started, 1);
    while (!atomic_load(&spin_stop))
        ;   /* running, no scheduling point */
}

static void parked(void *arg)
{
    (void)arg;
    int v;
    weft_chan_recv(never, &v);
}

static void blocker(void *arg)
{
    (void)arg;
    char c;
    weft_syscall_enter();
    atomic_store(&in_syscall, 1);
    ssize_t r = read(sc_pipe[0], &c, 1);
    weft_syscall_exit();
    (void)r;
}

static char dumpbuf[1 << 16];

static void schedtrace_to(int fd, void *detailed) { weft_schedtrace(fd, *(bool *)detailed); }

static const char *take_dump(bool detailed)
{
    return pipe_capture(schedtrace_to, &detailed, dumpbuf, sizeof dumpbuf);
}

static void truth_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    never = weft_chan_new(sizeof(int), 0);
    cr_assert_eq(pipe(sc_pipe), 0);
    spinner_id = weft_go(spinner, NULL);
    for (int i = 0; i < 3; i++)
        parked_ids[i] = weft_go(parked, NULL);
    syscall_id = weft_go(blocker, NULL);
    while (!atomic_load(&spin_started) || !atomic_load(&in_syscall))
        weft_sleep(1000 * 1000);
    weft_sleep(20 * 1000 * 1000);   /* let the parked ones park */

    const char *d = take_dump(true);
    char want[128];
    cr_assert_not_null(strstr(d, "gomaxprocs=2 "), "%s", d);
    cr_assert_not_null(strstr(d, "  P0: status="), "%s", d);
    cr_assert_not_null(strstr(d, "  P1: status="), "%s", d);
    cr_assert_null(strstr(d, "  P2:"), "%s", d);
    for (int i = 0; i < 3; i++) {
        snprintf(want, sizeof want, "  G%lld: status=4(chan receive) m=-1 lockedm=-1\n", (long long)parked_ids[i]);
        cr_assert_not_null(strstr(d, want), "missing \"%s\" in:\n%s", want, d);
    }
    snprintf(want, sizeof want, "  G%lld: status=3(syscall) m=", (long long)syscall_id);
    cr_assert_not_null(strstr(d, want), "missing \"%s\" in:\n%s", want, d);
    snprintf(want, sizeof want, "  G%lld: status=2(running) m=", (long long)spinner_id);
    cr_assert_not_null(strstr(d, want), "missing \"%s\" in:\n%s", want, d);
    snprintf(want, sizeof want, "  G%lld: status=2(running) m=", (long long)weft_id());
    cr_assert_not_null(strstr(d, want), "main is running: \"%s\" in:\n%s", want, d);
    /* The spinner's M is running it on some P. */
    snprintf(want, sizeof want, " curg=%lld ", (long long)spinner_id);
    cr_assert_not_null(strstr(d, want), "no M runs the spinner:\n%s", d);
    /* threads: M0, the spinner's M, the syscall's M (+ sysmon) */
    long long threads = 0;
    cr_assert_eq(sscanf(strstr(d, "threads="), "threads=%lld", &threads), 1);
    cr_assert_geq(threads, 3);

    const char *s = take_dump(false);
    cr_assert_eq(strncmp(s, "SCHED ", 6), 0, "%s", s);
    unsigned a, b;
    const char *br = strchr(s, '[');
    cr_assert_not_null(br, "%s", s);
    cr_assert_eq(sscanf(br, "[%u %u]\n", &a, &b), 2, "per-P queue lengths: %s", s);
    cr_assert_not_null(strstr(s, " idleprocs=0 "), "both Ps busy (main + spinner): %s", s);

    atomic_store(&spin_stop, 1);
    cr_assert_eq(write(sc_pipe[1], "x", 1), 1);
}

Test(schedtrace, dump_fields_match_a_known_workload, .timeout = 60)
{
    cr_assert_eq(weft_main(truth_main, NULL), 0);
}

/* ---- flat out: dumps every 1 ms for 2 s, no deadlock, no torn line ---------------- */

Test(schedtrace, dumps_while_the_scheduler_runs_flat_out, .timeout = 120)
{
    setenv("SCHEDDEBUG", "schedtrace=1,scheddetail=1", 1);
    static char out[4096], err[64 << 20];
    int st = run_prog("prog_schedload", NULL, out, sizeof out, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d; stdout %s", st, out);
    cr_assert_not_null(strstr(out, "schedload: "), "%s", out);
    regex_t re;
    cr_assert_eq(regcomp(&re,
        "^(SCHED [0-9]+ms: gomaxprocs=[0-9]+ idleprocs=[0-9]+ threads=[0-9]+ spinningthreads=[0-9]+ "
        "needspinning=[01] idlethreads=[0-9]+ runqueue=[0-9]+ gcwaiting=(true|false) nmidlelocked=[0-9]+ "
        "stopwait=-?[0-9]+ sysmonwait=false"
        "|  P[0-9]+: status=[0-4] schedtick=[0-9]+ syscalltick=[0-9]+ m=-?[0-9]+ runqsize=[0-9]+ gfreecnt=[0-9]+ timerslen=[0-9]+"
        "|  M[0-9]+: p=-?[0-9]+ curg=-?[0-9]+ mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=(true|false) blocked=(true|false) lockedg=-?[0-9]+"
        "|  G[0-9]+: status=[0-9]+\\([a-zA-Z. ()]*\\) m=-?[0-9]+ lockedm=-?[0-9]+"
        "|    #\t0x[0-9a-f]+(\t[^\t]+[+]0x[0-9a-f]+\t[^\t]+:[0-9]+)?"
        "|    #( 0x[0-9a-f]+)+)$",
        REG_EXTENDED | REG_NOSUB), 0);
    int sched_lines = 0, lines = 0;
    /* A capture that filled the buffer ends in a line cut by us, not torn
     * by the runtime: drop it. */
    size_t len = strlen(err);
    bool full = len == sizeof err - 1;
    if (full) {
        char *nl = strrchr(err, '\n');
        if (nl)
            nl[1] = 0;
    }
    for (char *line = strtok(err, "\n"); line; line = strtok(NULL, "\n")) {
        lines++;
        cr_assert_eq(regexec(&re, line, 0, NULL, 0), 0, "torn or malformed line %d: \"%s\"", lines, line);
        if (strncmp(line, "SCHED ", 6) == 0)
            sched_lines++;
    }
    regfree(&re);
    /* A full buffer holds fewer dumps (the stress build keeps thousands of
     * goroutines alive, a line each per dump). */
    cr_assert_gt(sched_lines, full ? 2 : 20, "only %d dumps in 2 s at schedtrace=1", sched_lines);
}

/* ---- the first dump comes at start-up, whatever the clock reads ---------------- */

static int firstdump_fd;            /* read end of the pipe standing in for stderr */
static char firstdump[1 << 14];
static const char *firstdump_until = "SCHED ";     /* read until this appears */

static void firstdump_main(void *arg)
{
    (void)arg;
    size_t n = 0;
    int64_t give_up = weft_nanotime() + 20LL * 1000 * 1000 * 1000;
    while (!strstr(firstdump, firstdump_until) && weft_nanotime() < give_up) {
        ssize_t r = read(firstdump_fd, firstdump + n, sizeof firstdump - 1 - n);
        if (r > 0)
            n += (size_t)r;
        else
            weft_sleep(1000 * 1000);
    }
}

/* The period is far longer than the machine has been up (24.8 days), and
 * the clock sysmon reads counts from boot: the first dump must not wait
 * for the clock to reach one period. */
static void capture_first_dump(void)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    firstdump_fd = p[0];
    int saved = dup(2);
    cr_assert_geq(saved, 0);
    cr_assert_eq(dup2(p[1], 2), 2);
    int err = weft_main(firstdump_main, NULL);
    dup2(saved, 2);
    close(saved);
    close(p[0]);
    close(p[1]);
    cr_assert_eq(err, 0);
}

Test(schedtrace, first_dump_comes_at_start_up, .timeout = 60)
{
    setenv("SCHEDDEBUG", "schedtrace=2147483647", 1);
    capture_first_dump();
    cr_assert_eq(strncmp(firstdump, "SCHED ", 6), 0, "no dump at start-up in 20 s; stderr: \"%s\"", firstdump);
}

/* The first detailed dump comes while the runtime starts its Ms: each M's
 * creation stack is symbolized ("#\t0x..\tfunc+0x..\tfile:line"), never
 * bare addresses ("# 0x.. 0x.."), which only a crash dump prints. */
Test(schedtrace, first_detailed_dump_symbolizes_creation_stacks, .timeout = 60)
{
    setenv("SCHEDDEBUG", "schedtrace=2147483647,scheddetail=1", 1);
    firstdump_until = "\n  G";     /* the Ms come before the goroutines */
    capture_first_dump();
    cr_assert_eq(strncmp(firstdump, "SCHED ", 6), 0, "no dump at start-up in 20 s; stderr: \"%s\"", firstdump);
    cr_assert_not_null(strstr(firstdump, "  M0: "), "%s", firstdump);
    cr_assert_not_null(strstr(firstdump, "    #\t0x"), "no symbolized creation stack:\n%s", firstdump);
    cr_assert_null(strstr(firstdump, "    # 0x"), "bare addresses:\n%s", firstdump);
}
