/*
 * prog_trace.c — a known workload under the execution tracer, for
 * tests/trace_check.sh (which runs `go tool trace` on the result) and
 * tests/test_trace.c.
 *
 *   prog_trace FILE      weft_trace_start(FILE) ... weft_trace_stop()
 *   prog_trace -         no API calls (SCHEDDEBUG=tracefile=FILE traces)
 *   prog_trace -f FILE   the flight recorder (256 KiB) runs instead; a
 *                        goroutine writes its window to FILE.1 .. FILE.4
 *                        at arbitrary moments during the workload, main
 *                        to FILE at the end
 *   prog_trace -x HOW    the workload, then death by HOW: panic, segv,
 *                        quit (SIGQUIT) while another goroutine keeps
 *                        running, or deadlock; prints "dying=G", the goroutine
 *                        that dies (main for deadlock), first.  Run under
 *                        SCHEDDEBUG=flightrecorder=FILE (tests/trace/death.sh)
 *
 * The workload, on 2 Ps: goroutines that spawn and yield; a channel
 * ping-pong; a select; a contended mutex, a cond, a WaitGroup, an
 * RWMutex, a sleep; a read from a pipe (the poller); syscalls long enough
 * for sysmon to hand their P off; weft_maxprocs going 2 -> 1 -> 3 -> 2
 * while all that runs; user logs and regions.  It prints
 * "created=N", the goroutines it created while tracing, and the
 * trace must hold N + 1 GoCreate events (main is declared at the start).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <signal.h>

#include "weft.h"

static const char *path;
static bool flight;
static const char *death;      /* -x: how to die */
static int created;
static weft_wg wg = { 0, 0 };

static void go(void (*fn)(void *), void *arg)
{
    weft_wg_add(&wg, 1);
    created++;
    if (weft_go(fn, arg) <= 0) {
        fprintf(stderr, "weft_go failed\n");
        exit(1);
    }
}

/* ---- the workers; their names are what the profiles must show ------------ */

__attribute__((noinline)) void trace_worker_yield(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++)
        weft_yield();
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_spawn(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        go(trace_worker_yield, NULL);
    weft_wg_done(&wg);
}

static weft_chan *ping, *pong;

__attribute__((noinline)) void trace_worker_pong(void *arg)
{
    (void)arg;
    int v;
    while (weft_chan_recv(ping, &v))
        weft_chan_send(pong, &v);
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_ping(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        int v = i;
        weft_chan_send(ping, &v);
        weft_chan_recv(pong, &v);
    }
    weft_chan_close(ping);
    weft_wg_done(&wg);
}

static weft_chan *selch;

__attribute__((noinline)) void trace_worker_select(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        int v;
        weft_case c[2] = { { selch, WEFT_RECV, &v, false }, { NULL, WEFT_RECV, NULL, false } };
        weft_select(c, 2, -1);
    }
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_selfeed(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        weft_sleep(200 * 1000);
        weft_chan_send(selch, &i);
    }
    weft_wg_done(&wg);
}

static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_cond cond = WEFT_COND_INIT;
static atomic_int condwaiters;       /* trace_worker_condwait: how many have taken mu */
static int ready;

__attribute__((noinline)) void trace_worker_mutex(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        weft_mutex_lock(&mu);
        weft_sleep(200 * 1000);     /* holding it: the others park on it */
        weft_mutex_unlock(&mu);
        weft_yield();
    }
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_condwait(void *arg)
{
    (void)arg;
    weft_mutex_lock(&mu);
    atomic_fetch_add(&condwaiters, 1);      /* under mu: waiting once mu is free */
    while (!ready)
        weft_cond_wait(&cond, &mu);
    weft_mutex_unlock(&mu);
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_condsignal(void *arg)
{
    (void)arg;
    /* Until every waiter holds mu or waits: a fixed sleep let a slow
     * run (ASan) broadcast before they ever blocked, and the trace had no
     * GoBlockCond. */
    for (int i = 0; i < 5000 && atomic_load(&condwaiters) < 3; i++)
        weft_sleep(1000 * 1000);
    weft_mutex_lock(&mu);
    ready = 1;
    weft_cond_broadcast(&cond);
    weft_mutex_unlock(&mu);
    weft_wg_done(&wg);
}

static weft_rwmutex rw = WEFT_RWMUTEX_INIT;

__attribute__((noinline)) void trace_worker_rw(void *arg)
{
    bool writer = arg != NULL;
    for (int i = 0; i < 20; i++) {
        if (writer) {
            weft_rwmutex_lock(&rw);
            usleep(200);
            weft_rwmutex_unlock(&rw);
        } else {
            weft_rwmutex_rlock(&rw);
            usleep(50);
            weft_rwmutex_runlock(&rw);
        }
        weft_yield();
    }
    weft_wg_done(&wg);
}

static int pipefd[2];

__attribute__((noinline)) void trace_worker_netread(void *arg)
{
    (void)arg;
    char b[4];
    for (int i = 0; i < 5; i++)
        if (weft_read(pipefd[0], b, 1) != 1)
            exit(1);
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_netwrite(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++) {
        weft_sleep(2 * 1000 * 1000);
        if (weft_write(pipefd[1], "x", 1) != 1)
            exit(1);
    }
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_syscall(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++) {
        weft_trace_region_begin("slow syscall");
        weft_syscall_enter();
        usleep(30 * 1000);  /* sysmon hands the P off after 20 µs .. 10 ms */
        weft_syscall_exit();
        weft_trace_region_end();
        weft_trace_log("syscall", "done");
    }
    weft_wg_done(&wg);
}

__attribute__((noinline)) void trace_worker_procs(void *arg)
{
    (void)arg;
    static const int seq[] = { 1, 3, 2, 1, 2 };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        weft_sleep(3 * 1000 * 1000);
        weft_maxprocs(seq[i]);
    }
    weft_wg_done(&wg);
}

/* Events enough for the flight recorder to turn its segments over
 * several times while the others run. */
__attribute__((noinline)) void trace_worker_churn(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 150000; i++) {
        weft_yield();
        if (i % 3000 == 0)
            weft_sleep(1000 * 1000);
    }
    weft_wg_done(&wg);
}

/* Writes the flight recorder's window at moments unrelated to what the
 * others are doing. */
__attribute__((noinline)) void trace_worker_snapshot(void *arg)
{
    (void)arg;
    for (int i = 1; i <= 4; i++) {
        weft_sleep((int64_t)(3 + 4 * i) * 1000 * 1000);
        char name[600];
        snprintf(name, sizeof name, "%s.%d", path, i);
        int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = fd < 0 ? -1 : weft_flightrecorder_write(fd);
        if (e != 0) {
            fprintf(stderr, "weft_flightrecorder_write: %d\n", e);
            exit(1);
        }
        close(fd);
    }
    weft_wg_done(&wg);
}

static void workload(void)
{
    ping = weft_chan_new(sizeof(int), 0);
    pong = weft_chan_new(sizeof(int), 0);
    selch = weft_chan_new(sizeof(int), 0);
    if (pipe(pipefd) != 0)
        exit(1);
    fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
    fcntl(pipefd[1], F_SETFL, O_NONBLOCK);
    weft_trace_region_begin("workload");
    weft_trace_log("phase", "start");
    go(trace_worker_procs, NULL);
    if (flight) {
        go(trace_worker_snapshot, NULL);
        go(trace_worker_churn, NULL);
    }
    for (int i = 0; i < 3; i++)
        go(trace_worker_spawn, NULL);
    go(trace_worker_pong, NULL);
    go(trace_worker_ping, NULL);
    go(trace_worker_select, NULL);
    go(trace_worker_selfeed, NULL);
    for (int i = 0; i < 3; i++)
        go(trace_worker_mutex, NULL);
    for (int i = 0; i < 3; i++)
        go(trace_worker_condwait, NULL);
    go(trace_worker_condsignal, NULL);
    go(trace_worker_rw, (void *)1);
    for (int i = 0; i < 2; i++)
        go(trace_worker_rw, NULL);
    go(trace_worker_netread, NULL);
    go(trace_worker_netwrite, NULL);
    for (int i = 0; i < 2; i++)
        go(trace_worker_syscall, NULL);
    weft_wg_wait(&wg);
    weft_trace_log("phase", "end");
    weft_trace_region_end();
}

static int *volatile nullp;     /* volatile: the compiler cannot prove it NULL */

/* Keeps the other P busy while trace_worker_die dies: its events go on
 * into the recorder as the crash reads it. */
__attribute__((noinline)) void trace_worker_busy(void *arg)
{
    (void)arg;
    for (;;) {
        weft_trace_log("busy", "spin");
        weft_yield();
    }
}

__attribute__((noinline)) void trace_worker_die(void *arg)
{
    (void)arg;
    printf("dying=%lld\n", (long long)weft_id());
    fflush(stdout);
    weft_sleep(1000 * 1000);
    weft_trace_log("phase", "dying");
    if (strcmp(death, "panic") == 0)
        weft_panic("prog_trace: dying as asked");
    if (strcmp(death, "segv") == 0)
        *nullp = 1;
    /* To this thread: a process-wide kill may land on the busy worker's
     * thread inside weft_trace_log, holding the tracer's lock, and the
     * crash then writes no window (tracebuf.c, "A window from a crash"). */
    if (strcmp(death, "quit") == 0)
        raise(SIGQUIT);
    for (;;)
        weft_yield();       /* until SIGQUIT lands */
}

static void die(void)
{
    if (strcmp(death, "deadlock") == 0) {
        printf("dying=%lld\n", (long long)weft_id());
        fflush(stdout);
        weft_trace_log("phase", "dying");
        weft_chan *never = weft_chan_new(sizeof(int), 0);
        int v;
        weft_chan_recv(never, &v);     /* nobody else is left: deadlock */
    } else {
        weft_go(trace_worker_busy, NULL);
        weft_go(trace_worker_die, NULL);
        weft_sleep(10LL * 1000 * 1000 * 1000);
    }
    fprintf(stderr, "prog_trace: still alive\n");
    exit(1);
}

static void mainfn(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    int fd = -1;
    if (death) {
        workload();
        die();
    }
    if (flight) {
        int e = weft_flightrecorder_start(256 * 1024);
        if (e != 0) {
            fprintf(stderr, "weft_flightrecorder_start: %d\n", e);
            exit(1);
        }
        workload();
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || weft_flightrecorder_write(fd) != 0 || weft_flightrecorder_stop() != 0) {
            fprintf(stderr, "weft_flightrecorder_write or stop failed\n");
            exit(1);
        }
        close(fd);
        printf("created=%d\n", created);
        return;
    }
    if (strcmp(path, "-") != 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = fd < 0 ? -1 : weft_trace_start(fd);
        if (e != 0) {
            fprintf(stderr, "weft_trace_start: %d\n", e);
            exit(1);
        }
    }
    workload();
    if (fd >= 0) {
        int e = weft_trace_stop();
        if (e != 0) {
            fprintf(stderr, "weft_trace_stop: %d\n", e);
            exit(1);
        }
        close(fd);
    }
    printf("created=%d\n", created);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "-f") == 0) {
        flight = true;
        path = argv[2];
    } else if (argc == 3 && strcmp(argv[1], "-x") == 0) {
        death = argv[2];
    } else if (argc == 2) {
        path = argv[1];
    } else {
        fprintf(stderr, "usage: prog_trace FILE|-|-f FILE|-x panic|segv|quit|deadlock\n");
        return 2;
    }
    return weft_main(mainfn, NULL) == 0 ? 0 : 1;
}
