/*
 * spawn.c — the plain-pthreads peer of bench_spawn: main creates n threads
 * (default attributes: an 8 MiB stack from glibc's cache of freed stacks)
 * that each increment an atomic counter and return, and joins each before
 * it creates the next, so one thread is alive at a time; prints ns per
 * pthread_create + pthread_join and checks the counter.
 *
 * The default n is 100,000, not weft's 1,000,000 (one spawn costs tens of
 * microseconds), and is printed as n= on the output line.  Creating all of
 * them before joining any, as weft and Go do with their goroutines, is not
 * possible with threads: 100,000 threads exceed the process limits here
 * (ulimit -u, and 800 GB of stack address space).
 *
 * Options: -p PROCS (CPUs the threads may run on; 0 = all, the default),
 * -n N (default 100,000).  With 2 CPUs the scheduler starts each new thread
 * on the idle CPU, and the join waits for a wake-up from there.
 */
#include "pthread_common.h"

#include <stdatomic.h>

static const char *prog = "pthread_spawn";
static atomic_long counter;

/* The body of every thread. */
static void *work(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_args args = { .procs = 0, .n = 100000, .reps = 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n THREADS]",
                     1, 1000000000, &args);
    int procs = pt_use_cpus(prog, args.procs);

    int64_t t0 = bench_now_ns();
    for (long i = 0; i < args.n; i++) {
        pthread_t t;
        pt_check(prog, "pthread_create", pthread_create(&t, NULL, work, NULL));
        pt_check(prog, "pthread_join", pthread_join(t, NULL));
    }
    int64_t elapsed_ns = bench_now_ns() - t0;

    long got = atomic_load(&counter);
    if (got != args.n) {
        fprintf(stderr, "%s: wrong answer: counter = %ld, want %ld\n", prog, got, args.n);
        return 1;
    }
    printf("name=spawn impl=pthread procs=%d ns_per_op=%.1f maxrss_kb=%ld n=%ld\n",
           procs, (double)elapsed_ns / (double)args.n, bench_maxrss_kb(), args.n);
    return 0;
}
