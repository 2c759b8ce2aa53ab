/*
 * test_netpoll.c — weft_read/write/accept/connect/wait_fd/close park the
 * goroutine, not the thread: a TCP echo server with 1,000 concurrent
 * connections on loopback, close waking parked readers, timeouts.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

static void run(void (*fn)(void *), void *arg)
{
    cr_assert_eq(weft_main(fn, arg), 0);
}

/* ---- echo server, 1,000 connections ------------------------------------------ */

#define CONNS 1000
#define ROUNDS 5
static int lfd;
static struct sockaddr_in addr;
static weft_wg clients = WEFT_WG_INIT;
static atomic_long served, client_ok, client_bad;

static void handler(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[512];
    for (;;) {
        ssize_t n = weft_read(c, buf, sizeof buf);
        if (n <= 0)
            break;
        if (weft_write(c, buf, (size_t)n) != n)
            break;
    }
    weft_close(c);
    atomic_fetch_add(&served, 1);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int c = weft_accept(lfd, NULL, NULL);
        if (c < 0)
            return;     /* -EBADF once the test closes the listener */
        cr_assert_gt(weft_go(handler, (void *)(intptr_t)c), 0);
    }
}

static void client(void *arg)
{
    long id = (long)(intptr_t)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = s >= 0 && weft_connect(s, (struct sockaddr *)&addr, sizeof addr) == 0;
    for (int r = 0; ok && r < ROUNDS; r++) {
        char msg[64], back[64];
        int len = snprintf(msg, sizeof msg, "client %ld round %d", id, r);
        ok = weft_write(s, msg, (size_t)len) == len;
        int got = 0;
        while (ok && got < len) {
            ssize_t n = weft_read(s, back + got, (size_t)(len - got));
            ok = n > 0;
            got += ok ? (int)n : 0;
        }
        ok = ok && memcmp(msg, back, (size_t)len) == 0;
    }
    if (s >= 0)
        weft_close(s);
    atomic_fetch_add(ok ? &client_ok : &client_bad, 1);
    weft_wg_done(&clients);
}

static void echo_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    cr_assert_eq(bind(lfd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t al = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &al);
    cr_assert_eq(listen(lfd, 4096), 0);
    weft_go(acceptor, NULL);
    weft_wg_add(&clients, CONNS);
    for (long i = 0; i < CONNS; i++)
        weft_go(client, (void *)(intptr_t)i);
    weft_wg_wait(&clients);
    cr_assert_eq(atomic_load(&client_bad), 0);
    cr_assert_eq(atomic_load(&client_ok), CONNS);
    while (atomic_load(&served) < CONNS)
        weft_sleep(1000 * 1000);
    weft_close(lfd);    /* wakes the acceptor with -EBADF */
}

Test(netpoll, echo_server_with_a_thousand_connections, .timeout = 120)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    cr_assert_geq(rl.rlim_cur, 2 * CONNS + 64, "need 2,064 fds, have %lu", (unsigned long)rl.rlim_cur);
    run(echo_main, NULL);
}

/* ---- close wakes a parked reader; timeouts; pipes on one P ------------------------ */

static int pfd[2];
static atomic_long reader_result = 1;

static void parked_reader(void *arg)
{
    (void)arg;
    char c;
    atomic_store(&reader_result, weft_read(pfd[0], &c, 1));
}

static void close_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    cr_assert_eq(pipe(pfd), 0);
    weft_go(parked_reader, NULL);
    weft_sleep(10 * 1000 * 1000);           /* the reader is parked by now */
    cr_assert_eq(atomic_load(&reader_result), 1, "still waiting");
    cr_assert_eq(weft_close(pfd[0]), 0);
    while (atomic_load(&reader_result) == 1)
        weft_yield();
    cr_assert_eq(atomic_load(&reader_result), -EBADF);
    /* wait_fd: timeout, then readiness */
    int q[2];
    cr_assert_eq(pipe(q), 0);
    int64_t t0 = weft_nanotime();
    cr_assert_eq(weft_wait_fd(q[0], WEFT_READ, 5 * 1000 * 1000), -ETIMEDOUT);
    cr_assert_geq(weft_nanotime() - t0, 5 * 1000 * 1000);
    cr_assert_eq(weft_wait_fd(q[0], WEFT_READ, 0), -ETIMEDOUT);
    cr_assert_eq(weft_write(q[1], "x", 1), 1);
    cr_assert_eq(weft_wait_fd(q[0], WEFT_READ, -1), WEFT_READ);
    cr_assert_eq(weft_wait_fd(q[0], 7, 0), -EINVAL);
    cr_assert_eq(weft_read(-1, NULL, 0), -EBADF);
    char c;
    cr_assert_eq(weft_read(q[0], &c, 1), 1);
    weft_close(q[0]);
    weft_close(q[1]);
    weft_close(pfd[1]);
    cr_assert_eq(weft_close(pfd[1]), -EBADF, "double close");
}

Test(netpoll, close_wakes_parked_readers_and_timeouts_work, .timeout = 60)
{
    run(close_main, NULL);
}

/* A goroutine blocked on a pipe does not block its P (1 P). */
static int tp[2];
static atomic_long others_ran, got_byte;

static void pipe_reader(void *arg)
{
    (void)arg;
    char c = 0;
    if (weft_read(tp[0], &c, 1) == 1 && c == 'z')
        atomic_store(&got_byte, 1);
}

static void other(void *arg)
{
    (void)arg;
    atomic_fetch_add(&others_ran, 1);
}

static void *late_writer(void *arg)
{
    (void)arg;
    usleep(20000);
    ssize_t r = write(tp[1], "z", 1);
    (void)r;
    return NULL;
}

static void onep_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    cr_assert_eq(pipe(tp), 0);
    weft_go(pipe_reader, NULL);
    for (int i = 0; i < 100; i++)
        weft_go(other, NULL);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, NULL);
    while (atomic_load(&others_ran) < 100 || !atomic_load(&got_byte))
        weft_sleep(1000 * 1000);
    pthread_join(t, NULL);
}

Test(netpoll, a_goroutine_waiting_on_a_pipe_leaves_the_p_free, .timeout = 60)
{
    run(onep_main, NULL);
}

/* Plain threads block in the same calls. */
Test(netpoll, plain_thread_io_blocks_the_thread, .timeout = 30)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, NULL);
    tp[1] = p[1];
    char c;
    cr_assert_eq(weft_read(p[0], &c, 1), 1);
    cr_assert_eq(c, 'z');
    pthread_join(t, NULL);
    cr_assert_eq(weft_wait_fd(p[0], WEFT_READ, 1000000), -ETIMEDOUT);
}

/* ---- several goroutines on one fd ------------------------------------------------ */

/* A pool of acceptors on one listener: a burst of connections (one edge for
 * several of them) is accepted, every one, by the pool in turn. */
#define POOL 8
#define POOLCONNS 200
static int pool_lfd;
static atomic_long pool_accepted, pool_err;
static weft_wg pool_done = WEFT_WG_INIT;

static void pool_acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int c = weft_accept(pool_lfd, NULL, NULL);
        if (c == -EBADF)
            break;      /* the listener was closed */
        if (c < 0) {
            atomic_fetch_add(&pool_err, 1);
            break;
        }
        atomic_fetch_add(&pool_accepted, 1);
        weft_close(c);
    }
    weft_wg_done(&pool_done);
}

static void pool_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    pool_lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof a;
    cr_assert_eq(bind(pool_lfd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(pool_lfd, POOLCONNS), 0);
    cr_assert_eq(getsockname(pool_lfd, (struct sockaddr *)&a, &al), 0);
    weft_wg_add(&pool_done, POOL);
    for (int i = 0; i < POOL; i++)
        weft_go(pool_acceptor, NULL);
    weft_sleep(20 * 1000 * 1000);   /* all of them parked on the listener */
    int cs[POOLCONNS];
    for (int round = 0; round < 4; round++) {
        /* A burst: the connections complete in the kernel before any
         * acceptor runs. */
        int n = POOLCONNS / 4;
        for (int i = 0; i < n; i++) {
            cs[i] = socket(AF_INET, SOCK_STREAM, 0);
            cr_assert_eq(connect(cs[i], (struct sockaddr *)&a, sizeof a), 0);
        }
        long want = (long)(round + 1) * n;
        for (int i = 0; i < 5000 && atomic_load(&pool_accepted) < want; i++)
            weft_sleep(1000 * 1000);
        cr_assert_eq(atomic_load(&pool_accepted), want, "round %d: %ld of %ld accepted", round,
                     atomic_load(&pool_accepted), want);
        for (int i = 0; i < n; i++)
            close(cs[i]);
    }
    cr_assert_eq(atomic_load(&pool_err), 0, "no acceptor got an error (-EBUSY once)");
    weft_close(pool_lfd);           /* wakes every acceptor with -EBADF */
    weft_wg_wait(&pool_done);
}

Test(netpoll, a_pool_of_acceptors_shares_one_listener, .timeout = 60)
{
    run(pool_main, NULL);
}

/* Two goroutines reading one fd (and two writing another) queue and take
 * turns; nothing is lost, nobody gets -EBUSY. */
#define RMSGS 400
static int rp[2], wp[2];
static atomic_long rd_bytes[2], rd_err;

static void rd_reader(void *arg)
{
    long id = (long)(intptr_t)arg;
    char buf[16];
    for (;;) {
        ssize_t n = weft_read(rp[0], buf, sizeof buf);
        if (n == 0)
            return;
        if (n < 0) {
            atomic_fetch_add(&rd_err, 1);
            return;
        }
        atomic_fetch_add(&rd_bytes[id], n);
        /* Busy with what it read: the next message must go to the reader
         * parked on the fd, not wait for this one (a reader that is still
         * reading would take it first, rightly). */
        weft_sleep(200 * 1000);
    }
}

static atomic_long wr_bytes;
static void rd_writer(void *arg)
{
    (void)arg;
    char big[4096];
    memset(big, 'w', sizeof big);
    for (int i = 0; i < 64; i++) {
        ssize_t n = weft_write(wp[1], big, sizeof big);
        if (n != (ssize_t)sizeof big) {
            atomic_fetch_add(&rd_err, 1);
            return;
        }
        atomic_fetch_add(&wr_bytes, n);
    }
}

static void *drain_pipe(void *arg)
{
    (void)arg;
    char buf[4096];
    long total = 0;
    while (total < 2 * 64 * 4096) {
        ssize_t n = read(wp[0], buf, sizeof buf);
        if (n <= 0)
            break;
        total += n;
        if (total % (16 * 4096) == 0)
            usleep(2000);   /* let the pipe fill, so the writers park */
    }
    return NULL;
}

static void readers_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    cr_assert_eq(pipe(rp), 0);
    cr_assert_eq(pipe(wp), 0);
    weft_go(rd_reader, (void *)0);
    weft_go(rd_reader, (void *)1);
    /* One message at a time, each read before the next: every message
     * wakes the reader at the head of the queue, which then hands the
     * turn to the other. */
    for (int i = 0; i < RMSGS; i++) {
        cr_assert_eq(write(rp[1], "0123456789", 10), 10);
        for (int k = 0; k < 100000 && atomic_load(&rd_bytes[0]) + atomic_load(&rd_bytes[1]) < 10L * (i + 1); k++)
            weft_yield();
    }
    close(rp[1]);                   /* both see EOF */
    cr_assert_eq(atomic_load(&rd_err), 0, "no reader got an error");
    cr_assert_eq(atomic_load(&rd_bytes[0]) + atomic_load(&rd_bytes[1]), 10L * RMSGS, "every byte read once");
    cr_assert_gt(atomic_load(&rd_bytes[0]), 0, "reader 0 had turns (%ld / %ld)", atomic_load(&rd_bytes[0]), atomic_load(&rd_bytes[1]));
    cr_assert_gt(atomic_load(&rd_bytes[1]), 0, "reader 1 had turns");

    /* Two writers on a pipe a slow thread drains: both park on the full
     * pipe and both finish. */
    weft_go(rd_writer, NULL);
    weft_go(rd_writer, NULL);
    pthread_t t;
    pthread_create(&t, NULL, drain_pipe, NULL);
    for (int i = 0; i < 10000 && atomic_load(&wr_bytes) < 2 * 64 * 4096; i++)
        weft_sleep(1000 * 1000);
    cr_assert_eq(atomic_load(&wr_bytes), 2 * 64 * 4096);
    cr_assert_eq(atomic_load(&rd_err), 0);
    pthread_join(t, NULL);
    weft_close(rp[0]);
    weft_close(wp[0]);
    weft_close(wp[1]);
}

Test(netpoll, several_readers_and_writers_on_one_fd_take_turns, .timeout = 60)
{
    run(readers_main, NULL);
}

/* Timeouts and close with several waiters: each waiter's own deadline,
 * and close wakes them all. */
static int tw_p[2];
static atomic_long tw_timeouts, tw_ebadf;
static void tw_timed(void *arg)
{
    int64_t ns = (int64_t)(intptr_t)arg;
    if (weft_wait_fd(tw_p[0], WEFT_READ, ns) == -ETIMEDOUT)
        atomic_fetch_add(&tw_timeouts, 1);
}
static void tw_forever(void *arg)
{
    (void)arg;
    char c;
    if (weft_read(tw_p[0], &c, 1) == -EBADF)
        atomic_fetch_add(&tw_ebadf, 1);
}

static void tw_main(void *arg)
{
    (void)arg;
    cr_assert_eq(pipe(tw_p), 0);
    for (int i = 0; i < 3; i++)
        weft_go(tw_forever, NULL);
    for (int i = 1; i <= 4; i++)
        weft_go(tw_timed, (void *)(intptr_t)(i * 5 * 1000 * 1000));
    for (int i = 0; i < 5000 && atomic_load(&tw_timeouts) < 4; i++)
        weft_sleep(1000 * 1000);
    cr_assert_eq(atomic_load(&tw_timeouts), 4, "each timed waiter timed out");
    cr_assert_eq(atomic_load(&tw_ebadf), 0, "the others still wait");
    cr_assert_eq(weft_close(tw_p[0]), 0);
    for (int i = 0; i < 5000 && atomic_load(&tw_ebadf) < 3; i++)
        weft_sleep(1000 * 1000);
    cr_assert_eq(atomic_load(&tw_ebadf), 3, "close woke every waiter");
    close(tw_p[1]);
}

Test(netpoll, several_waiters_time_out_and_close_wakes_them_all, .timeout = 60)
{
    run(tw_main, NULL);
}

/* ---- bogus fds: -EBADF at once, no table grown to their number ----------------- */

static void badfd_main(void *arg)
{
    (void)arg;
    char b[4] = { 0 };
    int bad[] = { INT_MAX, 1 << 24, 1 << 30, 100000 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int fd = bad[i];
        cr_assert_eq(weft_read(fd, b, 1), -EBADF, "read(%d)", fd);
        cr_assert_eq(weft_write(fd, b, 1), -EBADF, "write(%d)", fd);
        cr_assert_eq(weft_accept(fd, NULL, NULL), -EBADF, "accept(%d)", fd);
        struct sockaddr_in a = { .sin_family = AF_INET };
        cr_assert_eq(weft_connect(fd, (struct sockaddr *)&a, sizeof a), -EBADF, "connect(%d)", fd);
        cr_assert_eq(weft_wait_fd(fd, WEFT_READ, 0), -EBADF, "wait_fd(%d)", fd);
        cr_assert_eq(weft_close(fd), -EBADF, "close(%d)", fd);
    }
    /* Huge timeouts are "a very long time", not "at once". */
    int p[2];
    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(write(p[1], "x", 1), 1);
    cr_assert_eq(weft_wait_fd(p[0], WEFT_READ, INT64_MAX), WEFT_READ);
    weft_close(p[0]);
    weft_close(p[1]);
}

Test(netpoll, bogus_fds_are_ebadf_at_once, .timeout = 30)
{
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    run(badfd_main, NULL);
    getrusage(RUSAGE_SELF, &r1);
    /* The table is an array of pointers indexed by fd: one grown to 1 << 30
     * would be 8 GiB, to INT_MAX a hang.  Allow for the runtime itself. */
    cr_assert_lt(r1.ru_maxrss, 256 * 1024, "peak RSS %ld KiB", r1.ru_maxrss);
}

/* ---- the poller hands its goroutines over cleanly ------------------------------ */

/* The thread whose blocking poll readies a goroutine takes an idle P and
 * runs it itself (Go's findrunnable).  Readying it from a thread without a
 * P put it on the global queue and woke another thread to run it, while
 * the poller went back to sleep: every round trip moved the goroutine to
 * another thread, with two futex calls and two thread switches.  Here the
 * main goroutine answers a plain thread over a socketpair, one byte at a
 * time, with the plain thread pausing between round trips so that the
 * goroutine's thread runs out of work and blocks in the poller each time:
 * the goroutine stays on one thread. */
#define HO_ROUNDS 400
static int ho_sv[2];
static int ho_moves, ho_rounds;

static void *ho_peer(void *arg)
{
    (void)arg;
    for (int i = 0; i < HO_ROUNDS; i++) {
        char c = 'x';
        if (write(ho_sv[1], &c, 1) != 1 || read(ho_sv[1], &c, 1) != 1)
            break;
        usleep(200);
    }
    return NULL;
}

static void ho_main(void *arg)
{
    weft_maxprocs((int)(intptr_t)arg);
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, ho_sv), 0);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, ho_peer, NULL), 0);
    pid_t last = 0;
    ho_moves = ho_rounds = 0;
    char c;
    while (ho_rounds < HO_ROUNDS && weft_read(ho_sv[0], &c, 1) == 1) {
        pid_t tid = weft__gettid();
        if (ho_rounds > 0 && tid != last)
            ho_moves++;
        last = tid;
        ho_rounds++;
        cr_assert_eq(weft_write(ho_sv[0], &c, 1), 1);
    }
    weft_syscall_enter();
    pthread_join(t, NULL);
    weft_syscall_exit();
    weft_close(ho_sv[0]);
    close(ho_sv[1]);
}

static void handoff(int procs)
{
    run(ho_main, (void *)(intptr_t)procs);
    cr_assert_eq(ho_rounds, HO_ROUNDS);
    /* A stray move (a poll by sysmon or by another M's findrunnable that
     * got there first) is allowed; one per round trip is the bug. */
    cr_assert_leq(ho_moves, HO_ROUNDS / 10, "%d procs: the goroutine changed threads %d times in %d round trips",
                  procs, ho_moves, HO_ROUNDS);
}

Test(netpoll, the_poller_runs_what_it_readies_1p, .timeout = 60)
{
    handoff(1);
}

Test(netpoll, the_poller_runs_what_it_readies_2p, .timeout = 60)
{
    handoff(2);
}

/* At most one thread sleeps in epoll_wait at a time: the blocking poller
 * marks lastpoll 0 while it sleeps and only it sets it again.  A poll that
 * does not block (findrunnable's, sysmon's) used to store its own
 * timestamp over the mark, and then a second M could block in the poller
 * too (up to four at once were seen here).  Goroutines on 2 Ps answer
 * plain threads over socketpairs, the threads pausing 50 µs between round
 * trips so that the Ms run out of work and poll, often at once, while
 * another plain thread watches the runtime's threads: one counts as
 * sleeping in epoll_wait if /proc/self/task/TID/syscall shows the call
 * with a timeout (a preempted poll that does not block shows too) at two
 * reads with every other thread's reads in between, and the thread did
 * not run in between (its schedstat run count did not move). */
#define EP_PAIRS 4
static atomic_long ep_stop;
static int ep_sv[EP_PAIRS][2];
static long ep_maxblocked, ep_samples;

static void ep_echo(void *arg)
{
    int fd = ep_sv[(intptr_t)arg][0];
    char c;
    while (weft_read(fd, &c, 1) == 1)
        if (weft_write(fd, &c, 1) != 1)
            break;
}

static void *ep_peer(void *arg)
{
    int fd = ep_sv[(intptr_t)arg][1];
    char c = 'x';
    while (!atomic_load(&ep_stop)) {
        if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
            break;
        usleep(50);
    }
    return NULL;
}

/* Thread tid sleeping in epoll_wait with a timeout: its run count
 * (schedstat's third field), or -1. */
static long epoll_sleeper(pid_t tid)
{
    char path[80], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long nr = -1;
    unsigned long a[4] = { 0 };
    if (fgets(buf, sizeof buf, f)) {
        char *e;
        nr = strtol(buf, &e, 10);       /* "running" reads as 0: not a wait */
        for (int i = 0; i < 4; i++)
            a[i] = strtoul(e, &e, 16);
    }
    fclose(f);
    bool epoll = nr == SYS_epoll_pwait;
#ifdef SYS_epoll_wait
    epoll = epoll || nr == SYS_epoll_wait;
#endif
    if (!epoll || (int)a[3] == 0)
        return -1;
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    if (!(f = fopen(path, "r")))
        return -1;
    unsigned long long run, wait, n;
    int got = fscanf(f, "%llu %llu %llu", &run, &wait, &n);
    fclose(f);
    return got == 3 ? (long)n : -1;
}

static void *ep_watcher(void *arg)
{
    (void)arg;
    enum { MAXM = 64 };
    M *ms[MAXM];
    long first[MAXM];
    while (!atomic_load(&ep_stop)) {
        int k = 0;
        /* load-acquire: pairs with allocm's publication; Ms are never
         * freed while the runtime runs */
        for (M *m = (M *)AO_load_acquire((AO_t *)&sched.allm); m && k < MAXM; m = m->alllink) {
            if (m->procid > 0) {
                ms[k] = m;
                first[k++] = epoll_sleeper(m->procid);
            }
        }
        long n = 0;
        for (int i = 0; i < k; i++)
            if (first[i] >= 0 && epoll_sleeper(ms[i]->procid) == first[i])
                n++;
        if (n > ep_maxblocked)
            ep_maxblocked = n;
        ep_samples++;
    }
    return NULL;
}

static void ep_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    pthread_t peers[EP_PAIRS], w;
    for (intptr_t i = 0; i < EP_PAIRS; i++) {
        cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, ep_sv[i]), 0);
        cr_assert_gt(weft_go(ep_echo, (void *)i), 0);
        cr_assert_eq(pthread_create(&peers[i], NULL, ep_peer, (void *)i), 0);
    }
    cr_assert_eq(pthread_create(&w, NULL, ep_watcher, NULL), 0);
    weft_sleep(3000LL * 1000 * 1000);
    atomic_store(&ep_stop, 1);
    weft_syscall_enter();
    for (int i = 0; i < EP_PAIRS; i++)
        pthread_join(peers[i], NULL);
    pthread_join(w, NULL);
    weft_syscall_exit();
    for (int i = 0; i < EP_PAIRS; i++) {
        weft_close(ep_sv[i][0]);
        close(ep_sv[i][1]);
    }
}

Test(netpoll, one_thread_at_most_sleeps_in_epoll, .timeout = 60)
{
    run(ep_main, NULL);
    cr_assert_gt(ep_samples, 0);
    cr_assert_leq(ep_maxblocked, 1, "%ld threads asleep in epoll_wait at once (%ld samples)",
                  ep_maxblocked, ep_samples);
}
