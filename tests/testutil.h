/*
 * testutil.h — running a helper program in a child process and capturing
 * its output, for death tests (overflow, deadlock, panics).
 */
#ifndef WEFT_TESTUTIL_H
#define WEFT_TESTUTIL_H

#include <criterion/criterion.h>
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
    size_t no = 0, ne = 0;
    ssize_t r;
    while ((r = read(po[0], out + no, outlen - 1 - no)) > 0)
        no += (size_t)r;
    while ((r = read(pe[0], err + ne, errlen - 1 - ne)) > 0)
        ne += (size_t)r;
    out[no] = 0;
    err[ne] = 0;
    close(po[0]);
    close(pe[0]);
    int st;
    waitpid(pid, &st, 0);
    return st;
}

#endif
