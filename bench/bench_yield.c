/*
 * bench_yield.c — the cost of one weft_yield switch: two goroutines on one
 * P take turns, each yielding n/2 times.  The main goroutine is one of the
 * two (as in the Go peer, where main yields too and then parks), so exactly
 * two goroutines are runnable and each yield is one switch.  When main is
 * done it keeps yielding until the other has finished its last yields.
 *
 * Options: -p PROCS (default 1), -n SWITCHES (default 10,000,000).
 */
#include <stdatomic.h>

#include "bench_common.h"
#include "weft.h"

static struct bench_args args = { .procs = 1, .n = 10000000, .reps = 1 };
static long half;
static atomic_long other_yields;   /* yields the spawned goroutine has made */
static atomic_int other_done;
static long other_at_main_end;     /* its progress when main finished its loop */
static int procs_used;
static int64_t elapsed_ns;
static int64_t spawn_error;

static void yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < half; i++) {
        weft_yield();
        atomic_store_explicit(&other_yields, i + 1, memory_order_relaxed);
    }
    atomic_store_explicit(&other_done, 1, memory_order_release);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);

    int64_t t0 = bench_now_ns();
    int64_t id = weft_go(yielder, NULL);
    if (id < 0) {
        spawn_error = id;
        return;
    }
    for (long i = 0; i < half; i++)
        weft_yield();
    other_at_main_end = atomic_load_explicit(&other_yields, memory_order_relaxed);
    while (!atomic_load_explicit(&other_done, memory_order_acquire))
        weft_yield();
    elapsed_ns = bench_now_ns() - t0;
}

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n SWITCHES]",
                     2, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    half = args.n / 2;

    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_yield: weft_main failed: %d\n", rc);
        return 1;
    }
    if (spawn_error != 0) {
        fprintf(stderr, "bench_yield: weft_go failed: %lld\n", (long long)spawn_error);
        return 1;
    }
    /* On one P the two goroutines must alternate: if yield did not switch,
     * main would finish its loop before the other made any progress and
     * the time per "switch" would be meaningless. */
    if (procs_used == 1 && other_at_main_end < half / 2) {
        fprintf(stderr, "bench_yield: wrong answer: the goroutines did not alternate "
                "(the other had yielded %ld of %ld times when main finished)\n",
                other_at_main_end, half);
        return 1;
    }
    printf("name=yield impl=weft procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
           procs_used, (double)elapsed_ns / (double)(2 * half), bench_maxrss_kb());
    return 0;
}
