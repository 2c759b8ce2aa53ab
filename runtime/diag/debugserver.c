/*
 * debugserver.c — Go's net/http/pprof, served from goroutines
 * (weft_debug_serve).
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
 * (?seconds=N, CPU), symbol (GET query or POST body: go tool pprof asks it
 * for addresses its profile left without a function, and fails the whole
 * fetch if it is missing), and weft's own /debug/sched (a detailed
 * scheduler dump).  Bodies are written into a memfd
 * first (the profile writers use plain write(2), which a non-blocking
 * socket would cut short) and then sent with a Content-Length, so a slow
 * client never holds up a profile writer and a failed one can still get a
 * 500.
 *
 * Robustness, because this runs inside someone else's program:
 *   - loopback unless the caller names another address: "" and "localhost"
 *     are 127.0.0.1, and no name is resolved (that would block a thread);
 *   - the request head is bounded (HDR_MAX, else 431) and must arrive within
 *     READ_TIMEOUT, so a silent client cannot pin a goroutine forever;
 *   - at most MAX_CONNS connections are served at once; the accept loop
 *     answers the next ones 503 itself, without blocking;
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
 * Limits: a server lives as long as the runtime (there is no stop call).
 * Go's delta profiles (?seconds= on goroutine or threadcreate) are ignored;
 * heap, allocs, block, mutex, cmdline and trace are 404 "Unknown profile".
 */
#include <arpa/inet.h>
#include <atomic_ops.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"
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

typedef struct server {
    int lfd;                /* the listening socket; the accept loop's */
    AO_t nconns;            /* atomic: connection goroutines alive */
} server;

typedef struct conn {
    server *srv;            /* immutable */
    int fd;                 /* the connection; its goroutine's */
    int mfd;                /* memfd the response body is built in, or -1 */
    bool head, post;        /* HEAD (send no body) / POST (symbol only) */
    size_t n;               /* bytes in buf */
    size_t hlen;            /* of which the request head */
    char *hdrs;             /* in buf: the header lines after the request line */
    char buf[HDR_MAX + 1];  /* the request head (+ NUL), later drain scratch */
} conn;

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
    char *b = len >= 0 ? malloc(CHUNK) : NULL;
    if (!b) {
        fail(c, 500, false, "Could not read back the response");
        return;
    }
    ssize_t r;
    if (reply(c, 200, ctype, extra, NULL, (size_t)len) == 0 && !c->head)
        for (off_t off = 0; off < len && (r = pread(c->mfd, b, CHUNK, off)) > 0; off += r)
            if (sendall(c->fd, b, (size_t)r) < 0)
                break;
    free(b);
}

/* ---- queries ---------------------------------------------------------------------- */

/* Copies the first value of key in query ("a=1&b=2") into v; false if the
 * key is absent.  A value too long for v becomes "?" (never a number). */
static bool qget(const char *query, const char *key, char *v, size_t vlen)
{
    size_t kl = strlen(key);
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t l = amp ? (size_t)(amp - p) : strlen(p);
        if (l >= kl && memcmp(p, key, kl) == 0 && (l == kl || p[kl] == '=')) {
            size_t vl = l > kl ? l - kl - 1 : 0;
            snprintf(v, vlen, "%.*s", vl < vlen ? (int)vl : 1, vl < vlen ? p + kl + 1 : "?");
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    return false;
}

/* strconv.Atoi: an optional sign and decimal digits, nothing else. */
static bool atoint(const char *s, long *out)
{
    bool neg = *s == '-';
    s += *s == '-' || *s == '+';
    if (!*s)
        return false;
    long v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 100000000L)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = neg ? -v : v;
    return true;
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
        "</table>\n<a href=\"goroutine?debug=2\">full goroutine stack dump</a>\n<br>\n"
        "<a href=\"/debug/sched\">scheduler dump</a>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n"
        "<li><div class=profile-name>goroutine: </div> Stack traces of all current goroutines. "
        "Use debug=2 as a query parameter to export in the same format as an unrecovered panic.</li>\n"
        "<li><div class=profile-name>profile: </div> CPU profile. You can specify the duration in "
        "the seconds GET parameter. After you get the profile file, use the go tool pprof command "
        "to investigate the profile.</li>\n<li><div class=profile-name>threadcreate: </div> Stack "
        "traces that led to the creation of new OS threads.</li>\n</ul>\n</p>\n</body>\n</html>\n",
        weft_num_goroutine(), nt < 0 ? 0 : nt);
    replyfile(c, HTML, "");
}

/* pprof.Handler(name) for goroutine and threadcreate, ?debug=N. */
static void serveprofile(conn *c, const char *name, const char *query)
{
    char v[32], eb[64], disp[96];
    long debug = 0;
    if (qget(query, "debug", v, sizeof v) && (!atoint(v, &debug) || debug < 0))
        debug = 0;      /* Go ignores strconv.Atoi's error */
    int err = weft_profile_write(name, c->mfd, debug > 1000 ? 1000 : (int)debug);
    snprintf(disp, sizeof disp, "Content-Disposition: attachment; filename=\"%s\"\r\n", name);
    if (err < 0)
        fail(c, 500, true, "Could not write %s profile: %s", name, errstr(err, eb, sizeof eb));
    else
        replyfile(c, debug ? TEXT : OCTET, debug ? "" : disp);
}

/* pprof.Symbol: "num_symbols: 1", then "0xpc name" for each pc of the
 * '+'-separated list that lies in a known function (others are left out). */
static void servesymbol(conn *c, const char *in)
{
    dprintf(c->mfd, "num_symbols: 1\n");
    for (const char *p = in; p && *p;) {
        const char *plus = strchr(p, '+');
        size_t l = plus ? (size_t)(plus - p) : strlen(p);
        char w[32], *end;
        weft__sym sym;
        if (l > 0 && l < sizeof w) {
            memcpy(w, p, l);
            w[l] = 0;
            unsigned long long pc = strtoull(w, &end, 0);   /* Go: ParseUint(word, 0, 64) */
            if (*end == 0 && pc != 0 && weft__symbolize((uintptr_t)pc, &sym) && sym.func)
                dprintf(c->mfd, "%#llx %s\n", pc, sym.func);
        }
        p = plus ? plus + 1 : NULL;
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
    if (qget(query, "seconds", v, sizeof v) && v[0] && (!atoint(v, &sec) || sec < 1 || sec > 3600)) {
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

/* Reads until the blank line that ends the request head and sets c->hlen:
 * 0, -EMSGSIZE (HDR_MAX bytes and no end) or readsome's error. */
static int readhead(conn *c)
{
    int64_t deadline = weft_nanotime() + READ_TIMEOUT;
    for (;;) {
        char *crlf = memmem(c->buf, c->n, "\r\n\r\n", 4), *lf = memmem(c->buf, c->n, "\n\n", 2);
        if (crlf || lf) {
            c->hlen = crlf ? (size_t)(crlf + 4 - c->buf) : (size_t)(lf + 2 - c->buf);
            c->buf[c->n] = 0;
            return 0;
        }
        if (c->n == HDR_MAX)
            return -EMSGSIZE;
        ssize_t r = readsome(c->fd, c->buf + c->n, HDR_MAX - c->n, deadline);
        if (r < 0)
            return (int)r;
        c->n += (size_t)r;
    }
}

/* Splits "METHOD SP target SP HTTP/1.x" in place and points c->hdrs past
 * it: 0, or the status to answer (400 malformed, 405 a method other than
 * GET, HEAD and POST). */
static int parseline(conn *c, char **target)
{
    char *eol = memchr(c->buf, '\n', c->n);     /* readhead found one */
    c->hdrs = eol + 1;
    eol -= eol > c->buf && eol[-1] == '\r';
    *eol = 0;
    char *line = c->buf;
    if (strlen(line) != (size_t)(eol - line))
        return 400;                             /* a NUL inside */
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return 400;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp2 || sp1 == line || strchr(sp2 + 1, ' ') || sp1[1] != '/')
        return 400;
    *sp1 = *sp2 = 0;
    const char *v = sp2 + 1;
    if (strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(line) || strncmp(v, "HTTP/1.", 7) != 0 ||
        v[7] < '0' || v[7] > '9' || v[8])
        return 400;
    c->head = strcmp(line, "HEAD") == 0;
    c->post = strcmp(line, "POST") == 0;
    *target = sp1 + 1;
    return c->head || c->post || strcmp(line, "GET") == 0 ? 0 : 405;
}

/* A POST body: what followed the head plus the rest of its Content-Length
 * (no header: empty), NUL-terminated in a new buffer.  NULL with *status
 * 400 (bad length), 413 (> BODY_MAX), 500, or 0 (the client went silent). */
static char *readbody(conn *c, int *status)
{
    long len = 0;
    for (const char *p = c->hdrs; p && p < c->buf + c->hlen; p = strchr(p, '\n')) {
        p += strspn(p, "\r\n");
        if (p >= c->buf + c->hlen)
            break;
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            char v[24];
            p += 15 + strspn(p + 15, " \t");
            size_t d = strspn(p, "0123456789");
            snprintf(v, sizeof v, "%.*s", (int)(d < sizeof v ? d : 0), p);
            len = !strchr("\r\n \t", p[d]) || !atoint(v, &len) ? -1 : len;
            break;
        }
    }
    *status = len < 0 ? 400 : len > BODY_MAX ? 413 : 500;
    char *b = len >= 0 && len <= BODY_MAX ? malloc((size_t)len + 1) : NULL;
    if (!b)
        return NULL;
    size_t have = c->n - c->hlen < (size_t)len ? c->n - c->hlen : (size_t)len;
    memcpy(b, c->buf + c->hlen, have);
    int64_t deadline = weft_nanotime() + READ_TIMEOUT;
    while (have < (size_t)len) {
        ssize_t r = readsome(c->fd, b + have, (size_t)len - have, deadline);
        if (r < 0) {
            free(b);
            *status = 0;
            return NULL;
        }
        have += (size_t)r;
    }
    b[len] = 0;
    return b;
}

static void route(conn *c, char *target)
{
    static const char pp[] = "/debug/pprof/";
    char *query = strchr(target, '?'), eb[64];
    if (query)
        *query++ = 0;
    bool symbol = strcmp(target, "/debug/pprof/symbol") == 0;
    if (c->post && !symbol) {
        notallowed(c);
    } else if ((c->mfd = memfd_create("weft-debug", MFD_CLOEXEC)) < 0) {
        fail(c, 500, false, "Could not create a buffer: %s", errstr(-errno, eb, sizeof eb));
    } else if (symbol) {
        int status = 0;
        char *body = c->post ? readbody(c, &status) : NULL;
        if (body || !c->post)
            servesymbol(c, body ? body : query ? query : "");
        else if (status)
            fail(c, status, false, "%d %s", status, reason(status));
        free(body);
    } else if (strcmp(target, pp) == 0) {
        serveindex(c);
    } else if (strcmp(target, "/debug/pprof") == 0) {
        reply(c, 301, HTML, "Location: /debug/pprof/\r\n", "", 0);
    } else if (strcmp(target, "/debug/pprof/profile") == 0) {
        servecpu(c, query);
    } else if (strcmp(target, "/debug/pprof/goroutine") == 0 || strcmp(target, "/debug/pprof/threadcreate") == 0) {
        serveprofile(c, target + sizeof pp - 1, query);
    } else if (strncmp(target, pp, sizeof pp - 1) == 0) {
        fail(c, 404, true, "Unknown profile");
    } else if (strcmp(target, "/debug/sched") == 0) {
        weft_schedtrace(c->mfd, true);
        replyfile(c, TEXT, "");
    } else {
        fail(c, 404, false, "404 page not found");
    }
}

/* Half-closes, then reads what the client still sends (briefly, boundedly):
 * closing with unread bytes would reset the connection and could destroy
 * the response before the client has read it. */
static void finish(conn *c)
{
    shutdown(c->fd, SHUT_WR);
    int64_t deadline = weft_nanotime() + LINGER_TIMEOUT;
    ssize_t r;
    for (size_t drained = 0; drained < (64u << 10); drained += (size_t)r)
        if ((r = readsome(c->fd, c->buf, HDR_MAX, deadline)) < 0)
            break;
    weft_close(c->fd);
    if (c->mfd >= 0)
        weft_close(c->mfd);
}

static void serveconn(void *arg)
{
    conn *c = arg;
    char *target = NULL;
    int err = readhead(c);
    int status = err == 0 ? parseline(c, &target) : err == -EMSGSIZE ? 431 : 0;
    if (status == 0 && target)
        route(c, target);
    else if (status == 405)
        notallowed(c);
    else if (status != 0)
        fail(c, status, false, "%d %s", status, reason(status));
    /* (A timeout or a vanished client gets no answer, as in Go.) */
    finish(c);
    server *s = c->srv;
    free(c);
    /* fetch_and_sub_release: our fds are closed before the accept loop's
     * fetch_and_add_full sees the slot free */
    AO_fetch_and_sub1_release(&s->nconns);
}

/* ---- the accept loop ------------------------------------------------------------------- */

/* Answers a connection beyond MAX_CONNS without blocking, and closes it. */
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

static void acceptloop(void *arg)
{
    server *s = arg;
    weft_attr a = { STACK, "weft_debug_serve conn" };
    int64_t backoff = 0;
    for (;;) {
        int fd = weft_accept(s->lfd, NULL, NULL);
        if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK)
            break;              /* the listener is gone */
        if (fd < 0) {
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, EPERM (a firewall)...: the
             * condition may pass; sleep as Go's Serve does. */
            backoff = backoff ? (backoff < 500000000 ? backoff * 2 : 1000000000) : 5000000;
            weft_sleep(backoff);
            continue;
        }
        backoff = 0;
        /* fetch_and_add_full: pairs with each goroutine's release decrement */
        if (AO_fetch_and_add1_full(&s->nconns) >= MAX_CONNS) {
            AO_fetch_and_sub1(&s->nconns);
            busy(fd);
            continue;
        }
        conn *c = malloc(sizeof *c);
        if (c)
            *c = (conn){ .srv = s, .fd = fd, .mfd = -1 };
        if (!c || weft_go_attr(&a, serveconn, c) < 0) {
            free(c);
            AO_fetch_and_sub1(&s->nconns);
            busy(fd);
        }
    }
    weft_close(s->lfd);
}

/* ---- weft_debug_serve -------------------------------------------------------------------- */

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
    int port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    s->lfd = fd;
    weft_attr a = { STACK, "weft_debug_serve" };
    int64_t g = weft_go_attr(&a, acceptloop, s);
    if (g >= 0)
        return port;
    err = (int)g;
fail:
    if (fd >= 0)
        close(fd);
    free(s);
    return err;
}
