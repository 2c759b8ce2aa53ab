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
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
