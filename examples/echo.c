/*
 * echo — a TCP echo server, one goroutine per connection, on weft's
 * netpoller.  With --selftest N it also starts N client goroutines that
 * connect over loopback, exchange messages, check the echoes, and then
 * stops the server: a complete, self-checking run.
 *
 *   usage: echo [--port P] [--selftest N]
 *          (default: port 0 = any free port; loopback only)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <weft.h>

static int lfd;
static struct sockaddr_in addr;
static long nclients;
static weft_wg clients = WEFT_WG_INIT;
static atomic_long ok, bad, conns;

static void serve(void *arg)
{
    int c = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = weft_read(c, buf, sizeof buf)) > 0)
        if (weft_write(c, buf, (size_t)n) != n)
            break;
    weft_close(c);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int c = weft_accept(lfd, NULL, NULL);
        if (c == -EMFILE || c == -ENFILE || c == -ENOBUFS || c == -ENOMEM) {
            weft_sleep(10 * 1000 * 1000);   /* out of fds: back off, as Go's http server does */
            continue;
        }
        if (c < 0)
            return;     /* listener closed */
        atomic_fetch_add(&conns, 1);
        if (weft_go(serve, (void *)(intptr_t)c) < 0)
            weft_close(c);
    }
}

static void client(void *arg)
{
    long id = (long)(intptr_t)arg;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int good = s >= 0 && weft_connect(s, (struct sockaddr *)&addr, sizeof addr) == 0;
    for (int r = 0; good && r < 10; r++) {
        char msg[64], back[64];
        int len = snprintf(msg, sizeof msg, "hello %ld/%d", id, r);
        good = weft_write(s, msg, (size_t)len) == len;
        int got = 0;
        while (good && got < len) {
            ssize_t n = weft_read(s, back + got, (size_t)(len - got));
            good = n > 0;
            got += good ? (int)n : 0;
        }
        good = good && memcmp(msg, back, (size_t)len) == 0;
    }
    if (s >= 0)
        weft_close(s);
    atomic_fetch_add(good ? &ok : &bad, 1);
    weft_wg_done(&clients);
}

static void mainfn(void *arg)
{
    (void)arg;
    weft_go(acceptor, NULL);
    printf("echo: listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    if (nclients == 0) {
        weft_wg_add(&clients, 1);
        weft_wg_wait(&clients);     /* serve forever */
    }
    int64_t t0 = weft_nanotime();
    weft_wg_add(&clients, (int)nclients);
    for (long i = 0; i < nclients; i++)
        weft_go(client, (void *)(intptr_t)i);
    weft_wg_wait(&clients);
    double ms = (weft_nanotime() - t0) / 1e6;
    printf("echo: %ld clients x 10 round trips in %.1f ms: %ld ok, %ld failed, %ld connections served\n",
           nclients, ms, atomic_load(&ok), atomic_load(&bad), atomic_load(&conns));
    weft_close(lfd);
    if (atomic_load(&bad))
        exit(1);
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = (int)strtol(argv[++i], &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "echo: bad port '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--selftest") == 0 && i + 1 < argc) {
            nclients = strtol(argv[++i], &end, 10);
            if (*end || nclients < 1 || nclients > 100000) {
                fprintf(stderr, "echo: bad client count '%s' (want 1..100000)\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: echo [--port P] [--selftest N]\n");
            return 2;
        }
    }
    /* Two fds per self-test connection: raise the soft limit to the hard one. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && nclients > ((long)rl.rlim_cur - 32) / 2) {
        long fit = ((long)rl.rlim_cur - 32) / 2;
        fprintf(stderr, "echo: %ld clients need %ld fds but the limit is %ld; using %ld clients\n",
                nclients, 2 * nclients + 32, (long)rl.rlim_cur, fit);
        nclients = fit;
    }
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    socklen_t al = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&addr, &al) != 0) {
        perror("echo: listen");
        return 1;
    }
    return weft_main(mainfn, NULL) == 0 ? 0 : 1;
}
