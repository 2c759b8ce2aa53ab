/*
 * nofp_user.c — "user code" for test_nofp.c, compiled the way most C is:
 * -O2 with the frame pointer omitted (tests/CMakeLists.txt), so rbp/x29 is
 * just another register here and no function leaves a frame record.  A
 * frame-pointer walk loses these frames; a DWARF walk must not.
 *
 * Every call below is followed by more work, so that none becomes a tail
 * call (a jump, which no unwinder can see through), and every function is
 * noinline and global, so that it is a frame with a name of its own.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"
#include "nofp_user.h"

/* Not inlined, not cloned (gcc's noclone; clang does not clone here). */
#if defined(__clang__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE __attribute__((noinline, noclone))
#endif

atomic_long nofp_sink;

/* ---- a chain of four frames, parked at the bottom ---- */

NOINLINE long nofp_leaf3(weft_chan *c)
{
    int v = 0;
    weft_chan_recv(c, &v);
    return atomic_fetch_add(&nofp_sink, v) + 3;
}

NOINLINE long nofp_mid2(weft_chan *c)
{
    long r = nofp_leaf3(c);
    return atomic_fetch_add(&nofp_sink, r) + 2;
}

NOINLINE long nofp_top1(weft_chan *c)
{
    long r = nofp_mid2(c);
    return atomic_fetch_add(&nofp_sink, r) + 1;
}

NOINLINE void nofp_worker(void *c)
{
    long r = nofp_top1(c);
    atomic_fetch_add(&nofp_sink, r);
}

/* ---- a chain of two frames around a call of fn ---- */

NOINLINE long nofp_via1(void (*fn)(void *), void *arg)
{
    fn(arg);
    return atomic_fetch_add(&nofp_sink, 1) + 1;
}

NOINLINE void nofp_via2(void (*fn)(void *), void *arg)
{
    long r = nofp_via1(fn, arg);
    atomic_fetch_add(&nofp_sink, r);
}

/* ---- parked inside a qsort comparator ---- */

weft_chan *nofp_cmp_gate;

NOINLINE int nofp_cmp(const void *a, const void *b)
{
    static atomic_int first = 1;
    if (atomic_exchange(&first, 0)) {
        int v = 0;
        weft_chan_recv(nofp_cmp_gate, &v);
        atomic_fetch_add(&nofp_sink, v);
    }
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

NOINLINE void nofp_sorter(void *arg)
{
    (void)arg;
    int v[64];
    for (int i = 0; i < 64; i++)
        v[i] = (i * 37) % 64;
    qsort(v, 64, sizeof v[0], nofp_cmp);
    atomic_fetch_add(&nofp_sink, v[0] + v[63]);
}

/* ---- CPU time spent in libc, called from a named function ---- */

atomic_int nofp_stop;

NOINLINE void nofp_copier(void *arg)
{
    (void)arg;
    static char a[1 << 16], b[1 << 16];
    while (!atomic_load(&nofp_stop)) {
        memset(a, (int)atomic_load(&nofp_sink), sizeof a);
        memcpy(b, a, sizeof b);
        atomic_fetch_add(&nofp_sink, b[100]);
    }
}

/* ---- a spinner that calls into the vDSO ---- */

NOINLINE void nofp_spinner(void *arg)
{
    (void)arg;
    struct timespec ts;
    while (!atomic_load(&nofp_stop)) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        atomic_fetch_add(&nofp_sink, ts.tv_nsec & 1);
    }
}

/* ---- a blocking syscall two frames down ---- */

int nofp_pipe[2];
atomic_int nofp_in_syscall;

NOINLINE long nofp_blocking_read(void)
{
    char c = 0;
    weft_syscall_enter();
    atomic_store(&nofp_in_syscall, 1);
    ssize_t r = read(nofp_pipe[0], &c, 1);
    weft_syscall_exit();
    return r + c;
}

NOINLINE void nofp_reader(void *arg)
{
    (void)arg;
    long r = nofp_blocking_read();
    atomic_fetch_add(&nofp_sink, r);
}
