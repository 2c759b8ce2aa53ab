/*
 * test_sysmon.c — sysmon sleeps while every P is idle (Go's sysmonwait), so
 * an idle program costs nothing, and wakes when there is something to
 * watch again: timers still fire, and its duties (the syscall hand-off, the
 * preemption flag) work after an idle spell.  Each test boots its own runtime (Criterion runs every test
 * in its own process).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "testutil.h"

static void run(void (*fn)(void *), void *arg)
{
    cr_assert_eq(weft_main(fn, arg), 0);
}

static bool sysmon_waiting(void)
{
    weft__lock(&sched.lock);
    bool w = sched.sysmonwait;
    weft__unlock(&sched.lock);
    return w;
}

/* Waits (a plain thread, polling) until sysmon sleeps in sysmonwait; false
 * after 20 s. */
static bool wait_sysmonwait(void)
{
    for (int i = 0; i < 20000; i++) {
        if (sysmon_waiting())
            return true;
        usleep(1000);
    }
    return false;
}

/* Context switches (voluntary and not) of every thread of this process
 * but the caller: every time a runtime thread woke up or was put to sleep. */
static long switches_of_others(void)
{
    pid_t me = weft__gettid();
    long total = 0;
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == me)
            continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;   /* the thread has exited */
        while (fgets(line, sizeof line, f)) {
            long v;
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
                total += v;
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

static void schedtrace_to(int fd, void *arg)
{
    (void)arg;
    weft_schedtrace(fd, true);
}

/* Starts a plain thread running fn and parks the calling goroutine until
 * a byte arrives on rfd (written by that thread or by a goroutine), then
 * joins the thread from a syscall bracket. */
static void park_with_thread(void *(*fn)(void *), int rfd)
{
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, fn, NULL), 0);
    char c;
    cr_assert_eq(weft_read(rfd, &c, 1), 1);
    weft_syscall_enter();
    pthread_join(t, NULL);
    weft_syscall_exit();
}

/* ---- an idle program: no periodic wake-ups --------------------------------------- */

/* Every goroutine parked (on a channel, and one on a pipe, so that an M
 * sleeps in epoll_wait): sysmon sleeps (schedtrace says sysmonwait=true)
 * and the process's threads do not wake for a second.  sysmon used to
 * wake every 10 ms for nothing: about 100 wake-ups a second, each a
 * context switch. */
static int idle_pipe[2], idle_io[2];
static weft_chan *idle_never;
static long idle_switches;
static char idle_dump[16384];

static void idle_chan(void *arg)
{
    (void)arg;
    char c;
    weft_chan_recv(idle_never, &c);
}

static void idle_fd(void *arg)
{
    (void)arg;
    char c;
    weft_read(idle_io[0], &c, 1);
}

static void *idle_watcher(void *arg)
{
    (void)arg;
    cr_assert(wait_sysmonwait(), "sysmon never went to sleep with every P idle");
    pipe_capture(schedtrace_to, NULL, idle_dump, sizeof idle_dump);
    long before = switches_of_others();
    sleep(1);
    idle_switches = switches_of_others() - before;
    /* Plain write: wakes main without making this thread a user of weft. */
    cr_assert_eq(write(idle_pipe[1], "x", 1), 1);
    return NULL;
}

static void idle_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    idle_never = weft_chan_new(1, 0);
    cr_assert_eq(pipe(idle_pipe), 0);
    cr_assert_eq(pipe(idle_io), 0);
    for (int i = 0; i < 100; i++)
        cr_assert_gt(weft_go(idle_chan, NULL), 0);
    cr_assert_gt(weft_go(idle_fd, NULL), 0);
    park_with_thread(idle_watcher, idle_pipe[0]);
}

Test(sysmon, an_idle_program_does_not_wake_up, .timeout = 120)
{
    run(idle_main, NULL);
    cr_assert_not_null(strstr(idle_dump, " sysmonwait=true\n"), "the dump:\n%s", idle_dump);
    /* Nothing should wake at all; a few stray switches (a late page
     * fault, the kernel's own doings) are not the 10 ms tick's 100. */
    cr_assert_leq(idle_switches, 10, "the runtime's threads switched %ld times in an idle second",
                  idle_switches);
}

/* ---- idle and busy many times a second ------------------------------------------ */

/* A goroutine that sleeps 100 µs at a time leaves every P idle thousands
 * of times a second, and each end of an idle spell takes a P: sysmon may
 * sleep through a spell only after a whole tick (10 ms) of looking, so it
 * is woken at most once per tick, as often as the tick would have.  (It
 * once looked again at once after a wake-up and went straight back to
 * sleep: a wake-up per spell.) */
static int64_t ib_sleeps, ib_spells, ib_ns;

static void ib_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    weft_sleep(100LL * 1000 * 1000);    /* sysmon backs off to its longest tick */
    weft__lock(&sched.lock);
    int64_t before = sched.nsysmonwait;
    weft__unlock(&sched.lock);
    int64_t t0 = weft_nanotime();
    for (ib_spells = 0; weft_nanotime() - t0 < 1000LL * 1000 * 1000; ib_spells++)
        weft_sleep(100 * 1000);
    ib_ns = weft_nanotime() - t0;
    weft__lock(&sched.lock);
    ib_sleeps = sched.nsysmonwait - before;
    weft__unlock(&sched.lock);
}

Test(sysmon, wakes_at_most_once_a_tick, .timeout = 60)
{
    run(ib_main, NULL);
    /* After each sleep sysmon waits out a whole 10 ms tick first. */
    int64_t ticks = ib_ns / (10 * 1000 * 1000);
    cr_assert_leq(ib_sleeps, ticks + 1, "sysmon slept %lld times in %lld idle spells over %lld ms",
                  (long long)ib_sleeps, (long long)ib_spells, (long long)(ib_ns / 1000000));
}

/* ---- timers fire while sysmon sleeps ------------------------------------------- */

/* A timer is an idle M's to wait for (it sleeps until the earliest one),
 * not sysmon's: a sleeper armed before sysmon goes to sleep still wakes,
 * and wakes the program, main parked meanwhile. */
static int tm_pipe[2];
static atomic_long tm_fired;
static atomic_bool tm_waited_with_timer;

static void tm_sleeper(void *arg)
{
    (void)arg;
    weft_sleep(700LL * 1000 * 1000);
    atomic_store(&tm_fired, 1);
    cr_assert_eq(weft_write(tm_pipe[1], "z", 1), 1);
}

static void *tm_watcher(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000 && !atomic_load(&tm_fired); i++) {
        if (sysmon_waiting()) {
            atomic_store(&tm_waited_with_timer, weft__nexttimer() != 0 && !atomic_load(&tm_fired));
            break;
        }
        usleep(1000);
    }
    return NULL;
}

static void tm_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    cr_assert_eq(pipe(tm_pipe), 0);
    cr_assert_gt(weft_go(tm_sleeper, NULL), 0);
    park_with_thread(tm_watcher, tm_pipe[0]);
}

Test(sysmon, timers_fire_while_sysmon_sleeps, .timeout = 60)
{
    run(tm_main, NULL);
    cr_assert(atomic_load(&tm_waited_with_timer), "sysmon did not sleep while the timer was pending");
    cr_assert(atomic_load(&tm_fired));
}

/* ---- sysmon's duties after an idle spell --------------------------------------- */

/* Each duty, after the program has been idle long enough for sysmon to go
 * to sleep: whatever ends the idle spell takes a P, which wakes it. */
static int dw_pipe[2];

/* Idles until sysmon sleeps: main parks on a pipe that a plain thread
 * writes once sysmonwait is set. */
static void *dw_waker(void *arg)
{
    (void)arg;
    cr_assert(wait_sysmonwait(), "sysmon never went to sleep with every P idle");
    cr_assert_eq(write(dw_pipe[1], "x", 1), 1);
    return NULL;
}

static void idle_spell(void)
{
    cr_assert_eq(pipe(dw_pipe), 0);
    park_with_thread(dw_waker, dw_pipe[0]);
    weft_close(dw_pipe[0]);
    close(dw_pipe[1]);
}

/* The syscall hand-off: on 1 P, a goroutine only runs while main blocks in
 * a raw read if sysmon hands main's P to another M. */
static int sc_pipe[2];

static void sc_writer(void *arg)
{
    (void)arg;
    ssize_t r = write(sc_pipe[1], "y", 1);
    (void)r;
}

static void sc_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    idle_spell();
    cr_assert_eq(pipe(sc_pipe), 0);
    cr_assert_gt(weft_go(sc_writer, NULL), 0);    /* queued behind main on the one P */
    char c;
    weft_syscall_enter();
    ssize_t r = read(sc_pipe[0], &c, 1);
    weft_syscall_exit();
    cr_assert_eq(r, 1);
}

Test(sysmon, hands_off_a_syscalls_p_after_an_idle_spell, .timeout = 60)
{
    run(sc_main, NULL);
}

/* The preemption flag: a goroutine that runs for 10 ms without reaching a
 * scheduling point is flagged by sysmon's next look, which an idle spell
 * must not postpone for ever. */
static void pre_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    idle_spell();
    G *gp = weft__getg();
    AO_store(&gp->preempt, 0);
    /* Bounded so a bug fails, not hangs. */
    int64_t start = weft_nanotime();
    while (!AO_load(&gp->preempt) && weft_nanotime() - start < 20LL * 1000000000)
        ;
    cr_assert(AO_load(&gp->preempt), "sysmon never flagged a G that ran for 20 s after an idle spell");
    weft_yield();
}

Test(sysmon, flags_a_long_running_g_after_an_idle_spell, .timeout = 60)
{
    run(pre_main, NULL);
}
