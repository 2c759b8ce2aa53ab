/*
 * testutil.h — running a helper program in a child process and capturing
 * its output, for death tests (overflow, deadlock, panics).
 */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PROG_DIR
#error PROG_DIR must name the directory of the helper programs
#endif

/* Runs PROG_DIR/name arg, capturing stdout and stderr; returns the wait
 * status. */
static inline int run_prog(const char *name, const char *arg, char *out, size_t outlen,
                           char *err, size_t errlen)
{
    int po[2], pe[2];
    cr_assert_eq(pipe(po), 0);
    cr_assert_eq(pipe(pe), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        char path[512];
        snprintf(path, sizeof path, "%s/%s", PROG_DIR, name);
        execl(path, name, arg, (char *)NULL);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    /* Drain both pipes together: a child that fills one while we block on
     * the other would deadlock. */
    size_t no = 0, ne = 0;
    struct pollfd fds[2] = { { .fd = po[0], .events = POLLIN }, { .fd = pe[0], .events = POLLIN } };
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *buf = i == 0 ? out : err;
            size_t *n = i == 0 ? &no : &ne;
            size_t cap = i == 0 ? outlen : errlen;
            char scratch[4096];
            ssize_t r = *n < cap - 1 ? read(fds[i].fd, buf + *n, cap - 1 - *n)
                                     : read(fds[i].fd, scratch, sizeof scratch);
            if (r <= 0) {
                fds[i].fd = -1;
                open_fds--;
            } else if (*n < cap - 1) {
                *n += (size_t)r;
            }
        }
    }
    out[no] = 0;
    err[ne] = 0;
    close(po[0]);
    close(pe[0]);
    int st;
    waitpid(pid, &st, 0);
    return st;
}

/* Runs f(fd, arg) with fd the write end of a pipe and returns what it
 * wrote, NUL-terminated in buf (at most len - 1 bytes: the pipe must hold
 * it all, 64 KiB on Linux, since nobody reads while f runs). */
static inline const char *pipe_capture(void (*f)(int fd, void *arg), void *arg, char *buf, size_t len)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    f(p[1], arg);
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n < len - 1 && (r = read(p[0], buf + n, len - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(p[0]);
    return buf;
}

#endif
