/*
 * test_lockcycle.c — lock cycles among weft_mutex holders (lockcycle.c):
 * goroutines, and plain threads, each blocked on a mutex the next one
 * holds are reported once, with every member's traceback; long waits
 * without a cycle never are.  The scenarios run in tests/prog_lockcycle.c.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "lockcycle.h"
#include "diag/scheddebug.h"
#include "testutil.h"

static char out[8192], err[65536];

static int run(const char *mode, const char *scheddebug)
{
    if (scheddebug)
        setenv("SCHEDDEBUG", scheddebug, 1);
    else
        unsetenv("SCHEDDEBUG");
    return run_prog("prog_lockcycle", mode, out, sizeof out, err, sizeof err);
}

static int count(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

/* The address prog_lockcycle printed for mutex i ("mutexes A B C ..."). */
static void mutexaddr(int i, char *buf, size_t len)
{
    const char *p = strstr(out, "mutexes ");
    cr_assert_not_null(p, "stdout:\n%s", out);
    p += strlen("mutexes ");
    for (int k = 0; k < i; k++)
        p = strchr(p, ' ') + 1;
    size_t n = strcspn(p, " \n");
    cr_assert_lt(n, len);
    memcpy(buf, p, n);
    buf[n] = 0;
}

/* "goroutine N holds ADDR" from stdout: N as a string. */
static void holderof(const char *addr, char *buf, size_t len)
{
    char pat[64];
    snprintf(pat, sizeof pat, " holds %s\n", addr);
    const char *p = strstr(out, pat);
    cr_assert_not_null(p, "no holder of %s; stdout:\n%s", addr, out);
    const char *q = p;
    while (q > out && q[-1] != ' ')
        q--;
    cr_assert_lt((size_t)(p - q), len);
    memcpy(buf, q, (size_t)(p - q));
    buf[p - q] = 0;
}

/* The report says: who waits for mutex i, and who holds it. */
static void expect_edge(const char *who, int i, const char *holder)
{
    char addr[32], line[160];
    mutexaddr(i, addr, sizeof addr);
    snprintf(line, sizeof line, "\t%s waits for mutex %s held by %s\n", who, addr, holder);
    cr_assert_not_null(strstr(err, line), "stderr lacks \"%s\":\n%s", line, err);
}

/* Ring member i holds mutex i and waits for mutex (i + 1) % n; with
 * headers, each member's traceback shows it waiting in weft_mutex_lock
 * (a fatal error shows the reporter running instead). */
static void expect_ring(int n, bool headers)
{
    for (int i = 0; i < n; i++) {
        char addr[32], me[32], next[32], who[48], holder[48];
        mutexaddr(i, addr, sizeof addr);
        holderof(addr, me, sizeof me);
        mutexaddr((i + 1) % n, addr, sizeof addr);
        holderof(addr, next, sizeof next);
        snprintf(who, sizeof who, "goroutine %s", me);
        snprintf(holder, sizeof holder, "goroutine %s", next);
        expect_edge(who, (i + 1) % n, holder);
        /* and its traceback: header, the lock call, the function */
        if (!headers)
            continue;
        char hdr[128];
        snprintf(hdr, sizeof hdr, "\ngoroutine %s [sync.Mutex.Lock]:\nweft_mutex_lock(...)\n", me);
        cr_assert_not_null(strstr(err, hdr), "stderr lacks \"%s\":\n%s", hdr, err);
    }
    cr_assert_eq(count(err, "\tgoroutine "), n, "one line per member:\n%s", err);
    cr_assert_eq(count(err, "ring_member(...)"), n, "every member's traceback:\n%s", err);
}

static void expect_once(const char *mode, int st)
{
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %d; stderr:\n%s", mode, st, err);
    cr_assert_eq(count(err, "weft: lock cycle:\n"), 1, "%s: one report; stderr:\n%s", mode, err);
    cr_assert_eq(strncmp(err, "weft: lock cycle:\n", strlen("weft: lock cycle:\n")), 0,
                 "%s: nothing before the report:\n%s", mode, err);
    char done[32];
    snprintf(done, sizeof done, "%s: done\n", mode);
    cr_assert_not_null(strstr(out, done), "the program went on; stdout:\n%s", out);
}

Test(lockcycle, abba_between_two_goroutines_is_reported_once, .timeout = 60)
{
    int st = run("abba", NULL);
    expect_once("abba", st);
    expect_ring(2, true);
}

Test(lockcycle, a_ring_of_three_goroutines_is_reported_once, .timeout = 60)
{
    int st = run("ring", NULL);
    expect_once("ring", st);
    expect_ring(3, true);
}

Test(lockcycle, relocking_a_held_mutex_is_a_cycle_of_one, .timeout = 60)
{
    int st = run("self", NULL);
    expect_once("self", st);
    expect_ring(1, true);
}

/* The edges of the cycle between a plain thread (holding mutex 0) and a
 * goroutine (holding mutex 1); returns the thread's name, "thread <tid>". */
static void expect_thread_cycle(const char *mode, char *thread, size_t len)
{
    char addr[32], g[32], who[48];
    mutexaddr(1, addr, sizeof addr);
    holderof(addr, g, sizeof g);
    snprintf(who, sizeof who, "goroutine %s", g);
    const char *t = strstr(err, "held by thread ");
    cr_assert_not_null(t, "%s: stderr:\n%s", mode, err);
    size_t n = strcspn(t + strlen("held by "), "\n");
    cr_assert_lt(n, len);
    memcpy(thread, t + strlen("held by "), n);
    thread[n] = 0;
    expect_edge(who, 0, thread);
    expect_edge(thread, 1, who);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "\n%s [sync.Mutex.Lock]:\n", thread);
    cr_assert_not_null(strstr(err, hdr), "stderr lacks \"%s\":\n%s", hdr, err);
    snprintf(hdr, sizeof hdr, "\n%s [sync.Mutex.Lock]:\nweft_mutex_lock(...)\n", who);
    cr_assert_not_null(strstr(err, hdr), "stderr lacks \"%s\":\n%s", hdr, err);
}

Test(lockcycle, a_plain_thread_takes_part_as_a_holder, .timeout = 60)
{
    int st = run("thread", NULL);
    expect_once("thread", st);
    char thread[48];
    expect_thread_cycle("thread", thread, sizeof thread);
}

Test(lockcycle, a_plain_thread_closing_the_cycle_reports_it_with_its_stack, .timeout = 60)
{
    int st = run("threadlast", NULL);
    expect_once("threadlast", st);
    char thread[48];
    expect_thread_cycle("threadlast", thread, sizeof thread);
    /* the reporter comes first, with its own stack (a thread can walk only its own) */
    char first[128];
    snprintf(first, sizeof first, "weft: lock cycle:\n\t%s waits for ", thread);
    cr_assert_eq(strncmp(err, first, strlen(first)), 0, "stderr:\n%s", err);
    snprintf(first, sizeof first, "\n%s [sync.Mutex.Lock]:\nweft_mutex_lock(...)\n", thread);
    cr_assert_not_null(strstr(err, first), "stderr:\n%s", err);
    cr_assert_not_null(strstr(err, "thread_member(...)"), "stderr:\n%s", err);
}

Test(lockcycle, an_rwmutex_write_lock_takes_part, .timeout = 60)
{
    int st = run("rwmutex", NULL);
    expect_once("rwmutex", st);
    char rw[32];
    mutexaddr(4, rw, sizeof rw);    /* "mutexes A B C rwmutex D" */
    char want[128];
    snprintf(want, sizeof want, " waits for rwmutex %s held by goroutine ", rw);
    cr_assert_not_null(strstr(err, want), "stderr lacks \"%s\":\n%s", want, err);
    cr_assert_not_null(strstr(err, "[sync.Mutex.Lock]:\nweft_rwmutex_lock(...)\n"), "stderr:\n%s", err);
}

Test(lockcycle, long_but_live_waits_are_not_reported, .timeout = 60)
{
    int st = run("live", NULL);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d; stderr:\n%s", st, err);
    cr_assert_null(strstr(err, "lock cycle"), "stderr:\n%s", err);
    cr_assert_not_null(strstr(out, "live: done\n"), "stdout:\n%s", out);
}

Test(lockcycle, sigquit_lists_the_cycles_found, .timeout = 60)
{
    setenv("LOCKCYCLE_QUIT", "1", 1);
    int st = run("abba", NULL);
    unsetenv("LOCKCYCLE_QUIT");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x; stderr:\n%s", st, err);
    const char *q = strstr(err, "SIGQUIT: quit\n");
    cr_assert_not_null(q, "%s", err);
    const char *l = strstr(q, "\nweft: lock cycles found so far: 1\n\tgoroutine ");
    cr_assert_not_null(l, "the dump lists the cycle:\n%s", err);
    cr_assert_eq(count(l, " waits for mutex "), 2, "%s", err);
}

Test(lockcycle, fatal_makes_it_a_fatal_error, .timeout = 60)
{
    int st = run("abba", "lockcycle=fatal");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d; stderr:\n%s", st, err);
    cr_assert_eq(strncmp(err, "fatal error: lock cycle:\n\tgoroutine ", strlen("fatal error: lock cycle:\n\tgoroutine ")), 0,
                 "stderr:\n%s", err);
    expect_ring(2, false);
    /* a fatal error dumps every goroutine: main's sleep too */
    cr_assert_not_null(strstr(err, "goroutine 1 [sleep]:"), "stderr:\n%s", err);
    cr_assert_null(strstr(out, "abba: done"), "stdout:\n%s", out);
}

Test(lockcycle, zero_turns_detection_off, .timeout = 60)
{
    int st = run("abba", "lockcycle=0");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d; stderr:\n%s", st, err);
    cr_assert_null(strstr(err, "lock cycle"), "stderr:\n%s", err);
    cr_assert_not_null(strstr(out, "abba: done\n"), "stdout:\n%s", out);
}

Test(lockcycle, scheddebug_parses_lockcycle)
{
    weft__scheddebug d;
    cr_assert_eq(weft__scheddebug_parse(NULL, &d, NULL, NULL), 0);
    cr_assert_eq(d.lockcycle, LOCKCYCLE_REPORT, "on by default");
    cr_assert_eq(weft__scheddebug_parse("lockcycle=0", &d, NULL, NULL), 0);
    cr_assert_eq(d.lockcycle, LOCKCYCLE_OFF);
    cr_assert_eq(weft__scheddebug_parse("lockcycle=fatal", &d, NULL, NULL), 0);
    cr_assert_eq(d.lockcycle, LOCKCYCLE_FATAL);
    cr_assert_eq(weft__scheddebug_parse("lockcycle=1", &d, NULL, NULL), 0);
    cr_assert_eq(d.lockcycle, LOCKCYCLE_REPORT);
    cr_assert_eq(weft__scheddebug_parse("lockcycle=yes", &d, NULL, NULL), 1);
    cr_assert_eq(d.lockcycle, LOCKCYCLE_REPORT, "a bad value leaves the default");
}

/* In process: the owner word names the holder while it is locked, and
 * nobody once it is unlocked (lockcycle.c relies on it never being stale). */
static weft_mutex om = WEFT_MUTEX_INIT;
static uintptr_t seen_locked, seen_unlocked, want_holder;

static void owner_main(void *arg)
{
    (void)arg;
    want_holder = (uintptr_t)weft_id() << 1;
    weft_mutex_lock(&om);
    seen_locked = om.owner;
    weft_mutex_unlock(&om);
    seen_unlocked = om.owner;
}

Test(lockcycle, the_owner_word_names_the_holder_while_locked, .timeout = 30)
{
    cr_assert_eq(weft_main(owner_main, NULL), 0);
    cr_assert_eq(seen_locked, want_holder);
    cr_assert_eq(seen_unlocked, 0);
    /* a plain thread: its tid, tagged */
    cr_assert(weft_mutex_trylock(&om));
    cr_assert_eq(om.owner, (uintptr_t)weft__gettid() << 1 | 1);
    weft_mutex_unlock(&om);
    cr_assert_eq(om.owner, 0);
    cr_assert_eq(AO_load(&weft__lockcycles), 0, "no cycle reported");
}
