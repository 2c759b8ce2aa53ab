/*
 * print.h — the runtime's one formatted-output path, async-signal-safe
 * (no malloc, no locks, no stdio), for crash paths, dumps and profiles.
 *
 * A weft__out writes either to a file descriptor (staged in a small buffer,
 * flushed when full and at weft__out_flush) or into caller memory, where
 * output that does not fit is dropped and counted, like Go's gwrite behind
 * runtime.Stack.
 */
#ifndef WEFT_PRINT_H
#define WEFT_PRINT_H

#include <stdarg.h>
#include <stddef.h>

typedef struct weft__out {
    int fd;                 /* >= 0: flush to fd; -1: memory target */
    char *buf;              /* stage (fd) or the caller's memory */
    size_t cap, n;          /* size of buf, bytes in it */
    size_t dropped;         /* memory target: bytes that did not fit */
    int err;                /* fd target: -errno of the first failed write, else 0 */
    char stage[1024];
} weft__out;

void weft__out_fd(weft__out *o, int fd);
void weft__out_mem(weft__out *o, char *buf, size_t cap);
void weft__out_flush(weft__out *o);
void weft__out_write(weft__out *o, const char *s, size_t n);
/* %s %c %d %u %x with l/ll/z, %p, %%; no widths. */
void weft__outf(weft__out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One formatted write to fd (the same conversions), e.g. the runtime's
 * warnings and "fatal error:" lines.  (runtime.h declares it too, for the
 * core.) */
void weft__printf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
