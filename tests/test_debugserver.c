/*
 * test_debugserver.c — weft_debug_serve: Go's net/http/pprof endpoints,
 * served from goroutines, fetched by a raw HTTP client (goroutine 1, on
 * weft's own I/O), by curl and by go tool pprof.  Malformed, oversized,
 * idle, excess and vanishing clients never hurt the server or the host.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "weft.h"

extern char **environ;

/* ---- a minimal HTTP client ------------------------------------------------------ */

typedef struct resp {
    int status;         /* 0 if no status line came */
    char *raw;          /* the whole response, NUL-terminated */
    size_t len;
    const char *body;   /* after the blank line */
    size_t bodylen;
    long clen;          /* Content-Length, -1 if absent */
} resp;

static int dial(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(s, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(weft_connect(s, (struct sockaddr *)&a, sizeof a), 0);
    return s;
}

/* Reads until EOF: the server closes after its one response. */
static resp readresp(int s)
{
    resp r = { .clen = -1 };
    size_t cap = 1 << 16;
    r.raw = malloc(cap);
    cr_assert_not_null(r.raw);
    for (;;) {
        if (r.len + 1 >= cap) {
            r.raw = realloc(r.raw, cap *= 2);
            cr_assert_not_null(r.raw);
        }
        ssize_t n = weft_read(s, r.raw + r.len, cap - 1 - r.len);
        if (n <= 0)
            break;
        r.len += (size_t)n;
    }
    r.raw[r.len] = 0;
    sscanf(r.raw, "HTTP/1.1 %d", &r.status);
    char *e = strstr(r.raw, "\r\n\r\n");
    r.body = e ? e + 4 : r.raw + r.len;
    r.bodylen = r.len - (size_t)(r.body - r.raw);
    const char *cl = strstr(r.raw, "\r\nContent-Length: ");
    if (cl && cl < r.body)
        r.clen = atol(cl + 18);
    return r;
}

static resp rawreq(int port, const char *req, size_t len)
{
    int s = dial(port);
    cr_assert_eq(weft_write(s, req, len), (ssize_t)len);
    resp r = readresp(s);
    weft_close(s);
    return r;
}

/* GET target; checks that the body is exactly Content-Length long. */
static resp get(int port, const char *target)
{
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", target);
    resp r = rawreq(port, req, (size_t)n);
    cr_assert_geq(r.clen, 0, "no Content-Length for %s:\n%s", target, r.raw);
    cr_assert_eq((size_t)r.clen, r.bodylen, "%s: body of %zu bytes, Content-Length %ld",
                 target, r.bodylen, r.clen);
    return r;
}

/* True if the head (not the body) has this exact header line. */
static bool hashdr(const resp *r, const char *line)
{
    char want[256];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    const char *p = strstr(r->raw, want);
    return p && p < r->body;
}

static void freeresp(resp *r)
{
    free(r->raw);
}

/* Each test: goroutine 1 serves on a fresh loopback port and runs the body. */
#define SERVER_TEST(name)                                                       \
    static void name##_body(int port);                                          \
    static void name##_main(void *arg)                                          \
    {                                                                           \
        (void)arg;                                                              \
        int port = weft_debug_serve("127.0.0.1:0");                             \
        cr_assert_gt(port, 0, "weft_debug_serve: %d", port);                    \
        name##_body(port);                                                      \
    }                                                                           \
    Test(debugserver, name, .timeout = 60)                                      \
    {                                                                           \
        cr_assert_eq(weft_main(name##_main, NULL), 0);                          \
    }                                                                           \
    static void name##_body(int port)

/* ---- the endpoints ---------------------------------------------------------------- */

SERVER_TEST(index_links_every_profile)
{
    resp r = get(port, "/debug/pprof/");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: text/html; charset=utf-8"));
    cr_assert(hashdr(&r, "X-Content-Type-Options: nosniff"));
    cr_assert_not_null(strstr(r.body, "<a href='goroutine?debug=1'>goroutine</a>"));
    cr_assert_not_null(strstr(r.body, "<a href=\"goroutine?debug=2\">"));
    cr_assert_not_null(strstr(r.body, "<a href='threadcreate?debug=1'>threadcreate</a>"));
    cr_assert_not_null(strstr(r.body, "<a href='profile'>profile</a>"));
    /* Go's counts: goroutines (at least main, the accept loop, this
     * connection) and threads (at least M0). */
    int ng = 0, nt = 0;
    const char *g = strstr(r.body, "\t<td>");
    cr_assert(g && sscanf(g, "\t<td>%d</td><td><a href='goroutine", &ng) == 1, "%s", r.body);
    const char *t = strstr(r.body, "<a href='profile'>");
    t = t ? strstr(t, "\t<td>") : NULL;
    cr_assert(t && sscanf(t, "\t<td>%d</td><td><a href='threadcreate", &nt) == 1, "%s", r.body);
    cr_assert_geq(ng, 3);
    cr_assert_geq(nt, 1);
    freeresp(&r);

    r = get(port, "/debug/pprof");
    cr_assert_eq(r.status, 301);
    cr_assert(hashdr(&r, "Location: /debug/pprof/"));
    freeresp(&r);
}

SERVER_TEST(goroutine_debug1_is_counts_text)
{
    resp r = get(port, "/debug/pprof/goroutine?debug=1");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: text/plain; charset=utf-8"));
    cr_assert(hashdr(&r, "X-Content-Type-Options: nosniff"));
    cr_assert_eq(strncmp(r.body, "goroutine profile: total ", 25), 0, "%s", r.body);
    freeresp(&r);
}

SERVER_TEST(goroutine_debug2_is_tracebacks)
{
    resp r = get(port, "/debug/pprof/goroutine?debug=2");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: text/plain; charset=utf-8"));
    cr_assert_not_null(strstr(r.body, "goroutine 1 ["), "%s", r.body);
    freeresp(&r);
}

SERVER_TEST(debug0_is_a_gzipped_download)
{
    const char *names[] = { "goroutine", "threadcreate" };
    for (int i = 0; i < 2; i++) {
        char target[64], disp[128];
        snprintf(target, sizeof target, "/debug/pprof/%s", names[i]);
        snprintf(disp, sizeof disp, "Content-Disposition: attachment; filename=\"%s\"", names[i]);
        resp r = get(port, target);
        cr_assert_eq(r.status, 200, "%s", r.raw);
        cr_assert(hashdr(&r, "Content-Type: application/octet-stream"));
        cr_assert(hashdr(&r, disp));
        cr_assert_geq(r.bodylen, 18);
        cr_assert(r.body[0] == '\x1f' && r.body[1] == '\x8b', "not gzip");
        freeresp(&r);
    }
}

SERVER_TEST(threadcreate_debug1_is_counts_text)
{
    resp r = get(port, "/debug/pprof/threadcreate?debug=1");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: text/plain; charset=utf-8"));
    cr_assert_eq(strncmp(r.body, "threadcreate profile: total ", 28), 0, "%s", r.body);
    freeresp(&r);
}

SERVER_TEST(sched_is_a_detailed_dump)
{
    resp r = get(port, "/debug/sched");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: text/plain; charset=utf-8"));
    cr_assert_eq(strncmp(r.body, "SCHED ", 6), 0, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\n  P0: "), "%s", r.body);
    freeresp(&r);
}

SERVER_TEST(head_sends_the_head_only)
{
    static const char req[] = "HEAD /debug/sched HTTP/1.0\r\n\r\n";
    resp r = rawreq(port, req, sizeof req - 1);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_gt(r.clen, 0);
    cr_assert_eq(r.bodylen, 0);
    freeresp(&r);
}

SERVER_TEST(cpu_profile_over_one_second)
{
    resp r = get(port, "/debug/pprof/profile?seconds=1");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: application/octet-stream"));
    cr_assert(hashdr(&r, "Content-Disposition: attachment; filename=\"profile\""));
    cr_assert_geq(r.bodylen, 18);
    cr_assert(r.body[0] == '\x1f' && r.body[1] == '\x8b', "not gzip");
    freeresp(&r);
}

SERVER_TEST(cpu_profile_rejects_bad_seconds)
{
    const char *bad[] = { "0", "-1", "abc", "3601", "1.5", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char target[128];
        snprintf(target, sizeof target, "/debug/pprof/profile?seconds=%s", bad[i]);
        resp r = get(port, target);
        cr_assert_eq(r.status, 400, "seconds=%s: %s", bad[i], r.raw);
        cr_assert_str_eq(r.body, "invalid value for \"seconds\" - must be a positive integer\n");
        cr_assert(hashdr(&r, "X-Go-Pprof: 1"));
        freeresp(&r);
    }
}

/* A client that asks for 30 s and hangs up: the server notices, stops the
 * profiler, and the next profile can start (it would get 500 "cpu
 * profiling already in use" for 30 s otherwise). */
SERVER_TEST(abandoned_cpu_profile_frees_the_profiler)
{
    static const char req[] = "GET /debug/pprof/profile?seconds=30 HTTP/1.1\r\n\r\n";
    int s = dial(port);
    cr_assert_eq(weft_write(s, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    weft_sleep(100 * 1000000LL);   /* let it start; the check below does not depend on it */
    weft_close(s);
    int status = 0;
    for (int tries = 0; tries < 100 && status != 200; tries++) {
        resp r = get(port, "/debug/pprof/profile?seconds=1");
        status = r.status;
        if (status != 200) {
            cr_assert_eq(status, 500, "%s", r.raw);
            cr_assert_not_null(strstr(r.body, "Could not enable CPU profiling: "));
            weft_sleep(20 * 1000000LL);
        }
        freeresp(&r);
    }
    cr_assert_eq(status, 200, "the abandoned profile kept the profiler busy");
}

/* ---- bad requests ------------------------------------------------------------------- */

SERVER_TEST(unknown_paths_are_404)
{
    resp r = get(port, "/nope");
    cr_assert_eq(r.status, 404, "%s", r.raw);
    freeresp(&r);
    r = get(port, "/debug/pprof/heap");
    cr_assert_eq(r.status, 404, "%s", r.raw);
    cr_assert_str_eq(r.body, "Unknown profile\n");
    cr_assert(hashdr(&r, "X-Go-Pprof: 1"));
    freeresp(&r);
}

SERVER_TEST(malformed_requests_are_400)
{
    static const char *bad[] = {
        "garbage\r\n\r\n",
        "GET /debug/pprof/\r\n\r\n",                /* no version (HTTP/0.9) */
        "GET /debug/pprof/ HTTP/2.0\r\n\r\n",
        "get /debug/pprof/ HTTP/1.1\r\n\r\n",
        "GET debug/pprof/ HTTP/1.1\r\n\r\n",
        "GET  /debug/pprof/ HTTP/1.1\r\n\r\n",
        "GET /debug/pprof/ HTTP/1.1 x\r\n\r\n",
        "\x01\x02\x03\xff\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        resp r = rawreq(port, bad[i], strlen(bad[i]));
        cr_assert_eq(r.status, 400, "request %zu: %s", i, r.raw);
        freeresp(&r);
    }
    static const char nul[] = "GET /debug/\0pprof/ HTTP/1.1\r\n\r\n";
    resp r = rawreq(port, nul, sizeof nul - 1);
    cr_assert_eq(r.status, 400, "%s", r.raw);
    freeresp(&r);
    static const char post[] = "POST /debug/pprof/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    r = rawreq(port, post, sizeof post - 1);
    cr_assert_eq(r.status, 405, "%s", r.raw);
    cr_assert(hashdr(&r, "Allow: GET, HEAD"));
    freeresp(&r);
}

SERVER_TEST(oversized_headers_are_refused)
{
    size_t len = 16 << 10;
    char *req = malloc(len + 64);
    cr_assert_not_null(req);
    int n = snprintf(req, len + 64, "GET /debug/pprof/ HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', len);
    memcpy(req + n + len, "\r\n\r\n", 4);
    resp r = rawreq(port, req, (size_t)n + len + 4);
    cr_assert(r.status >= 400 && r.status < 500, "%s", r.raw);
    freeresp(&r);
    free(req);
    r = get(port, "/debug/pprof/");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
}

/* ---- many, idle and vanishing clients ----------------------------------------------- */

SERVER_TEST(idle_connections_do_not_block_others)
{
    int idle[32];
    for (int i = 0; i < 32; i++)
        idle[i] = dial(port);
    (void)!weft_write(idle[0], "GET /debug/pp", 13);    /* half a request, then silence */
    resp r = get(port, "/debug/pprof/goroutine?debug=1");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
    for (int i = 0; i < 32; i++)
        weft_close(idle[i]);
}

/* Past the bound (64 connections) the accept loop answers 503 at once; the
 * slots come back when the idle clients leave. */
SERVER_TEST(excess_connections_get_503)
{
    int idle[64];
    for (int i = 0; i < 64; i++)
        idle[i] = dial(port);
    int s = dial(port);     /* sends nothing, so the close cannot turn into a reset */
    resp r = readresp(s);
    weft_close(s);
    cr_assert_eq(r.status, 503, "%s", r.raw);
    freeresp(&r);
    for (int i = 0; i < 64; i++)
        weft_close(idle[i]);
    int status = 0;
    for (int tries = 0; tries < 500 && status != 200; tries++) {
        r = get(port, "/debug/pprof/");
        status = r.status;
        freeresp(&r);
        if (status != 200)
            weft_sleep(10 * 1000000LL);
    }
    cr_assert_eq(status, 200);
}

static weft_chan *never;
static void parked(void *arg)
{
    (void)arg;
    weft_chan_recv(never, NULL);
}

/* The server is mid-way through a large response (hundreds of KB of
 * tracebacks) when the client goes: either it resets the connection after
 * reading a little, or it closed right after sending the request, so that
 * the server's socket is in CLOSE_WAIT and the client's reset turns the
 * next send into EPIPE.  A write(2) there raises SIGPIPE, which would kill
 * this process; the next request must be served. */
SERVER_TEST(client_vanishing_mid_response_is_harmless)
{
    never = weft_chan_new(0, 0);
    for (int i = 0; i < 2000; i++)
        cr_assert_gt(weft_go(parked, NULL), 0);
    static const char req[] = "GET /debug/pprof/goroutine?debug=2 HTTP/1.1\r\n\r\n";
    for (int round = 0; round < 6; round++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int small = 4096;
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        cr_assert_eq(weft_connect(s, (struct sockaddr *)&a, sizeof a), 0);
        cr_assert_eq(weft_write(s, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
        if (round % 2 == 0) {
            char b[200];
            size_t got = 0;
            while (got < sizeof b) {
                ssize_t n = weft_read(s, b + got, sizeof b - got);
                cr_assert_gt(n, 0);
                got += (size_t)n;
            }
            cr_assert_eq(strncmp(b, "HTTP/1.1 200 OK\r\n", 17), 0);
            struct linger lg = { 1, 0 };   /* close = RST */
            setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        weft_close(s);
        /* Let the server run into the dead peer before the next round. */
        resp r = get(port, "/debug/pprof/threadcreate?debug=1");
        cr_assert_eq(r.status, 200, "%s", r.raw);
        freeresp(&r);
    }
    resp r = get(port, "/debug/pprof/goroutine?debug=1");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_not_null(strstr(r.body, "goroutine profile: total "));
    freeresp(&r);
}

/* ---- /debug/pprof/symbol, the one POST ------------------------------------------------ */

SERVER_TEST(symbol_names_addresses)
{
    resp r = get(port, "/debug/pprof/symbol");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(r.body, "num_symbols: 1\n");
    freeresp(&r);

    char want[64], target[128];
    unsigned long pc = (unsigned long)(uintptr_t)parked;
    snprintf(want, sizeof want, "num_symbols: 1\n%#lx parked\n", pc);
    snprintf(target, sizeof target, "/debug/pprof/symbol?%#lx+0+junk", pc);
    r = get(port, target);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(r.body, want);
    freeresp(&r);

    /* As go tool pprof asks: POST, the addresses in the body, which here
     * arrives after the head, in a second write. */
    char head[128], body[64];
    int bl = snprintf(body, sizeof body, "%#lx", pc);
    int hl = snprintf(head, sizeof head, "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                      "content-length: %d\r\n\r\n", bl);
    int s = dial(port);
    cr_assert_eq(weft_write(s, head, (size_t)hl), hl);
    weft_sleep(10 * 1000000LL);
    cr_assert_eq(weft_write(s, body, (size_t)bl), bl);
    r = readresp(s);
    weft_close(s);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(r.body, want);
    freeresp(&r);

    static const char badlen[] = "POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: 12x\r\n\r\n";
    r = rawreq(port, badlen, sizeof badlen - 1);
    cr_assert_eq(r.status, 400, "%s", r.raw);
    freeresp(&r);
    static const char huge[] = "POST /debug/pprof/symbol HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n";
    r = rawreq(port, huge, sizeof huge - 1);
    cr_assert_eq(r.status, 413, "%s", r.raw);
    freeresp(&r);
}

/* accept fails with EMFILE while this process may open no fd at all; the
 * accept loop backs off and serves the waiting client once it can. */
SERVER_TEST(accept_survives_emfile)
{
    resp r = get(port, "/debug/pprof/");     /* the accept loop now waits in weft_accept */
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
    struct rlimit old, none = { 0, 0 };
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    none.rlim_max = old.rlim_max;
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(s, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
    int c = weft_connect(s, (struct sockaddr *)&a, sizeof a);
    static const char req[] = "GET /debug/pprof/ HTTP/1.1\r\n\r\n";
    ssize_t w = c == 0 ? weft_write(s, req, sizeof req - 1) : -1;
    weft_sleep(50 * 1000000LL);     /* the server meets EMFILE meanwhile */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    cr_assert_eq(c, 0, "weft_connect: %s", strerror(-c));
    cr_assert_eq(w, (ssize_t)(sizeof req - 1));
    r = readresp(s);
    weft_close(s);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
}

/* ---- addresses ------------------------------------------------------------------------ */

/* True if /proc/net/tcp lists a listener on 127.0.0.1:port. */
static bool listens_on_loopback(int port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    cr_assert_not_null(f);
    char line[512], want[64];
    uint32_t lo = htonl(INADDR_LOOPBACK);
    snprintf(want, sizeof want, " %08X:%04X 00000000:0000 0A ", lo, (unsigned)port);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, want) != NULL;
    fclose(f);
    return found;
}

static void addresses_main(void *arg)
{
    (void)arg;
    const char *bad[] = { "", "6060", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536",
                          "127.0.0.1:123456", "1.2.3:80", "example.com:80", "::1:80", "[::1:80",
                          "[nonsense]:80", "127.0.0.1:-1" };
    cr_assert_eq(weft_debug_serve(NULL), -EINVAL);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(weft_debug_serve(bad[i]), -EINVAL, "\"%s\"", bad[i]);
    /* An empty host and "localhost" are loopback. */
    int p1 = weft_debug_serve(":0");
    int p2 = weft_debug_serve("localhost:0");
    cr_assert_gt(p1, 0);
    cr_assert_gt(p2, 0);
    cr_assert_neq(p1, p2);
    cr_assert(listens_on_loopback(p1));
    cr_assert(listens_on_loopback(p2));
    /* Both serve. */
    resp r = get(p1, "/debug/pprof/");
    cr_assert_eq(r.status, 200);
    freeresp(&r);
    r = get(p2, "/debug/pprof/");
    cr_assert_eq(r.status, 200);
    freeresp(&r);
    /* A taken port is the bind error. */
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", p1);
    cr_assert_eq(weft_debug_serve(addr), -EADDRINUSE);
}

Test(debugserver, addresses_default_to_loopback, .timeout = 60)
{
    cr_assert_eq(weft_main(addresses_main, NULL), 0);
}

/* From a plain thread, weft_debug_serve boots the runtime lazily (through
 * weft_go) and the client blocks this thread, not a goroutine. */
Test(debugserver, serves_from_a_plain_thread, .timeout = 60)
{
    int port = weft_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0);
    resp r = get(port, "/debug/pprof/goroutine?debug=2");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_not_null(strstr(r.body, "goroutine "), "%s", r.body);
    freeresp(&r);
}

/* ---- real clients: curl and go tool pprof --------------------------------------------- */

static bool have(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", d, prog);
        if (access(p, X_OK) == 0)
            return true;
    }
    return false;
}

/* Runs argv with stdout and stderr into out (NUL-terminated); returns its
 * exit status, -1 if it did not exit normally. */
static int runcmd(char *const argv[], char *out, size_t len)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    posix_spawn_file_actions_addclose(&fa, p[1]);
    pid_t pid;
    int e = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    cr_assert_eq(e, 0, "spawn %s: %s", argv[0], strerror(e));
    size_t n = 0;
    char scratch[4096];
    for (;;) {
        bool room = n < len - 1;
        ssize_t r = weft_read(p[0], room ? out + n : scratch, room ? len - 1 - n : sizeof scratch);
        if (r <= 0)
            break;
        if (room)
            n += (size_t)r;
    }
    out[n] = 0;
    weft_close(p[0]);
    int st = 0;
    weft_syscall_enter();   /* it has closed its output: exiting, or about to */
    waitpid(pid, &st, 0);
    weft_syscall_exit();
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void curl_main(void *arg)
{
    (void)arg;
    int port = weft_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0);
    static char out[1 << 16];
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/", port);
    char *index[] = { "curl", "-sS", "-i", "--max-time", "30", url, NULL };
    cr_assert_eq(runcmd(index, out, sizeof out), 0, "%s", out);
    cr_assert_eq(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", out);
    cr_assert_not_null(strstr(out, "goroutine?debug=1"), "%s", out);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/goroutine?debug=1", port);
    char *g10[] = { "curl", "-sS", "--http1.0", "--max-time", "30", url, NULL };
    cr_assert_eq(runcmd(g10, out, sizeof out), 0, "%s", out);
    cr_assert_eq(strncmp(out, "goroutine profile: total ", 25), 0, "%s", out);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/sched", port);
    char *head[] = { "curl", "-sS", "-I", "--max-time", "30", url, NULL };
    cr_assert_eq(runcmd(head, out, sizeof out), 0, "%s", out);
    cr_assert_eq(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", out);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/nope", port);
    char *nf[] = { "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", url, NULL };
    cr_assert_eq(runcmd(nf, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "404");
}

Test(debugserver, curl_fetches_the_endpoints, .timeout = 60)
{
    if (!have("curl"))
        cr_skip_test("curl is not installed");
    cr_assert_eq(weft_main(curl_main, NULL), 0);
}

/* go tool pprof -top URL, in a scratch HOME/GOCACHE/PPROF_TMPDIR. */
static int gopprof(const char *url, char *out, size_t len)
{
    char dir[] = "/tmp/weft-pprof-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char home[64], cache[80], tmp[80];
    snprintf(home, sizeof home, "HOME=%s", dir);
    snprintf(cache, sizeof cache, "GOCACHE=%s/cache", dir);
    snprintf(tmp, sizeof tmp, "PPROF_TMPDIR=%s", dir);
    char *argv[] = { "env", home, cache, tmp, "GOTOOLCHAIN=local", "GOPROXY=off", "GOFLAGS=",
                     "go", "tool", "pprof", "-timeout", "20", "-top", (char *)url, NULL };
    int st = runcmd(argv, out, len);
    char junk[256];
    char *rm[] = { "rm", "-rf", dir, NULL };
    runcmd(rm, junk, sizeof junk);
    return st;
}

/* Every goroutine's traceback, for a failure message: if the server
 * stalls, pprof gives up after its -timeout and this shows where. */
static const char *alldump(void)
{
    static char buf[1 << 18];
    int n = weft_stack(buf, sizeof buf - 1, true);
    buf[n > 0 ? n : 0] = 0;
    return buf;
}

static atomic_bool burning;

static void burn_cpu(void *arg)
{
    (void)arg;
    volatile unsigned long x = 0;
    while (atomic_load(&burning)) {
        for (int i = 0; i < 1000000; i++)
            x += (unsigned long)i;
        weft_yield();
    }
    (void)x;
}

static void gopprof_main(void *arg)
{
    (void)arg;
    int port = weft_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0);
    static char out[1 << 16];
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/threadcreate", port);
    cr_assert_eq(gopprof(url, out, sizeof out), 0, "%s\ngoroutines:\n%s", out, alldump());
    cr_assert_not_null(strstr(out, "Type: threadcreate"), "%s", out);
    cr_assert_not_null(strstr(out, "Showing nodes accounting for"), "%s", out);
    cr_assert_not_null(strstr(out, "flat  flat%"), "%s", out);
    cr_log_info("go tool pprof -top %s:\n%s", url, out);

    /* A goroutine burns CPU meanwhile: the profile must show it by name. */
    atomic_store(&burning, true);
    cr_assert_gt(weft_go(burn_cpu, NULL), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/debug/pprof/profile?seconds=1", port);
    int st = gopprof(url, out, sizeof out);
    atomic_store(&burning, false);
    cr_assert_eq(st, 0, "%s\ngoroutines:\n%s", out, alldump());
    cr_assert_not_null(strstr(out, "Type: cpu"), "%s", out);
    cr_assert_not_null(strstr(out, "burn_cpu"), "%s", out);
    cr_log_info("go tool pprof -top %s:\n%s", url, out);
}

Test(debugserver, go_tool_pprof_reads_it, .timeout = 60)
{
    if (!have("go"))
        cr_skip_test("go is not installed");
    cr_assert_eq(weft_main(gopprof_main, NULL), 0);
}
