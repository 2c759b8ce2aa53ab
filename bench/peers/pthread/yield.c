/*
 * yield.c — the plain-pthreads peer of bench_yield: two kernel threads
 * pinned to the same CPU (sched_setaffinity) take turns with sched_yield,
 * each yielding n/2 times; the main thread is one of the two, as in weft
 * and Go.  This measures the kernel's thread switch (a system call, the
 * scheduler's pick, a switch of kernel stacks and registers), not a
 * user-space one.
 *
 * sched_yield only *offers* the CPU, so the program checks that the threads
 * really alternated: as in bench_yield, the other thread must have made at
 * least half of its yields when main finishes its own (otherwise main ran
 * alone and a "switch" was a bare system call), and each thread counts the
 * yields across which the other one made progress; that fraction is printed
 * as switched= (1.000 = every yield was a switch; on 1 CPU below 0.9 is a
 * wrong answer).
 *
 * Options: -p PROCS (CPUs; default 1), -n SWITCHES (default 10,000,000).
 * Only on 1 CPU do the two threads compete for it; with more, each yield
 * returns at once and the alternation check is skipped (as weft's is).
 */
#include "pthread_common.h"

#include <stdatomic.h>

static const char *prog = "pthread_yield";
static long half;
static atomic_long progress[2];    /* yields made by main (0) and the other (1) */
static long switched[2];           /* yields across which the other made progress */

static void yield_loop(int self)
{
    int other = 1 - self;
    long sw = 0;
    for (long i = 0; i < half; i++) {
        long before = atomic_load_explicit(&progress[other], memory_order_relaxed);
        sched_yield();
        if (atomic_load_explicit(&progress[other], memory_order_relaxed) != before)
            sw++;
        atomic_store_explicit(&progress[self], i + 1, memory_order_relaxed);
    }
    switched[self] = sw;
}

static void *yielder(void *arg)
{
    (void)arg;
    yield_loop(1);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_args args = { .procs = 1, .n = 10000000, .reps = 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n SWITCHES]",
                     2, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int procs = pt_use_cpus(prog, args.procs);
    half = args.n / 2;

    pthread_t t;
    int64_t t0 = bench_now_ns();
    pt_check(prog, "pthread_create", pthread_create(&t, NULL, yielder, NULL));
    yield_loop(0);
    long other_at_main_end = atomic_load_explicit(&progress[1], memory_order_relaxed);
    pt_check(prog, "pthread_join", pthread_join(t, NULL));
    int64_t elapsed_ns = bench_now_ns() - t0;

    if (procs == 1 && other_at_main_end < half / 2) {
        fprintf(stderr, "%s: wrong answer: the threads did not alternate "
                "(the other had yielded %ld of %ld times when main finished)\n",
                prog, other_at_main_end, half);
        return 1;
    }
    /* And on 1 CPU nearly every yield must have been a switch. */
    double frac = (double)(switched[0] + switched[1]) / (double)(2 * half);
    if (procs == 1 && frac < 0.9) {
        fprintf(stderr, "%s: wrong answer: only %.1f%% of the yields switched threads\n",
                prog, frac * 100);
        return 1;
    }
    printf("name=yield impl=pthread procs=%d ns_per_op=%.1f maxrss_kb=%ld n=%ld switched=%.3f\n",
           procs, (double)elapsed_ns / (double)(2 * half), bench_maxrss_kb(), 2 * half, frac);
    return 0;
}
