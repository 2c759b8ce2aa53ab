/*
 * debugserver.c — Go's net/http/pprof, served from goroutines
 * (weft_debug_serve, weft_debug_stop).
 *
 * The server is a client of weft like any other program: the public API,
 * plus the in-process symbolizer for /debug/pprof/symbol.  weft_debug_serve
 * binds and listens synchronously (so that it can return the port or the
 * bind error), then starts an accept-loop goroutine (weft_go, which boots
 * the runtime lazily when called from a plain thread).  Each connection
 * gets its own goroutine, which answers one request and closes: HTTP/1.0
 * and 1.1, always "Connection: close", no keep-alive.
 *
 *   accept loop ──weft_accept──> conn goroutine: readhead → route → reply → finish
 *
 * Endpoints (Go's; docs/formats.md, the debug server endpoints):
 * /debug/pprof/ (index), goroutine and threadcreate (?debug=N), profile
 * (?seconds=N, CPU), trace (?seconds=N, an execution trace), symbol (GET query or POST body: go tool pprof asks it
 * for addresses its profile left without a function, and fails the whole
 * fetch if it is missing), and weft's own /debug/sched (a detailed
 * scheduler dump).  Bodies are written into a memfd
 * first (the profile writers use plain write(2), which a non-blocking
 * socket would cut short) and then sent with a Content-Length, so a slow
 * client never holds up a profile writer and a failed one can still get a
 * 500.  What the client sent is parsed by httpreq.c, pure functions that
 * tests/fuzz/fuzz_httpreq.c fuzzes.
 *
 * Robustness, because this runs inside someone else's program:
 *   - loopback unless the caller names another address: "" and "localhost"
 *     are 127.0.0.1, and no name is resolved (that would block a thread);
 *   - the request head is bounded (HDR_MAX, else 431) and must arrive within
 *     READ_TIMEOUT, so a silent client cannot pin a goroutine forever;
 *   - at most MAX_CONNS connections are served at once.  When all are
 *     taken, a new connection takes the place of the oldest one that is
 *     still waiting on its client (sending its request, or being drained
 *     after its answer), which is closed unanswered: slow or idle clients
 *     (slowloris) cannot keep real requests out.  Only when every
 *     connection is busy answering does the accept loop answer 503 itself,
 *     without blocking;
 *   - /debug/pprof/symbol never holds a P for long: its body is bounded
 *     (BODY_MAX, so at most 512 Ki addresses), each lookup runs inside a
 *     syscall bracket (weft_syscall_enter), so that sysmon hands the P to
 *     another thread while the lookup waits for the symbolizer's lock or
 *     reads an object's tables, and the goroutine yields after each
 *     address; an address in no object costs a walk of the loaded objects,
 *     not a read of /proc/self/maps (symtab.c);
 *   - sockets are written with send(MSG_NOSIGNAL): a client that vanishes
 *     mid-response gives EPIPE, not a SIGPIPE that kills the host; each
 *     stall waits at most WRITE_TIMEOUT;
 *   - accept errors (EMFILE, ENFILE, ENOBUFS...) back off with weft_sleep,
 *     5 ms doubling to 1 s as Go's http.Server does, never spin or give up.
 *
 * Reads are weft_wait_fd with a deadline, then recv(MSG_DONTWAIT), rather
 * than weft_read, which has no timeout: the netpoller is edge-triggered, so
 * a wait may return for bytes already consumed; recv then says EAGAIN and
 * we wait again.  errno is read right after each syscall, before any weft
 * call could move the goroutine to another thread.
 *
 * Stopping.  Every server is on a list (srvlock) with its connections.
 * weft_debug_stop(port) is Go's Server.Close: it shuts the listening socket
 * down (accept fails, new clients are refused) and every connection too
 * (its goroutine wakes and ends without answering; a CPU profile in
 * progress stops), waits for the accept loop to close the listener and for
 * every connection goroutine to end, and returns: the port can be bound
 * again at once (SO_REUSEADDR; the server's closed connections wait out
 * TIME_WAIT without holding it).  The end of weft_main does the same for
 * every server left (weft__debugserver_shutdown): its goroutines never run
 * again, so it closes their sockets itself.
 *
 * Limits: Go's delta profiles (?seconds= on goroutine or threadcreate) are
 * ignored; heap, allocs, block, mutex and cmdline are 404 "Unknown
 * profile".  A client that reads its response slowly keeps its connection
 * (up to WRITE_TIMEOUT per stall).
 */
#include <arpa/inet.h>
#include <atomic_ops.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"
#include "httpreq.h"    /* the request parser */
#include "schedview.h"  /* the runtime's locks (srvlock), weft__debugserver_shutdown */
#include "symtab.h"     /* weft__symbolize, for /debug/pprof/symbol */

#define HDR_MAX        8192                     /* request line + headers */
#define BODY_MAX       (1L << 20)               /* POST /debug/pprof/symbol */
#define MAX_CONNS      64                       /* connections served at once */
#define READ_TIMEOUT   (10LL * 1000000000)      /* the head; then the body */
#define WRITE_TIMEOUT  (10LL * 1000000000)      /* each stall while sending */
#define LINGER_TIMEOUT (1LL * 1000000000)       /* draining before the close */
#define STACK          (256u * 1024u)           /* profile writers like room */

#define TEXT  "text/plain; charset=utf-8"
#define HTML  "text/html; charset=utf-8"
#define OCTET "application/octet-stream"
#define JSON  "application/json"

typedef struct conn conn;

typedef struct server {
    struct server *next;    /* srvlock: the list of servers */
    int port;               /* const: what weft_debug_serve returned */
    int lfd;                /* srvlock: the listening socket; -1 once closed */
    bool stopping;          /* srvlock: weft_debug_stop is waiting for it */
    conn *first, *last;     /* srvlock: its connections, oldest first */
    int nconns;             /* srvlock: connections on the list */
    int nactive;            /* srvlock: of which not given up (at most MAX_CONNS) */
    weft_wg wg;             /* the accept loop and each connection goroutine */
} server;

struct conn {
    server *srv;            /* const */
    conn *prev, *next;      /* srvlock: the server's list */
    bool waiting;           /* srvlock: waiting on its client (reading the request, or
                             * draining after the answer): may be given up */
    AO_t cut;               /* atomic: given up, or the server stops; its socket is shut
                             * down, so every read and write fails: end, answer nothing */
    int fd;                 /* the connection; closed by its goroutine after leaving the
                             * list (or by the runtime's shutdown) */
    int mfd;                /* memfd the response body is built in, or -1 */
    char *body;             /* a POST body, or NULL */
    char *scratch;          /* replyfile's buffer, or NULL */
    bool head;              /* HEAD: send no body */
    weft__httpreq req;      /* the parsed request line (points into buf) */
    size_t n;               /* bytes in buf */
    size_t hlen;            /* of which the request head */
    char buf[HDR_MAX + 1];  /* the request head (+ NUL), later drain scratch */
};

/* Every server (weft_debug_stop finds them by port, the runtime's shutdown
 * closes what is left) and their connections.  Held only for list and
 * flag updates and shutdown(2) calls: never across a weft call. */
static weft__mutex srvlock = WEFT__MUTEX_INIT(LOCKRANK_DEBUGSRV);
static server *servers;     /* srvlock */

/* Gives c up: flags it and shuts its socket down, which wakes its goroutine
 * wherever it waits on the client.  srvlock. */
static void giveup(server *s, conn *c)
{
    /* load: set only here, under srvlock, which we hold */
    if (AO_load(&c->cut))
        return;
    /* a hint read without the lock: the shutdown is what stops the I/O */
    AO_store(&c->cut, 1);
    s->nactive--;
    shutdown(c->fd, SHUT_RDWR);
}

/* Sets whether c waits on its client.  Takes srvlock. */
static void setwaiting(conn *c, bool waiting)
{
    weft__lock(&srvlock);
    c->waiting = waiting;
    weft__unlock(&srvlock);
}

/* ---- responses ------------------------------------------------------------------- */

/* Sends all n bytes, parking while the socket buffer is full.  0 or -errno. */
static int sendall(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        int e = errno;
        if (e != EINTR && e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int r = e == EINTR ? 0 : weft_wait_fd(fd, WEFT_WRITE, WRITE_TIMEOUT);
        if (r < 0)
            return r;
    }
    return 0;
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Request Entity Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    default:  return "Service Unavailable";
    }
}

/* Sends the head (extra is "" or header lines, each ending in CRLF), then
 * the body unless it is NULL (the caller sends it) or this is HEAD. */
static int reply(conn *c, int status, const char *ctype, const char *extra, const char *body, size_t len)
{
    char h[512];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
                     status, reason(status), ctype, len, extra);
    int err = n > 0 && (size_t)n < sizeof h ? sendall(c->fd, h, (size_t)n) : -EINVAL;
    return err == 0 && body && !c->head ? sendall(c->fd, body, len) : err;
}

/* Go's http.Error: the message and a newline as text; pprof's own errors
 * (its serveError) add X-Go-Pprof. */
static void __attribute__((format(printf, 4, 5)))
fail(conn *c, int status, bool pprof, const char *fmt, ...)
{
    char b[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b - 1, fmt, ap);
    va_end(ap);
    n = n < 0 ? 0 : n > (int)sizeof b - 2 ? (int)sizeof b - 2 : n;
    b[n++] = '\n';
    reply(c, status, TEXT, pprof ? "X-Go-Pprof: 1\r\n" : "", b, (size_t)n);
}

static void notallowed(conn *c)
{
    reply(c, 405, TEXT, "Allow: GET, HEAD\r\n", "Method Not Allowed\n", 19);
}

static const char *errstr(int err, char *b, size_t len)
{
    return strerror_r(-err, b, len);    /* GNU: may return a static string */
}

/* Sends what the handler wrote into c->mfd.  (Copied through a buffer, not
 * mapped: under ASan, a fresh mapping may inherit the stale shadow of a
 * goroutine stack unmapped there before.) */
static void replyfile(conn *c, const char *ctype, const char *extra)
{
    enum { CHUNK = 64 << 10 };
    off_t len = lseek(c->mfd, 0, SEEK_END);
    char *b = c->scratch = len >= 0 ? malloc(CHUNK) : NULL;
    if (!b) {
        fail(c, 500, false, "Could not read back the response");
        return;
    }
    ssize_t r;
    if (reply(c, 200, ctype, extra, NULL, (size_t)len) == 0 && !c->head)
        for (off_t off = 0; off < len && (r = pread(c->mfd, b, CHUNK, off)) > 0; off += r)
            if (sendall(c->fd, b, (size_t)r) < 0)
                break;
}

/* ---- handlers --------------------------------------------------------------------- */

/* Go's pprof.Index, with the profiles weft has, and a link to /debug/sched. */
static void serveindex(conn *c)
{
    bool ok;
    int nt = weft_threadcreate_profile(NULL, 0, &ok);
    dprintf(c->mfd,
        "<html>\n<head>\n<title>/debug/pprof/</title>\n<style>\n.profile-name{\n"
        "\tdisplay:inline-block;\n\twidth:6rem;\n}\n</style>\n</head>\n<body>\n/debug/pprof/\n<br>\n"
        "<p>Set debug=1 as a query parameter to export in legacy text format</p>\n<br>\n"
        "Types of profiles available:\n<table>\n<thead><td>Count</td><td>Profile</td></thead>\n"
        "\t<tr>\n\t<td>%d</td><td><a href='goroutine?debug=1'>goroutine</a></td>\n\t</tr>\n"
        "\t<tr>\n\t<td>0</td><td><a href='profile'>profile</a></td>\n\t</tr>\n"
        "\t<tr>\n\t<td>%d</td><td><a href='threadcreate?debug=1'>threadcreate</a></td>\n\t</tr>\n"
        "\t<tr>\n\t<td>0</td><td><a href='trace'>trace</a></td>\n\t</tr>\n"
        "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
        "<a href=\"/debug/sched\">scheduler dump</a>\n<br>\n"
        "<a href=\"/debug/lockcycles\">lock cycles found</a>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n"
        "<li><div class=profile-name>goroutine: </div> Stack traces of all current goroutines. "
        "Use debug=2 as a query parameter to export in the same format as an unrecovered panic.</li>\n"
        "<li><div class=profile-name>profile: </div> CPU profile. You can specify the duration in "
        "the seconds GET parameter. After you get the profile file, use the go tool pprof command "
        "to investigate the profile.</li>\n<li><div class=profile-name>threadcreate: </div> Stack "
        "traces that led to the creation of new OS threads.</li>\n<li><div class=profile-name>trace: </div> "
        "A trace of execution of the current program. You can specify the duration in the seconds GET "
        "parameter. After you get the trace file, use the go tool trace command to investigate the "
        "trace.</li>\n</ul>\n</p>\n</body>\n</html>\n",
        weft_num_goroutine(), nt < 0 ? 0 : nt);
    replyfile(c, HTML, "");
}

/* The lock cycles reported so far, as SIGQUIT prints them. */
static void servelockcycles(conn *c)
{
    weft__lockcycle_write(c->mfd);
    replyfile(c, TEXT, "");
}

/* pprof.Handler(name) for goroutine and threadcreate, ?debug=N. */
static void serveprofile(conn *c, const char *name, const char *query)
{
    char v[32], eb[64], disp[96];
    long debug = 0;
    if (weft__http_query(query, "debug", v, sizeof v) && (!weft__http_atoi(v, &debug) || debug < 0))
        debug = 0;      /* Go ignores strconv.Atoi's error */
    int err = weft_profile_write(name, c->mfd, debug > 1000 ? 1000 : (int)debug);
    snprintf(disp, sizeof disp, "Content-Disposition: attachment; filename=\"%s\"\r\n", name);
    if (err < 0)
        fail(c, 500, true, "Could not write %s profile: %s", name, errstr(err, eb, sizeof eb));
    else
        replyfile(c, debug >= 3 && strcmp(name, "goroutine") == 0 ? JSON : debug ? TEXT : OCTET,
                  debug ? "" : disp);
}

/* The function pc lies in, without ever holding a P while waiting: the
 * lookup is a syscall to the scheduler (if it takes long, reading an
 * object's symbol and line tables for the first time, sysmon hands the P
 * to another thread), and while another thread holds the symbolizer the
 * goroutine sleeps instead of blocking its M. */
static bool symbolize(uintptr_t pc, weft__sym *sym)
{
    for (int64_t backoff = 20000;; backoff = backoff < 1000000 ? backoff * 2 : 1000000) {
        weft_syscall_enter();
        int r = weft__symbolize_nowait(pc, sym);
        weft_syscall_exit();
        if (r != -EBUSY)
            return r > 0 && sym->func;
        weft_sleep(backoff);
    }
}

/* pprof.Symbol: "num_symbols: 1", then "0xpc name" for each pc of the
 * '+'-separated list that lies in a known function (others are left out).
 * The list is at most BODY_MAX bytes, each lookup leaves the P alone when
 * it waits (symbolize) and is followed by a yield, so that three clients
 * sending half a million addresses each do not stop the program. */
static void servesymbol(conn *c, const char *in)
{
    dprintf(c->mfd, "num_symbols: 1\n");
    for (const char *p = in; p && *p;) {
        if (AO_load(&c->cut))   /* a hint, as giveup says: no ordering needed */
            return;             /* the server stops: nobody to answer */
        uint64_t pc = weft__http_nextaddr(&p);
        weft__sym sym;
        bool found = pc != 0 && symbolize((uintptr_t)pc, &sym);
        if (found)
            dprintf(c->mfd, "%#llx %s\n", (unsigned long long)pc, sym.func);
        weft_yield();
    }
    replyfile(c, TEXT, "");
}

/* Waits ns, or less if the client hangs up first (Go ends a CPU profile with
 * its request).  True if the client is gone. */
static bool sleepwatch(int fd, int64_t ns)
{
    int64_t end = weft_nanotime() + ns, left;
    while ((left = end - weft_nanotime()) > 0 && weft_wait_fd(fd, WEFT_READ, left) > 0) {
        char b;
        ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return true;
        if (r > 0)
            break;      /* it sent more: its EOF, if any, hides behind that */
    }
    weft_sleep(end - weft_nanotime());      /* <= 0 after a timeout: at once */
    return false;
}

/* pprof.Profile: a CPU profile over ?seconds=N (default 30). */
static void servecpu(conn *c, const char *query)
{
    char v[32], eb[64];
    long sec = 30;
    if (weft__http_query(query, "seconds", v, sizeof v) && v[0] &&
        (!weft__http_atoi(v, &sec) || sec < 1 || sec > 3600)) {
        fail(c, 400, true, "invalid value for \"seconds\" - must be a positive integer");
        return;
    }
    int err = weft_cpuprofile_start(c->mfd, 100);
    if (err < 0) {
        fail(c, 500, true, "Could not enable CPU profiling: %s",
             err == -EBUSY ? "cpu profiling already in use" : errstr(err, eb, sizeof eb));
        return;
    }
    bool gone = sleepwatch(c->fd, sec * 1000000000LL);
    err = weft_cpuprofile_stop();
    if (gone)
        return;         /* nobody to answer */
    if (err < 0)
        fail(c, 500, true, "Could not write CPU profile: %s", errstr(err, eb, sizeof eb));
    else
        replyfile(c, OCTET, "Content-Disposition: attachment; filename=\"profile\"\r\n");
}

/* pprof.Trace: an execution trace over ?seconds=N (default 1; as Go, a
 * missing, bad or non-positive value means 1, and fractions are fine). */
static void servetrace(conn *c, const char *query)
{
    char v[32], eb[64];
    double sec = 1;
    if (weft__http_query(query, "seconds", v, sizeof v) && v[0]) {
        char *end;
        sec = strtod(v, &end);
        if (*end || !(sec > 0))
            sec = 1;
        if (sec > 3600)
            sec = 3600;     /* the memfd holds it all: bound it */
    }
    int err = weft_trace_start(c->mfd);
    if (err < 0) {
        fail(c, 500, true, "Could not enable tracing: %s",
             err == -EBUSY ? "tracing is already enabled" : errstr(err, eb, sizeof eb));
        return;
    }
    bool gone = sleepwatch(c->fd, (int64_t)(sec * 1e9));
    err = weft_trace_stop();
    if (gone)
        return;
    if (err < 0)
        fail(c, 500, true, "Could not write the trace: %s", errstr(err, eb, sizeof eb));
    else
        replyfile(c, OCTET, "Content-Disposition: attachment; filename=\"trace\"\r\n");
}

/* ---- one connection ------------------------------------------------------------------ */

/* One recv into b, parking until bytes, EOF or the deadline: bytes (> 0),
 * -ECONNRESET at EOF, -ETIMEDOUT or another -errno. */
static ssize_t readsome(int fd, char *b, size_t len, int64_t deadline)
{
    for (;;) {
        ssize_t r = recv(fd, b, len, MSG_DONTWAIT);
        if (r >= 0)
            return r > 0 ? r : -ECONNRESET;
        int e = errno;
        if (e != EINTR && e != EAGAIN && e != EWOULDBLOCK)
            return -e;
        int64_t left = deadline - weft_nanotime();
        int w = e == EINTR ? 0 : left <= 0 ? -ETIMEDOUT : weft_wait_fd(fd, WEFT_READ, left);
        if (w < 0)
            return w;
    }
}

/* Reads until the empty line that ends the request head and sets c->hlen:
 * 0, -EMSGSIZE (HDR_MAX bytes and no end) or readsome's error.  Each byte
 * is scanned once (from the start of the line it is in), so a client
 * sending one byte at a time costs no more than one sending them all. */
static int readhead(conn *c)
{
    int64_t deadline = weft_nanotime() + READ_TIMEOUT;
    size_t from = 0;    /* where the line not yet complete starts */
    for (;;) {
        size_t h = weft__http_headlen(c->buf + from, c->n - from);
        if (h) {
            c->hlen = from + h;
            c->buf[c->n] = 0;
            return 0;
        }
        const char *lf = memrchr(c->buf + from, '\n', c->n - from);
        if (lf)
            from = (size_t)(lf + 1 - c->buf);
        if (c->n == HDR_MAX)
            return -EMSGSIZE;
        ssize_t r = readsome(c->fd, c->buf + c->n, HDR_MAX - c->n, deadline);
        if (r < 0)
            return (int)r;
        c->n += (size_t)r;
    }
}

/* A POST body: what followed the head plus the rest of its Content-Length
 * (no header: empty), NUL-terminated in c->body.  0, or the status to
 * answer: 413 (> BODY_MAX), 500, or -1 (the client went silent or away:
 * no answer). */
static int readbody(conn *c)
{
    int64_t len = c->req.clen < 0 ? 0 : c->req.clen;
    if (len > BODY_MAX)
        return 413;
    char *b = c->body = malloc((size_t)len + 1);
    if (!b)
        return 500;
    size_t have = c->n - c->hlen < (size_t)len ? c->n - c->hlen : (size_t)len;
    memcpy(b, c->buf + c->hlen, have);
    int64_t deadline = weft_nanotime() + READ_TIMEOUT;
    while (have < (size_t)len) {
        ssize_t r = readsome(c->fd, b + have, (size_t)len - have, deadline);
        if (r < 0)
            return -1;
        have += (size_t)r;
    }
    b[len] = 0;
    return 0;
}

static void route(conn *c)
{
    static const char pp[] = "/debug/pprof/";
    const char *target = c->req.path, *query = c->req.query;
    char eb[64];
    bool symbol = strcmp(target, "/debug/pprof/symbol") == 0;
    bool post = c->req.method == WEFT__HTTP_POST;
    if (post && !symbol) {
        notallowed(c);
    } else if ((c->mfd = memfd_create("weft-debug", MFD_CLOEXEC)) < 0) {
        fail(c, 500, false, "Could not create a buffer: %s", errstr(-errno, eb, sizeof eb));
    } else if (symbol) {
        servesymbol(c, post ? c->body : query ? query : "");
    } else if (strcmp(target, pp) == 0) {
        serveindex(c);
    } else if (strcmp(target, "/debug/pprof") == 0) {
        reply(c, 301, HTML, "Location: /debug/pprof/\r\n", "", 0);
    } else if (strcmp(target, "/debug/pprof/profile") == 0) {
        servecpu(c, query);
    } else if (strcmp(target, "/debug/pprof/trace") == 0) {
        servetrace(c, query);
    } else if (strcmp(target, "/debug/pprof/goroutine") == 0 || strcmp(target, "/debug/pprof/threadcreate") == 0) {
        serveprofile(c, target + sizeof pp - 1, query);
    } else if (strncmp(target, pp, sizeof pp - 1) == 0) {
        fail(c, 404, true, "Unknown profile");
    } else if (strcmp(target, "/debug/sched") == 0) {
        weft_schedtrace(c->mfd, true);
        replyfile(c, TEXT, "");
    } else if (strcmp(target, "/debug/lockcycles") == 0) {
        servelockcycles(c);
    } else {
        fail(c, 404, false, "404 page not found");
    }
}

/* Half-closes, then reads what the client still sends (briefly, boundedly):
 * closing with unread bytes would reset the connection and could destroy
 * the response before the client has read it.  The client is waited on
 * again, so a full server may give this connection up. */
static void finish(conn *c)
{
    setwaiting(c, true);
    shutdown(c->fd, SHUT_WR);
    int64_t deadline = weft_nanotime() + LINGER_TIMEOUT;
    ssize_t r;
    for (size_t drained = 0; drained < (64u << 10); drained += (size_t)r)
        if ((r = readsome(c->fd, c->buf, HDR_MAX, deadline)) < 0)
            break;
}

/* Takes c off its server's list: from now on nobody else touches its fd. */
static void connunlink(conn *c)
{
    server *s = c->srv;
    weft__lock(&srvlock);
    *(c->prev ? &c->prev->next : &s->first) = c->next;
    *(c->next ? &c->next->prev : &s->last) = c->prev;
    s->nconns--;
    /* load: a hint (see giveup); set only under srvlock, which we hold */
    if (!AO_load(&c->cut))
        s->nactive--;
    weft__unlock(&srvlock);
}

/* Closes what c holds (with weft_close; with close(2) once the runtime's
 * poller is going away) and frees it. */
static void connrelease(conn *c, int (*closefd)(int))
{
    closefd(c->fd);
    if (c->mfd >= 0)
        closefd(c->mfd);
    free(c->body);
    free(c->scratch);
    free(c);
}

static void serveconn(void *arg)
{
    conn *c = arg;
    server *s = c->srv;
    int err = readhead(c);
    int status = err == 0 ? weft__http_parse(c->buf, c->hlen, &c->req) : err == -EMSGSIZE ? 431 : -1;
    if (status == 0 && c->req.method == WEFT__HTTP_POST && strcmp(c->req.path, "/debug/pprof/symbol") == 0)
        status = readbody(c);   /* (a POST elsewhere is 405, its body unread) */
    if (status >= 0)
        setwaiting(c, false);   /* the request is in: answering it */
    c->head = c->req.method == WEFT__HTTP_HEAD;
    /* A timeout or a vanished client gets no answer (as in Go), nor does a
     * connection given up or a stopped server's (cut is a hint: a send to
     * its shut-down socket would fail anyway). */
    /* load: a hint (see giveup); a cut socket fails the write anyway */
    bool answer = status >= 0 && !AO_load(&c->cut);
    if (answer && status == 0)
        route(c);
    else if (answer && status == 405)
        notallowed(c);
    else if (answer)
        fail(c, status, false, "%d %s", status, reason(status));
    finish(c);
    connunlink(c);
    connrelease(c, weft_close);
    weft_wg_done(&s->wg);
}

/* ---- the accept loop ------------------------------------------------------------------- */

/* Answers a connection the server cannot take without blocking, and closes
 * it. */
static void busy(int fd)
{
    static const char msg[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: " TEXT "\r\nContent-Length: 25\r\n"
        "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n503 too many connections\n";
    char junk[2048];
    (void)!send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(fd, SHUT_WR);
    (void)!recv(fd, junk, sizeof junk, MSG_DONTWAIT);   /* fewer resets */
    weft_close(fd);
}

/* Puts c on s's list if there is room, making room if every slot is taken
 * by giving up the oldest connection still waiting on its client.  Given-up
 * connections leave within moments, but a client could open them faster
 * than that: 2 * MAX_CONNS on the list at most.  False if there is no
 * room (every connection is busy answering).  srvlock. */
static bool admit(server *s, conn *c)
{
    if (s->nactive >= MAX_CONNS) {
        conn *old = s->first;
        /* c->cut loads: a hint (see giveup); the shutdown orders the I/O */
        while (old && (!old->waiting || AO_load(&old->cut)))
            old = old->next;
        if (!old || s->nconns >= 2 * MAX_CONNS)
            return false;
        giveup(s, old);
    }
    c->prev = s->last;
    *(s->last ? &s->last->next : &s->first) = c;
    s->last = c;
    s->nconns++;
    s->nactive++;
    return true;
}

static void acceptloop(void *arg)
{
    server *s = arg;
    weft_attr a = { .stack_size = STACK, .name = "weft_debug_serve conn" };
    int64_t backoff = 0;
    for (;;) {
        int lfd;
        weft__lock(&srvlock);
        lfd = s->stopping ? -1 : s->lfd;
        weft__unlock(&srvlock);
        int fd = lfd < 0 ? -EBADF : weft_accept(lfd, NULL, NULL);
        if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK)
            break;              /* the listener is shut down (weft_debug_stop) or gone */
        if (fd < 0) {
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, EPERM (a firewall)...: the
             * condition may pass; sleep as Go's Serve does. */
            backoff = backoff ? (backoff < 500000000 ? backoff * 2 : 1000000000) : 5000000;
            weft_sleep(backoff);
            continue;
        }
        backoff = 0;
        conn *c = malloc(sizeof *c);
        if (!c) {
            busy(fd);
            continue;
        }
        *c = (conn){ .srv = s, .fd = fd, .mfd = -1, .waiting = true };
        weft__lock(&srvlock);
        bool stopping = s->stopping, in = !stopping && admit(s, c);
        weft__unlock(&srvlock);
        if (!in) {
            free(c);
            if (stopping) {
                weft_close(fd);
                break;
            }
            busy(fd);
            continue;
        }
        weft_wg_add(&s->wg, 1);
        if (weft_go_attr(&a, serveconn, c) < 0) {
            connunlink(c);
            free(c);
            busy(fd);
            weft_wg_done(&s->wg);
        }
    }
    weft__lock(&srvlock);
    int lfd = s->lfd;
    s->lfd = -1;
    weft__unlock(&srvlock);
    if (lfd >= 0)
        weft_close(lfd);
    weft_wg_done(&s->wg);
}

/* ---- weft_debug_serve, weft_debug_stop -------------------------------------------------- */

/* "host:port": "" and "localhost" are 127.0.0.1, "[v6]" an IPv6 literal,
 * else a dotted IPv4 address; port 0..65535.  0 or -EINVAL. */
static int parseaddr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char host[INET6_ADDRSTRLEN + 2];
    size_t hl = colon ? (size_t)(colon - addr) : 0, pl = colon ? strlen(colon + 1) : 0;
    if (!colon || pl == 0 || pl > 5 || strspn(colon + 1, "0123456789") != pl ||
        atol(colon + 1) > 65535 || hl >= sizeof host)
        return -EINVAL;
    uint16_t port = htons((uint16_t)atol(colon + 1));
    snprintf(host, sizeof host, "%.*s", (int)hl, addr);
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -EINVAL;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = port;
        *len = sizeof *s6;
        return 0;
    }
    if (hl == 0 || strcmp(host, "localhost") == 0)
        s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -EINVAL;
    s4->sin_family = AF_INET;
    s4->sin_port = port;
    *len = sizeof *s4;
    return 0;
}

int weft_debug_serve(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int err = parseaddr(addr, &ss, &sl), one = 1, fd = -1;
    server *s = err ? NULL : calloc(1, sizeof *s);
    if (err || !s) {
        err = err ? err : -ENOMEM;
        goto fail;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        err = -errno;
        goto fail;
    }
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->lfd = fd;
    int port = s->port;
    weft_wg_add(&s->wg, 1);
    weft_attr a = { .stack_size = STACK, .name = "weft_debug_serve" };
    int64_t g = weft_go_attr(&a, acceptloop, s);
    if (g >= 0) {
        /* On the list once its accept loop exists, so that
         * weft_debug_stop never waits for one that was not started. */
        weft__lock(&srvlock);
        s->next = servers;
        servers = s;
        weft__unlock(&srvlock);
        return port;
    }
    err = (int)g;
fail:
    if (fd >= 0)
        close(fd);
    free(s);
    return err;
}

int weft_debug_stop(int port)
{
    if (port <= 0 || port > 65535)
        return -EINVAL;
    weft__lock(&srvlock);
    server *s = servers;
    while (s && (s->port != port || s->stopping))
        s = s->next;
    if (s) {
        s->stopping = true;
        /* A listening socket shut down fails its accept (EINVAL, waking
         * the accept loop through the netpoller) and refuses new clients;
         * the accept loop closes it. */
        if (s->lfd >= 0)
            shutdown(s->lfd, SHUT_RDWR);
        for (conn *c = s->first; c; c = c->next)
            giveup(s, c);
    }
    weft__unlock(&srvlock);
    if (!s)
        return -ENOENT;
    weft_wg_wait(&s->wg);
    weft__lock(&srvlock);
    for (server **pp = &servers; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    weft__unlock(&srvlock);
    free(s);
    return 0;
}

void weft__debugserver_shutdown(bool release)
{
    weft__lock(&srvlock);
    server *list = servers;
    if (release)
        servers = NULL;
    for (server *s = list; s; s = s->next) {
        if (s->lfd >= 0)
            close(s->lfd);
        s->lfd = -1;
        for (conn *c = release ? s->first : NULL, *next; c; c = next) {
            next = c->next;
            connrelease(c, close);
        }
    }
    weft__unlock(&srvlock);
    while (release && list) {
        server *next = list->next;
        free(list);
        list = next;
    }
}
