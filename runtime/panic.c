/*
 * panic.c — fatal errors: weft__throw (a runtime bug), weft__fatal (a user
 * error Go treats as fatal), weft_panic (misuse Go panics on), and an
 * async-signal-safe printf for all of them.
 *
 * The goroutine tracebacks printed here are minimal (return addresses,
 * symbolized with dladdr); the full Go-format traceback lives with the
 * SCHEDDEBUG/traceback work.
 */

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"

extern int weft__callers(int skip, uintptr_t *pcs, int max);

/* ---- async-signal-safe formatting ------------------------------------------- */

typedef struct {
    char buf[1024];
    size_t n;
    int fd;
} outbuf;

static void flush(outbuf *o)
{
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = write(o->fd, o->buf + off, o->n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    o->n = 0;
}

static void putch(outbuf *o, char c)
{
    if (o->n == sizeof o->buf)
        flush(o);
    o->buf[o->n++] = c;
}

static void putstr(outbuf *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        putch(o, *s++);
}

static void putu(outbuf *o, unsigned long long v, unsigned base)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i)
        putch(o, tmp[--i]);
}

static void vformat(outbuf *o, const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            putch(o, *p);
            continue;
        }
        p++;
        int longs = 0;
        while (*p == 'l') {
            longs++;
            p++;
        }
        if (*p == 'z') {
            longs = 1;
            p++;
        }
        switch (*p) {
        case 's': putstr(o, va_arg(ap, const char *)); break;
        case 'c': putch(o, (char)va_arg(ap, int)); break;
        case '%': putch(o, '%'); break;
        case 'p':
            putstr(o, "0x");
            putu(o, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case 'd': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            if (v < 0) {
                putch(o, '-');
                putu(o, (unsigned long long)(-(v + 1)) + 1, 10);
            } else {
                putu(o, (unsigned long long)v, 10);
            }
            break;
        }
        case 'u':
        case 'x': {
            unsigned long long v = longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            putu(o, v, *p == 'x' ? 16 : 10);
            break;
        }
        default:
            putch(o, '%');
            if (*p)
                putch(o, *p);
            else
                p--;
        }
    }
}

void weft__printf(int fd, const char *fmt, ...)
{
    outbuf o = { .n = 0, .fd = fd };
    va_list ap;
    va_start(ap, fmt);
    vformat(&o, fmt, ap);
    va_end(ap);
    flush(&o);
}

void weft__print_createdby(G *gp);

/* ---- tracebacks (minimal) ----------------------------------------------------- */

static void print_goroutine_header(G *gp)
{
    if (gp && !gp->issystem)
        weft__printf(2, "\ngoroutine %lld [running]:\n", (long long)gp->goid);
    else
        weft__printf(2, "\nruntime stack:\n");
}

static void print_frames(int skip)
{
    uintptr_t pcs[32];
    int n = weft__callers(skip, pcs, 32);
    for (int i = 0; i < n; i++) {
        Dl_info info;
        uintptr_t pc = pcs[i] - 1;
        if (dladdr((void *)pc, &info) && info.dli_sname)
            weft__printf(2, "%s(...)\n\t%s +0x%lx\n", info.dli_sname,
                         info.dli_fname ? info.dli_fname : "?",
                         (unsigned long)(pcs[i] - (uintptr_t)info.dli_saddr));
        else
            weft__printf(2, "?\n\tpc=%p\n", (void *)pcs[i]);
    }
    G *gp = weft__getg();
    if (gp && !gp->issystem)
        weft__print_createdby(gp);
}

/* Go's "created by F in goroutine N" line (nothing for goroutine 1). */
void weft__print_createdby(G *gp)
{
    if (gp->ismain || !gp->gopc)
        return;
    Dl_info info;
    const char *name = "?";
    if (dladdr((void *)(gp->gopc - 1), &info) && info.dli_sname)
        name = info.dli_sname;
    if (gp->parentgoid)
        weft__printf(2, "created by %s in goroutine %lld\n", name, (long long)gp->parentgoid);
    else
        weft__printf(2, "created by %s\n", name);
}

static __attribute__((noreturn)) void die(const char *prefix, const char *msg, int skip)
{
    G *gp = weft__getg();
    weft__printf(2, "%s%s\n", prefix, msg);
    print_goroutine_header(gp);
    print_frames(skip);
    _exit(2);
}

void weft__throw(const char *msg)
{
    die("fatal error: ", msg, 2);
}

void weft__fatal(const char *msg)
{
    die("fatal error: ", msg, 2);
}

void weft_panic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die("panic: ", msg, 2);
}

const char *weft__waitreason_str(int r)
{
    static const char *const names[waitReasonCount] = {
        [waitReasonZero] = "",
        [waitReasonIOWait] = "IO wait",
        [waitReasonSemacquire] = "semacquire",
        [waitReasonSleep] = "sleep",
        [waitReasonChanReceiveNilChan] = "chan receive (nil chan)",
        [waitReasonChanSendNilChan] = "chan send (nil chan)",
        [waitReasonSelectNoCases] = "select (no cases)",
        [waitReasonSelect] = "select",
        [waitReasonChanReceive] = "chan receive",
        [waitReasonChanSend] = "chan send",
        [waitReasonSyncCondWait] = "sync.Cond.Wait",
        [waitReasonSyncMutexLock] = "sync.Mutex.Lock",
        [waitReasonSyncRWMutexRLock] = "sync.RWMutex.RLock",
        [waitReasonSyncRWMutexLock] = "sync.RWMutex.Lock",
        [waitReasonSyncWaitGroupWait] = "sync.WaitGroup.Wait",
        [waitReasonPreempted] = "preempted",
        [waitReasonStoppingTheWorld] = "stopping the world",
        [waitReasonLockedThread] = "locked thread",
    };
    if (r < 0 || r >= waitReasonCount)
        return "unknown wait reason";
    return names[r];
}
