/*
 * target_blocked — one thread blocked in read(2) on its stdin (a pipe the
 * test holds), inside block_in_read.  When a byte arrives it prints
 * "read returned N" and exits 0: the read must survive being interrupted
 * by weftprof's stops (the kernel restarts it).
 */
#include <stdio.h>
#include <unistd.h>

/* Not inlined, not cloned (gcc's noclone; clang does not clone here). */
#if defined(__clang__)
#define NOINLINE_NOCLONE __attribute__((noinline))
#else
#define NOINLINE_NOCLONE __attribute__((noinline, noclone))
#endif

NOINLINE_NOCLONE static long block_in_read(int fd)
{
    char c;
    long n = read(fd, &c, 1);
    __asm__ volatile("" ::: "memory");  /* keep the call a call, not a tail jump */
    return n;
}

int main(void)
{
    printf("ready\n");
    fflush(stdout);
    long n = block_in_read(0);
    printf("read returned %ld\n", n);
    fflush(stdout);
    return n == 1 ? 0 : 1;
}
