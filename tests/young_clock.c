/*
 * young_clock.c — runs a program as on a machine that booted SECONDS ago:
 * in a new time namespace (Linux 5.6+) whose CLOCK_MONOTONIC and
 * CLOCK_BOOTTIME read SECONDS when the program starts.
 *
 *   young_clock SECONDS PROGRAM [ARGS...]
 *
 * weft's clocks count from boot, and a fresh CI machine has been up for
 * seconds: nothing may assume the monotonic clock is large (a wait three
 * minutes ago, a period's worth of time since zero).  ctest runs the
 * clock-sensitive test binaries through this, and it serves by hand too:
 *
 *   build/tests/young_clock 2 build/tests/test_traceback --jobs 1
 *
 * Exits with PROGRAM's status (128 + signal if it was killed), or 77,
 * ctest's SKIP_RETURN_CODE, with one line saying why when time namespaces
 * are unavailable: not root (creating one needs CAP_SYS_ADMIN), a kernel
 * without CONFIG_TIME_NS, or a sandbox that forbids unshare.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define SKIP 77
#define NS_PER_S 1000000000LL

static int64_t now(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* One line of /proc/self/timens_offsets: the clock moves by off ns, written
 * as seconds and a non-negative nanosecond part, as the kernel wants. */
static int offsetline(char *buf, size_t len, clockid_t clock, int64_t off)
{
    int64_t sec = off / NS_PER_S, nsec = off % NS_PER_S;
    if (nsec < 0) {
        sec--;
        nsec += NS_PER_S;
    }
    return snprintf(buf, len, "%d %lld %lld\n", (int)clock, (long long)sec, (long long)nsec);
}

/* The offset of clock in the time namespace we are in, from the host's
 * clock: a new namespace's offsets are from the host's too, so when this
 * runs inside one (a whole ctest run under unshare -T), its own offset
 * is added in.  The file lists "monotonic SECS NSECS" and "boottime ...". */
static int64_t curoffset(clockid_t clock)
{
    FILE *f = fopen("/proc/self/timens_offsets", "r");
    if (!f)
        return 0;       /* no time namespaces at all: unshare will say so */
    char name[32];
    long long sec, nsec;
    int64_t off = 0;
    while (fscanf(f, "%31s %lld %lld", name, &sec, &nsec) == 3)
        if ((clock == CLOCK_MONOTONIC && strcmp(name, "monotonic") == 0) ||
            (clock == CLOCK_BOOTTIME && strcmp(name, "boottime") == 0))
            off = sec * NS_PER_S + nsec;
    fclose(f);
    return off;
}

int main(int argc, char **argv)
{
    char *end;
    long secs = argc >= 3 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 3 || *end || secs < 1 || secs > 3600) {
        fprintf(stderr, "usage: young_clock SECONDS(1..3600) PROGRAM [ARGS...]\n");
        return 2;
    }
    int64_t monooff = curoffset(CLOCK_MONOTONIC), bootoff = curoffset(CLOCK_BOOTTIME);
    if (unshare(CLONE_NEWTIME) != 0) {
        int e = errno;
        printf("young_clock: skipped, no time namespace (unshare(CLONE_NEWTIME): %s): %s\n",
               strerror(e), e == EPERM ? "it needs root (CAP_SYS_ADMIN)"
                          : e == EINVAL ? "the kernel lacks CONFIG_TIME_NS (Linux 5.6+)"
                                        : "refused here");
        return SKIP;
    }
    /* Our children enter the namespace; its offsets must be set before the
     * first one does.  Both clocks read `secs` at that moment (boottime is
     * monotonic plus time suspended, so each gets its own offset). */
    int64_t young = secs * NS_PER_S;
    char offs[128];
    int n = offsetline(offs, sizeof offs, CLOCK_MONOTONIC, monooff + young - now(CLOCK_MONOTONIC));
    n += offsetline(offs + n, sizeof offs - (size_t)n, CLOCK_BOOTTIME, bootoff + young - now(CLOCK_BOOTTIME));
    int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
    if (fd < 0 || write(fd, offs, (size_t)n) != n) {
        int e = errno;
        if (e == EPERM || e == EACCES) {
            printf("young_clock: skipped, cannot set the clock offsets: %s\n", strerror(e));
            return SKIP;
        }
        fprintf(stderr, "young_clock: writing \"%s\" to /proc/self/timens_offsets: %s\n", offs, strerror(e));
        return 1;
    }
    close(fd);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("young_clock: fork");
        return 1;
    }
    if (pid == 0) {
        int64_t mono = now(CLOCK_MONOTONIC);
        if (mono > young + 60 * NS_PER_S) {
            fprintf(stderr, "young_clock: CLOCK_MONOTONIC still reads %.3f s in the namespace\n",
                    (double)mono / NS_PER_S);
            _exit(1);
        }
        printf("young_clock: CLOCK_MONOTONIC reads %.3f s: %s\n", (double)mono / NS_PER_S, argv[2]);
        fflush(stdout);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "young_clock: %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            perror("young_clock: waitpid");
            return 1;
        }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}
