/*
 * bench_http.c — a keep-alive HTTP/1.1 server on weft's netpoller, under a
 * request/response load: the cost of one request, which is mostly the
 * netpoller handing a readied goroutine to a thread and back.
 *
 * The server is one acceptor goroutine and one goroutine per connection,
 * which reads a request up to its blank line and writes a fixed 200
 * response.  The load is generated as wrk does it, from 2 plain threads
 * outside the runtime, each driving 4 keep-alive connections with epoll
 * and one request outstanding on each, n requests in all.  (8 threads
 * blocking on one connection each made the benchmark a contest between
 * them and the runtime's threads for the CPUs, which the kernel's
 * scheduler decides by who slept most.)  Nothing of the clients takes a
 * lock or a futex, so `perf stat -e syscalls:sys_enter_futex` or `strace -f
 * -c -e futex` over a run counts the runtime's own futex calls
 * (docs/design.md, "The netpoller"); the runtime never learns of the client
 * threads (they make plain system calls), so its deadlock detection stays
 * on.
 *
 * Options: -p PROCS (default 1), -n REQUESTS (default 200,000; rounded down
 * to a multiple of 2).
 */
#define _GNU_SOURCE     /* memmem */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench_common.h"
#include "weft.h"

#define CLIENTS 2        /* load threads */
#define CONNS 4          /* connections per load thread */

static const char request[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char response[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";

static struct bench_args args = { .procs = 1, .n = 200000, .reps = 1 };
static int lfd = -1;
static struct sockaddr_in addr;
static int procs_used;
static int64_t elapsed_ns;
static int64_t setup_error;
static atomic_long served, answered, failed;

/* One connection: requests are read until their blank line; each gets the
 * fixed response.  Ends when the client closes. */
static void serve(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[4096];
    size_t have = 0;
    for (;;) {
        ssize_t r = weft_read(c, buf + have, sizeof buf - have);
        if (r <= 0)
            break;
        have += (size_t)r;
        char *end;
        while (have > 0 && (end = memmem(buf, have, "\r\n\r\n", 4)) != NULL) {
            size_t used = (size_t)(end + 4 - buf);
            if (weft_write(c, response, sizeof response - 1) != (ssize_t)(sizeof response - 1))
                goto out;
            atomic_fetch_add_explicit(&served, 1, memory_order_relaxed);
            memmove(buf, buf + used, have - used);
            have -= used;
        }
        if (have == sizeof buf)
            break;      /* a request larger than the buffer: not ours */
    }
out:
    weft_close(c);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int c = weft_accept(lfd, NULL, NULL);
        if (c < 0)
            return;     /* the listener was closed */
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (weft_go(serve, (void *)(intptr_t)c) < 0)
            weft_close(c);
    }
}

/* A load thread, as wrk's: CONNS connections, one request outstanding on
 * each, driven with epoll (plain blocking-free calls: this is not a
 * goroutine), until it has had n / CLIENTS answers. */
static void *client(void *arg)
{
    (void)arg;
    long todo = args.n / CLIENTS, sent = 0, done = 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int fds[CONNS];
    size_t got[CONNS];
    char buf[256];
    for (int i = 0; i < CONNS; i++)
        fds[i] = -1;
    if (ep < 0) {
        atomic_fetch_add(&failed, 1);
        return NULL;
    }
    for (int i = 0; i < CONNS; i++) {
        int s = fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        got[i] = 0;
        if (s < 0 || setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
            connect(s, (struct sockaddr *)&addr, sizeof addr) != 0 ||
            epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev) != 0)
            goto fail;
    }
    for (int i = 0; i < CONNS && sent < todo; i++, sent++)
        if (write(fds[i], request, sizeof request - 1) != (ssize_t)(sizeof request - 1))
            goto fail;
    while (done < todo) {
        struct epoll_event evs[CONNS];
        int n = epoll_wait(ep, evs, CONNS, -1);
        if (n < 0)
            goto fail;
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r <= 0 || got[i] + (size_t)r > sizeof response - 1 ||
                memcmp(buf, response + got[i], (size_t)r) != 0)
                goto fail;
            got[i] += (size_t)r;
            if (got[i] < sizeof response - 1)
                continue;
            got[i] = 0;
            done++;
            atomic_fetch_add_explicit(&answered, 1, memory_order_relaxed);
            if (sent < todo) {
                sent++;
                if (write(fds[i], request, sizeof request - 1) != (ssize_t)(sizeof request - 1))
                    goto fail;
            }
        }
    }
    goto out;
fail:
    atomic_fetch_add(&failed, 1);
out:
    for (int i = 0; i < CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    close(ep);
    return NULL;
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);
    int64_t id = weft_go(acceptor, NULL);
    if (id < 0) {
        setup_error = id;
        return;
    }
    pthread_t t[CLIENTS];
    int64_t t0 = bench_now_ns();
    for (int i = 0; i < CLIENTS; i++) {
        int err = pthread_create(&t[i], NULL, client, NULL);
        if (err != 0) {
            setup_error = -err;
            return;
        }
    }
    /* Join from a syscall bracket: this thread's P serves meanwhile. */
    weft_syscall_enter();
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(t[i], NULL);
    weft_syscall_exit();
    elapsed_ns = bench_now_ns() - t0;
    /* The connection goroutines and the acceptor end with main. */
}

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n REQUESTS]", CLIENTS, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    args.n -= args.n % CLIENTS;
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(lfd, 128) != 0 || getsockname(lfd, (struct sockaddr *)&addr, &len) != 0) {
        perror("bench_http: listen");
        return 1;
    }
    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_http: weft_main failed: %d\n", rc);
        return 1;
    }
    if (setup_error != 0) {
        fprintf(stderr, "bench_http: setup failed: %lld\n", (long long)setup_error);
        return 1;
    }
    if (atomic_load(&failed) != 0 || atomic_load(&answered) != args.n) {
        fprintf(stderr, "bench_http: wrong answer: %ld of %ld requests answered, %ld clients failed\n",
                atomic_load(&answered), args.n, atomic_load(&failed));
        return 1;
    }
    printf("name=http impl=weft procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
           procs_used, (double)elapsed_ns / (double)args.n, bench_maxrss_kb());
    return 0;
}
