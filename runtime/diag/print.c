/*
 * print.c — async-signal-safe formatted output (print.h).  Everything here
 * may run inside a signal handler that interrupted malloc or a lock holder:
 * it touches only the caller's weft__out and write(2).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "nosigpipe.h"
#include "print.h"

void weft__out_fd(weft__out *o, int fd)
{
    o->fd = fd;
    o->buf = o->stage;
    o->cap = sizeof o->stage;
    o->n = 0;
    o->dropped = 0;
    o->err = 0;
}

void weft__out_mem(weft__out *o, char *buf, size_t cap)
{
    o->fd = -1;
    o->buf = buf;
    o->cap = cap;
    o->n = 0;
    o->dropped = 0;
    o->err = 0;
}

void weft__out_flush(weft__out *o)
{
    if (o->fd < 0)
        return;
    size_t off = 0;
    while (off < o->n) {
        ssize_t w = weft__write_nosigpipe(o->fd, o->buf + off, o->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (!o->err)
                o->err = w < 0 ? -errno : -EIO;
            break;
        }
        off += (size_t)w;
    }
    o->n = 0;
}

void weft__out_write(weft__out *o, const char *s, size_t n)
{
    while (n > 0) {
        if (o->n == o->cap) {
            if (o->fd < 0) {
                o->dropped += n;
                return;
            }
            weft__out_flush(o);
        }
        size_t k = o->cap - o->n < n ? o->cap - o->n : n;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        n -= k;
    }
}

static void putch(weft__out *o, char c) { weft__out_write(o, &c, 1); }

static void putstr(weft__out *o, const char *s)
{
    if (!s)
        s = "(null)";
    weft__out_write(o, s, strlen(s));
}

static void putu(weft__out *o, unsigned long long v, unsigned base)
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

static void voutf(weft__out *o, const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            const char *q = strchr(p, '%');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            weft__out_write(o, p, n);
            p += n - 1;
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

void weft__outf(weft__out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    voutf(o, fmt, ap);
    va_end(ap);
}

void weft__printf(int fd, const char *fmt, ...)
{
    weft__out o;
    weft__out_fd(&o, fd);
    va_list ap;
    va_start(ap, fmt);
    voutf(&o, fmt, ap);
    va_end(ap);
    weft__out_flush(&o);
}
