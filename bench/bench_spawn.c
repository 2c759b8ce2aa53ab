/*
 * bench_spawn.c — the cost of one goroutine's whole life: the main goroutine
 * spawns n goroutines that each increment an atomic counter and return, then
 * waits (yielding) until the counter reaches n.  Prints ns per spawn+finish.
 *
 * Options: -p PROCS (0 = runtime default), -n N (default 1,000,000).
 */
#include <stdatomic.h>

#include "bench_common.h"
#include "weft.h"

static atomic_long counter;
static struct bench_args args = { .procs = 0, .n = 1000000, .reps = 1 };
static int procs_used;
static int64_t elapsed_ns;
static int64_t spawn_error;

/* The body of every spawned goroutine. */
static void work(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);

    int64_t t0 = bench_now_ns();
    for (long i = 0; i < args.n; i++) {
        int64_t id = weft_go(work, NULL);
        if (id < 0) {
            spawn_error = id;
            return;
        }
    }
    /* No channels or wait groups yet: spin, letting the others run. */
    while (atomic_load_explicit(&counter, memory_order_acquire) < args.n)
        weft_yield();
    elapsed_ns = bench_now_ns() - t0;
}

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n GOROUTINES]",
                     1, 1000000000, &args);

    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_spawn: weft_main failed: %d\n", rc);
        return 1;
    }
    if (spawn_error != 0) {
        fprintf(stderr, "bench_spawn: weft_go failed: %lld\n", (long long)spawn_error);
        return 1;
    }
    long got = atomic_load(&counter);
    if (got != args.n) {
        fprintf(stderr, "bench_spawn: wrong answer: counter = %ld, want %ld\n", got, args.n);
        return 1;
    }
    printf("name=spawn impl=weft procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
           procs_used, (double)elapsed_ns / (double)args.n, bench_maxrss_kb());
    return 0;
}
