/*
 * test_debugserver.c — weft_debug_serve: Go's net/http/pprof endpoints,
 * served from goroutines, fetched by a raw HTTP client (goroutine 1, on
 * weft's own I/O), by curl and by go tool pprof.  Malformed, oversized,
 * idle, excess, slow and vanishing clients never hurt the server or the
 * host; symbol requests never freeze the program; weft_debug_stop and the
 * end of weft_main free the port.  The request parser (diag/httpreq.h) is
 * also tested on its own (and fuzzed: tests/fuzz/fuzz_httpreq.c).
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
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
#include "diag/httpreq.h"   /* the request parser, tested on its own below */

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

/* A function to look up by address (kept out of line and distinct). */
__attribute__((noinline)) void test_debugserver_marker(void);
__attribute__((noinline)) void test_debugserver_marker(void)
{
    __asm__ volatile("");
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

SERVER_TEST(goroutine_debug3_is_json)
{
    resp r = get(port, "/debug/pprof/goroutine?debug=3");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: application/json"));
    cr_assert_eq(strncmp(r.body, "{\"goroutines\":[{\"goid\":", 23), 0, "%s", r.body);
    cr_assert_not_null(strstr(r.body, "\n\"omitted\":0}\n"), "%s", r.body);
    /* The accept loop's name, copied when its record was taken. */
    cr_assert_not_null(strstr(r.body, "\"name\":\"weft_debug_serve\","), "%s", r.body);
    freeresp(&r);
}

/* With SCHEDDEBUG=tracebackancestors, the connection goroutine's own
 * traceback reaches back through the accept loop to main's
 * weft_debug_serve call. */
static void ancestry_main(void *arg)
{
    (void)arg;
    int port = weft_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0, "weft_debug_serve: %d", port);
    resp r = get(port, "/debug/pprof/goroutine?debug=2");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    const char *a = strstr(r.body, "\n[originating from goroutine 1]:\n");
    cr_assert_not_null(a, "%s", r.body);
    cr_assert_not_null(strstr(a, "ancestry_main(...)\n"), "%s", r.body);
    freeresp(&r);
}

Test(debugserver, goroutine_debug2_shows_ancestry, .timeout = 60)
{
    setenv("SCHEDDEBUG", "tracebackancestors=4", 1);
    cr_assert_eq(weft_main(ancestry_main, NULL), 0);
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

/* Two goroutines lock A and B, then each the other's: the cycle is
 * reported (stderr) and then listed by /debug/lockcycles. */
static weft_mutex lc_mu[2] = { WEFT_MUTEX_INIT, WEFT_MUTEX_INIT };
static weft_wg lc_holding = WEFT_WG_INIT;

static void lc_member(void *arg)
{
    int i = (int)(intptr_t)arg;
    weft_mutex_lock(&lc_mu[i]);
    weft_wg_done(&lc_holding);
    weft_wg_wait(&lc_holding);
    weft_mutex_lock(&lc_mu[1 - i]);     /* never returns */
}

SERVER_TEST(lockcycles_lists_the_cycles_found)
{
    resp r = get(port, "/debug/lockcycles");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: text/plain; charset=utf-8"));
    cr_assert_str_eq(r.body, "no lock cycles found\n");
    freeresp(&r);
    weft_wg_add(&lc_holding, 2);
    weft_go(lc_member, (void *)(intptr_t)0);
    weft_go(lc_member, (void *)(intptr_t)1);
    char want[96];
    snprintf(want, sizeof want, " waits for mutex %p held by goroutine ", (void *)&lc_mu[0]);
    for (int tries = 0;; tries++) {
        r = get(port, "/debug/lockcycles");
        cr_assert_eq(r.status, 200, "%s", r.raw);
        static const char head[] = "weft: lock cycles found so far: 1\n\tgoroutine ";
        if (strncmp(r.body, head, strlen(head)) == 0)
            break;
        cr_assert_lt(tries, 500, "no cycle listed after 5 s:\n%s", r.body);
        freeresp(&r);
        weft_sleep(10 * 1000 * 1000);
    }
    cr_assert_not_null(strstr(r.body, want), "%s", r.body);
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

SERVER_TEST(trace_over_a_fraction_of_a_second)
{
    resp r = get(port, "/debug/pprof/trace?seconds=0.3");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert(hashdr(&r, "Content-Type: application/octet-stream"));
    cr_assert(hashdr(&r, "Content-Disposition: attachment; filename=\"trace\""));
    cr_assert_gt(r.bodylen, 16);
    cr_assert(memcmp(r.body, "go 1.19 trace\0\0\0", 16) == 0, "not an execution trace");
    freeresp(&r);
    /* As Go: a bad value is the default second, not an error. */
    r = get(port, "/debug/pprof/trace?seconds=abc");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
}

SERVER_TEST(trace_is_busy_while_another_runs)
{
    int fd = open("/dev/null", O_WRONLY);
    cr_assert_eq(weft_trace_start(fd), 0);
    resp r = get(port, "/debug/pprof/trace?seconds=1");
    cr_assert_eq(r.status, 500, "%s", r.raw);
    cr_assert_str_eq(r.body, "Could not enable tracing: tracing is already enabled\n");
    freeresp(&r);
    cr_assert_eq(weft_trace_stop(), 0);
    close(fd);
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

/* Go's FormValue unescapes: debug=%31 is debug=1 (the text form). */
SERVER_TEST(query_values_are_unescaped)
{
    resp r = get(port, "/debug/pprof/goroutine?debug=%31");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_eq(strncmp(r.body, "goroutine profile: total ", 25), 0, "%s", r.body);
    freeresp(&r);
}

/* A head with bare LFs ends at its first empty line, even when the body
 * holds an empty CRLF line further on (before: the CRLF one was preferred,
 * the body was taken for headers and the server waited for a body that had
 * already come). */
SERVER_TEST(bare_lf_head_ends_at_the_first_empty_line)
{
    char req[256], want[64];
    unsigned long pc = (unsigned long)(uintptr_t)test_debugserver_marker;
    int bl = snprintf(want, sizeof want, "%#lx+\r\n\r\n", pc);
    int n = snprintf(req, sizeof req, "POST /debug/pprof/symbol HTTP/1.1\nContent-Length: %d\n\n%s",
                     bl, want);
    resp r = rawreq(port, req, (size_t)n);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    snprintf(want, sizeof want, "num_symbols: 1\n%#lx test_debugserver_marker\n", pc);
    cr_assert_str_eq(r.body, want);
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

/* Waits (a bounded time) until exactly n goroutines are alive. */
static bool await_goroutines(int n)
{
    for (int tries = 0; tries < 2000; tries++) {
        if (weft_num_goroutine() == n)
            return true;
        weft_sleep(5 * 1000000LL);
    }
    return false;
}

/* True if the server has closed s without answering: EOF, no byte. */
static bool closed_unanswered(int s)
{
    char b[64];
    return weft_read(s, b, sizeof b) == 0;
}

/* The bound is 64 connections.  Connections that have sent nothing (or
 * half a request) give way to new ones once the bound is reached, oldest
 * first, closed without an answer; no more than 64 are ever kept, and a
 * real request still gets through. */
SERVER_TEST(idle_connections_beyond_the_bound_give_way)
{
    enum { BOUND = 64, EXTRA = 40 };
    int base = weft_num_goroutine();
    int idle[BOUND + EXTRA];
    for (int i = 0; i < BOUND; i++)
        idle[i] = dial(port);
    cr_assert(await_goroutines(base + BOUND), "%d goroutines, want %d", weft_num_goroutine(), base + BOUND);
    for (int i = BOUND; i < BOUND + EXTRA; i++) {
        idle[i] = dial(port);
        /* The server takes each one in turn (accept order is dial order),
         * giving up the oldest idle one for it. */
        cr_assert(closed_unanswered(idle[i - BOUND]), "connection %d was not given up", i - BOUND);
    }
    cr_assert(await_goroutines(base + BOUND), "%d goroutines, want %d", weft_num_goroutine(), base + BOUND);
    for (int i = EXTRA; i < BOUND + EXTRA; i++) {
        char b;
        cr_assert_eq(recv(idle[i], &b, 1, MSG_DONTWAIT), -1, "connection %d was closed", i);
        cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
    }
    resp r = get(port, "/debug/pprof/");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
    cr_assert(closed_unanswered(idle[EXTRA]));
    for (int i = 0; i < BOUND + EXTRA; i++)
        weft_close(idle[i]);
}

/* Slowloris: 64 clients each send a request one byte every 10 ms, and come
 * back at once whenever the server drops them.  A well-behaved request is
 * answered anyway, at its first attempt.  (Before: every slot stayed taken
 * for the 10 s head timeout, so it got 503 almost always.) */
static atomic_bool attacking;
static atomic_int loris_dials;

static void slowloris(void *arg)
{
    int port = (int)(intptr_t)arg;
    static const char head[] = "GET /debug/pprof/ HTTP/1.1\r\nX-Slow: ";
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    while (atomic_load(&attacking)) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0 || weft_connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
            weft_close(s);
            weft_sleep(10 * 1000000LL);
            continue;
        }
        atomic_fetch_add(&loris_dials, 1);
        for (size_t i = 0; atomic_load(&attacking); i++) {
            char b = i < sizeof head - 1 ? head[i] : 'a';
            if (weft_write(s, &b, 1) != 1 || recv(s, &b, 1, MSG_DONTWAIT) == 0)
                break;      /* dropped: come back */
            weft_sleep(10 * 1000000LL);
        }
        weft_close(s);
    }
}

SERVER_TEST(slow_clients_cannot_starve_the_server)
{
    enum { LORISES = 64 };
    int base = weft_num_goroutine();
    atomic_store(&attacking, true);
    for (int i = 0; i < LORISES; i++)
        cr_assert_gt(weft_go(slowloris, (void *)(intptr_t)port), 0);
    /* Every slot is taken: 64 attackers, 64 connection goroutines. */
    cr_assert(await_goroutines(base + 2 * LORISES), "%d goroutines, want %d",
              weft_num_goroutine(), base + 2 * LORISES);
    weft_sleep(50 * 1000000LL);
    int dials = atomic_load(&loris_dials);
    int64_t t0 = weft_nanotime();
    resp r = get(port, "/debug/pprof/");
    int64_t took = weft_nanotime() - t0;
    cr_log_info("a request during the attack: %d in %.1f ms", r.status, took / 1e6);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
    cr_assert_geq(dials, LORISES);
    /* The request took an attacker's place: that one comes back. */
    for (int tries = 0; tries < 1000 && atomic_load(&loris_dials) == dials; tries++)
        weft_sleep(5 * 1000000LL);
    cr_assert_gt(atomic_load(&loris_dials), dials, "no attacker was given up");
    atomic_store(&attacking, false);
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

/* The freeze of issue 11: three clients at once POST 20,000 addresses that
 * lie in no object (below mmap_min_addr, so never mapped).  The server
 * must not stop the program's own goroutines meanwhile: a ticker that
 * sleeps 1 ms at a time records how late it wakes.  (Before: each unknown
 * address re-read /proc/self/maps under the symbolizer's lock, with the P
 * held and never a yield, and the ticker stood still for about 5 s.)  The
 * bound asserted is generous, for loaded CI machines; the figure measured
 * is logged. */
enum { SYM_CLIENTS = 3, SYM_ADDRS = 20000 };

static atomic_bool ticking;
static atomic_llong worst_late;     /* ns */
static weft_wg ticker_done = WEFT_WG_INIT, clients_done = WEFT_WG_INIT;

static void ticker(void *arg)
{
    (void)arg;
    while (atomic_load(&ticking)) {
        int64_t t0 = weft_nanotime();
        weft_sleep(1000000);
        int64_t late = weft_nanotime() - t0 - 1000000;
        if (late > atomic_load(&worst_late))
            atomic_store(&worst_late, late);
    }
    weft_wg_done(&ticker_done);
}

typedef struct symclient {
    int port;
    const char *body;   /* the addresses */
    size_t n;
    int status;
    size_t lines;
} symclient;

/* A plain thread with a blocking socket, so that the clients take no P. */
static void *bogus_symbols(void *arg)
{
    symclient *sc = arg;
    const char *body = sc->body;
    size_t n = sc->n;
    char head[160];
    int hl = snprintf(head, sizeof head, "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: %zu\r\n\r\n", n);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)sc->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(write(s, head, (size_t)hl), hl);
    for (size_t off = 0; off < n;) {
        ssize_t w = write(s, body + off, n - off);
        cr_assert_gt(w, 0);
        off += (size_t)w;
    }
    resp r = readresp(s);
    close(s);
    sc->status = r.status;
    for (const char *p = r.body; (p = strchr(p, '\n')); p++)
        sc->lines++;
    freeresp(&r);
    weft_wg_done(&clients_done);
    return NULL;
}

SERVER_TEST(symbol_requests_do_not_freeze_the_program)
{
    /* The body all three send: 0x1000+0x1002+... (formatted before the
     * measurement, which is of the server, not of the clients). */
    size_t cap = (size_t)SYM_ADDRS * 16, n = 0;
    char *body = malloc(cap);
    cr_assert_not_null(body);
    for (int i = 0; i < SYM_ADDRS; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s%#x", i ? "+" : "", 0x1000 + 2 * i);
    atomic_store(&ticking, true);
    weft_wg_add(&ticker_done, 1);
    cr_assert_gt(weft_go(ticker, NULL), 0);
    weft_sleep(20 * 1000000LL);             /* the ticker is under way */
    atomic_store(&worst_late, 0);
    symclient sc[SYM_CLIENTS];
    pthread_t t[SYM_CLIENTS];
    int64_t t0 = weft_nanotime();
    weft_wg_add(&clients_done, SYM_CLIENTS);
    for (int i = 0; i < SYM_CLIENTS; i++) {
        sc[i] = (symclient){ .port = port, .body = body, .n = n };
        cr_assert_eq(pthread_create(&t[i], NULL, bogus_symbols, &sc[i]), 0);
    }
    weft_wg_wait(&clients_done);
    int64_t took = weft_nanotime() - t0;
    atomic_store(&ticking, false);
    weft_wg_wait(&ticker_done);
    for (int i = 0; i < SYM_CLIENTS; i++) {
        pthread_join(t[i], NULL);       /* they have finished */
        cr_assert_eq(sc[i].status, 200);
        cr_assert_eq(sc[i].lines, 1, "only num_symbols: no address is known");
    }
    free(body);
    long long late = atomic_load(&worst_late);
    cr_log_info("3 x %d bogus addresses: %.1f ms; the ticker's worst lateness %.2f ms",
                SYM_ADDRS, took / 1e6, late / 1e6);
    cr_assert_lt(late, 1000 * 1000000LL, "the ticker stood still for %.0f ms", late / 1e6);
}

/* A library loaded after the symbolizer has read the process's objects is
 * still found: the loader's count of loaded objects has changed, so they
 * are read again (an address in no object does not make them be read
 * again, which is what symbol_requests_do_not_freeze_the_program needs). */
SERVER_TEST(symbol_finds_a_library_loaded_later)
{
    resp r = get(port, "/debug/pprof/symbol?0x1000+0x1002");
    cr_assert_str_eq(r.body, "num_symbols: 1\n");
    freeresp(&r);
    void *h = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        cr_skip_test("no libcrypt.so.1 to load: %s", dlerror());
    void *f = dlsym(h, "crypt");
    cr_assert_not_null(f);
    char target[64], want[64];
    snprintf(target, sizeof target, "/debug/pprof/symbol?%#lx", (unsigned long)(uintptr_t)f);
    snprintf(want, sizeof want, "num_symbols: 1\n%#lx crypt\n", (unsigned long)(uintptr_t)f);
    r = get(port, target);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    cr_assert_str_eq(r.body, want);
    freeresp(&r);
    dlclose(h);
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

/* ---- stopping ------------------------------------------------------------------------- */

/* True if a connection to 127.0.0.1:port is refused (no listener).  A plain
 * blocking connect: on loopback it is answered at once either way. */
static bool refused(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(s, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(s);
    return r != 0 && e == ECONNREFUSED;
}

/* weft_debug_stop closes the listener (a new client is refused, not left
 * hanging), ends the open connections (an idle client sees EOF), and the
 * port can be bound again at once. */
SERVER_TEST(stop_frees_the_port)
{
    int idle = dial(port);
    (void)!weft_write(idle, "GET /debug/pp", 13);   /* half a request */
    resp r = get(port, "/debug/pprof/");            /* its connection lingers in TIME_WAIT */
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
    cr_assert_eq(weft_debug_stop(port), 0);
    cr_assert(closed_unanswered(idle));
    weft_close(idle);
    cr_assert(refused(port));
    cr_assert_eq(weft_debug_stop(port), -ENOENT);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    cr_assert_eq(weft_debug_serve(addr), port);
    r = get(port, "/debug/pprof/");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
    cr_assert_eq(weft_debug_stop(port), 0);
    cr_assert(refused(port));
    cr_assert_eq(weft_debug_stop(0), -EINVAL);
    cr_assert_eq(weft_debug_stop(65536), -EINVAL);
}

/* True if this process has a POSIX timer that sends SIGPROF: the CPU
 * profiler is running. */
static bool proftimers(void)
{
    char want[32], line[256];
    snprintf(want, sizeof want, "signal: %d/", SIGPROF);
    FILE *f = fopen("/proc/self/timers", "r");
    if (!f)
        cr_skip_test("no /proc/self/timers");
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strncmp(line, want, strlen(want)) == 0;
    fclose(f);
    return found;
}

/* Stopping while a CPU profile is being taken ends it (the profiler is free
 * again) and the client gets no answer. */
SERVER_TEST(stop_ends_a_running_profile)
{
    static const char req[] = "GET /debug/pprof/profile?seconds=30 HTTP/1.1\r\n\r\n";
    int s = dial(port);
    cr_assert_eq(weft_write(s, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    /* Wait, without touching the profiler, until the server has taken it:
     * its SIGPROF timers appear in /proc/self/timers. */
    bool taking = false;
    for (int tries = 0; tries < 1000 && !(taking = proftimers()); tries++)
        weft_sleep(5 * 1000000LL);
    cr_assert(taking, "the server never started the profile");
    int tmp = open("/dev/null", O_WRONLY | O_CLOEXEC);
    cr_assert_geq(tmp, 0);
    cr_assert_eq(weft_cpuprofile_start(tmp, 100), -EBUSY);
    int64_t t0 = weft_nanotime();
    cr_assert_eq(weft_debug_stop(port), 0);
    cr_assert_lt(weft_nanotime() - t0, 20 * 1000000000LL, "stop waited for the 30 s profile");
    cr_assert(closed_unanswered(s));
    weft_close(s);
    cr_assert_not(proftimers(), "the profile still runs");
    cr_assert_eq(weft_cpuprofile_start(tmp, 100), 0, "the profiler is still taken");
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    close(tmp);
}

/* The end of weft_main stops every server it runs: its port is free and a
 * client is refused, not left hanging (before: the listener stayed bound,
 * and a client's connect succeeded into a backlog nobody accepts). */
static int lifetime_port;
static int lifetime_client = -1;

static void lifetime_main(void *arg)
{
    (void)arg;
    lifetime_port = weft_debug_serve("127.0.0.1:0");
    cr_assert_gt(lifetime_port, 0);
    lifetime_client = dial(lifetime_port);          /* a connection left open */
    cr_assert_eq(weft_write(lifetime_client, "GET /", 5), 5);
    resp r = get(lifetime_port, "/debug/pprof/");
    cr_assert_eq(r.status, 200, "%s", r.raw);
    freeresp(&r);
}

Test(debugserver, the_end_of_main_stops_the_server, .timeout = 60)
{
    cr_assert_eq(weft_main(lifetime_main, NULL), 0);
    cr_assert(refused(lifetime_port), "port %d still listens after weft_main", lifetime_port);
    char b[16];
    cr_assert_eq(read(lifetime_client, b, sizeof b), 0, "the open connection was not closed");
    close(lifetime_client);
    /* Bound again at once, by anyone (SO_REUSEADDR, as weft_debug_serve). */
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)lifetime_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(s, (struct sockaddr *)&a, sizeof a), 0, "bind: %s", strerror(errno));
    close(s);
}

/* ---- the request parser (diag/httpreq.h), on its own ------------------------------ */

Test(debugserver, parser_finds_the_end_of_the_head)
{
    static const struct { const char *in; size_t want; } cases[] = {
        { "GET / HTTP/1.1\r\n\r\n", 18 },
        { "GET / HTTP/1.1\n\n", 16 },
        { "GET / HTTP/1.1\n\nbody\r\n\r\n", 16 },   /* the first empty line */
        { "GET / HTTP/1.1\r\n\nX", 17 },
        { "GET / HTTP/1.1\r\nA: b\r\n", 0 },         /* not yet */
        { "GET / HTTP/1.1\r\n\r", 0 },
        { "\r\n", 2 },                              /* an empty head (then 400) */
        { "", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_assert_eq(weft__http_headlen(cases[i].in, strlen(cases[i].in)), cases[i].want,
                     "case %zu", i);
}

/* Parses a head given as a C string into a scratch copy. */
static int parse(const char *head, weft__httpreq *req, char *scratch, size_t len)
{
    size_t n = strlen(head);
    cr_assert_lt(n, len);
    memcpy(scratch, head, n + 1);
    cr_assert_eq(weft__http_headlen(scratch, n), n, "not one head: %s", head);
    return weft__http_parse(scratch, n, req);
}

Test(debugserver, parser_reads_the_request)
{
    char b[512];
    weft__httpreq q;
    cr_assert_eq(parse("GET /debug/pprof/goroutine?debug=2&x HTTP/1.1\r\nHost: a\r\n\r\n", &q, b, sizeof b), 0);
    cr_assert_eq(q.method, WEFT__HTTP_GET);
    cr_assert_str_eq(q.path, "/debug/pprof/goroutine");
    cr_assert_str_eq(q.query, "debug=2&x");
    cr_assert_eq(q.minor, 1);
    cr_assert_eq(q.clen, -1);
    cr_assert_eq(parse("HEAD /x HTTP/1.0\n\n", &q, b, sizeof b), 0);
    cr_assert_eq(q.method, WEFT__HTTP_HEAD);
    cr_assert_null(q.query);
    cr_assert_eq(parse("POST /s HTTP/1.1\r\ncontent-LENGTH: \t12 \r\nContent-Length: 12\r\n\r\n", &q, b, sizeof b), 0);
    cr_assert_eq(q.method, WEFT__HTTP_POST);
    cr_assert_eq(q.clen, 12);
    cr_assert_eq(parse("POST /s HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", &q, b, sizeof b), 0);
    cr_assert_eq(q.clen, INT64_MAX, "a length too large is too large, not malformed");
    cr_assert_eq(parse("DELETE /x HTTP/1.1\r\n\r\n", &q, b, sizeof b), 405);
    cr_assert_eq(q.method, WEFT__HTTP_OTHER);

    static const char *bad[] = {
        "GET /x HTTP/1.1\r\nNo colon\r\n\r\n",
        "GET /x HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET /x HTTP/1.1\r\nBad name: x\r\n\r\n",
        "GET /x HTTP/1.1\r\n folded: x\r\n\r\n",
        "GET /x HTTP/1.1\r\nA: b\rc\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST /x HTTP/1.1\r\nContent-Length:\r\n\r\n",
        "GET /x\r HTTP/1.1\r\n\r\n",
        "GET /x HTTP/1.1\r\r\n\r\n",
        "\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_eq(parse(bad[i], &q, b, sizeof b), 400, "bad[%zu]", i);
    /* A NUL in a header line (strings cannot hold it: by hand). */
    static const char nul[] = "GET /x HTTP/1.1\r\nA: \0\r\n\r\n";
    memcpy(b, nul, sizeof nul);
    cr_assert_eq(weft__http_headlen(b, sizeof nul - 1), sizeof nul - 1);
    cr_assert_eq(weft__http_parse(b, sizeof nul - 1, &q), 400);
}

Test(debugserver, parser_reads_query_values_as_go)
{
    char v[8];
    cr_assert(weft__http_query("debug=1", "debug", v, sizeof v));
    cr_assert_str_eq(v, "1");
    cr_assert(weft__http_query("a=1&seconds=%33%30&seconds=5", "seconds", v, sizeof v));
    cr_assert_str_eq(v, "30");
    cr_assert(weft__http_query("x=a+b", "x", v, sizeof v));
    cr_assert_str_eq(v, "a b");
    cr_assert(weft__http_query("x=%zz&x=2", "x", v, sizeof v));   /* a bad escape: skipped */
    cr_assert_str_eq(v, "2");
    cr_assert(weft__http_query("x=1;y&x=3", "x", v, sizeof v));   /* ';': skipped, as Go 1.17 */
    cr_assert_str_eq(v, "3");
    cr_assert(weft__http_query("d%65bug=4", "debug", v, sizeof v)); /* keys are unescaped too */
    cr_assert_str_eq(v, "4");
    cr_assert(weft__http_query("x", "x", v, sizeof v));
    cr_assert_str_eq(v, "");
    cr_assert(weft__http_query("x=12345678", "x", v, sizeof v));   /* too long for v */
    cr_assert_str_eq(v, "?");
    cr_assert(weft__http_query("x=1%002", "x", v, sizeof v));      /* a NUL: no C string */
    cr_assert_str_eq(v, "?");
    cr_assert_not(weft__http_query("xx=1&=2", "x", v, sizeof v));
    cr_assert_not(weft__http_query(NULL, "x", v, sizeof v));
    long n;
    cr_assert(weft__http_atoi("-12", &n) && n == -12);
    cr_assert(weft__http_atoi("+999999999", &n) && n == 999999999);
    cr_assert_not(weft__http_atoi("1000000000", &n));
    cr_assert_not(weft__http_atoi("1 ", &n));
    cr_assert_not(weft__http_atoi("", &n));
}

Test(debugserver, parser_reads_addresses_as_go_parseuint)
{
    static const struct { const char *word; uint64_t want; } cases[] = {
        { "0x7f00aBc", 0x7f00abc }, { "0X10", 16 }, { "0o17", 15 }, { "017", 15 },
        { "0b101", 5 }, { "42", 42 }, { "0", 0 }, { "18446744073709551615", UINT64_MAX },
        { "0xffffffffffffffff", UINT64_MAX },
        /* Not addresses (strtoull took the first three): */
        { "-1", 0 }, { " 16", 0 }, { "18446744073709551616", 0 }, { "0x", 0 }, { "08", 0 },
        { "0b2", 0 }, { "1_000", 0 }, { "12abc", 0 }, { "", 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *p = cases[i].word;
        cr_assert_eq(weft__http_nextaddr(&p), cases[i].want, "\"%s\"", cases[i].word);
        cr_assert_null(p);
    }
    const char *p = "1+0x2++3";
    uint64_t got[4];
    for (int i = 0; i < 4; i++) {
        cr_assert_not_null(p);
        got[i] = weft__http_nextaddr(&p);
    }
    cr_assert_null(p);
    cr_assert(got[0] == 1 && got[1] == 2 && got[2] == 0 && got[3] == 3);
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

/* Receives until the channel is closed. */
static void drain_chan(void *arg)
{
    int v;
    while (weft_chan_recv(arg, &v))
        ;
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

/* Goroutines that switch, sleep and talk while the trace runs. */
__attribute__((noinline)) void test_debugserver_traced(void *arg)
{
    weft_chan *ch = arg;
    int v = 0;
    while (atomic_load(&burning)) {
        weft_yield();
        weft_sleep(100 * 1000);
        weft_chan_send(ch, &v);
    }
    weft_chan_close(ch);
}

static void gotrace_main(void *arg)
{
    (void)arg;
    int port = weft_debug_serve("127.0.0.1:0");
    cr_assert_gt(port, 0);
    weft_chan *ch = weft_chan_new(sizeof(int), 0);
    atomic_store(&burning, true);
    cr_assert_gt(weft_go(test_debugserver_traced, ch), 0);
    cr_assert_gt(weft_go(drain_chan, ch), 0);
    resp r = get(port, "/debug/pprof/trace?seconds=1");
    atomic_store(&burning, false);
    cr_assert_eq(r.status, 200, "%s", r.raw);
    char dir[] = "/tmp/weft-trace-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char file[64], script[512];
    snprintf(file, sizeof file, "%s/trace", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(r.body, 1, r.bodylen, f), r.bodylen);
    fclose(f);
    freeresp(&r);
    /* Go's parser checks every goroutine's and P's life: -d fails on any
     * inconsistency.  Then the traced goroutine's own events are there. */
    snprintf(script, sizeof script,
             "HOME=%s GOCACHE=%s/cache GOTOOLCHAIN=local GOFLAGS= go tool trace -d %s > %s.txt 2>&1 "
             "|| { tail -3 %s.txt; exit 1; }; grep -Ec ' GoBlock(Recv|Send) ' %s.txt",
             dir, dir, file, file, file, file);
    char *argv[] = { "sh", "-c", script, NULL };
    static char out[1 << 12];
    int st = runcmd(argv, out, sizeof out);
    char junk[256];
    char *rm[] = { "rm", "-rf", dir, NULL };
    runcmd(rm, junk, sizeof junk);
    cr_assert_eq(st, 0, "go tool trace -d: %s", out);
    cr_assert_gt(atoi(out), 0, "no GoBlockRecv or GoBlockSend in the trace: %s", out);
}

Test(debugserver, go_tool_trace_reads_its_trace, .timeout = 60)
{
    if (!have("go"))
        cr_skip_test("go is not installed");
    cr_assert_eq(weft_main(gotrace_main, NULL), 0);
}
