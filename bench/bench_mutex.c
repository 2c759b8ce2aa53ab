/*
 * bench_mutex.c — the cost of weft_mutex_lock + weft_mutex_unlock.  With
 * -g 1 (the default) one goroutine locks and unlocks an uncontended mutex
 * n times: the fast path alone, which lock-cycle detection's owner
 * tracking must keep cheap (compare instruction counts under callgrind).
 * With -g G > 1, G goroutines share the mutex, n/G pairs each, so that
 * waiters park and the slow path (where cycles are looked for) runs too.
 *
 * Options: -p PROCS (default 1), -n PAIRS (default 20,000,000), -g GOROUTINES.
 */
#include <string.h>

#include "bench_common.h"
#include "weft.h"

static struct bench_args args = { .procs = 1, .n = 20000000, .reps = 1 };
static long goroutines = 1;
static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_wg wg = WEFT_WG_INIT;
static long counter;            /* under mu: checks that every pair ran */
static int procs_used;
static int64_t elapsed_ns;

static void locker(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 0; i < n; i++) {
        weft_mutex_lock(&mu);
        counter++;
        weft_mutex_unlock(&mu);
    }
    weft_wg_done(&wg);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);
    long each = args.n / goroutines;
    int64_t t0 = bench_now_ns();
    weft_wg_add(&wg, (int)goroutines);
    for (long i = 0; i < goroutines; i++)
        if (weft_go(locker, (void *)(intptr_t)each) < 0)
            weft_wg_done(&wg);
    weft_wg_wait(&wg);
    elapsed_ns = bench_now_ns() - t0;
}

int main(int argc, char **argv)
{
    /* -g is ours; the common parser takes the rest. */
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "-g") == 0) {
            goroutines = bench_parse_long(argv[0], 'g', argv[i + 1], 1, 100000);
            memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof *argv);
            argc -= 2;
            i--;
        }
    }
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n PAIRS] [-g GOROUTINES]",
                     1, 1000000000, &args);
    if (weft_main(bench_main, NULL) != 0) {
        fprintf(stderr, "bench_mutex: weft_main failed\n");
        return 1;
    }
    long want = args.n / goroutines * goroutines;
    if (counter != want) {
        fprintf(stderr, "bench_mutex: wrong answer: %ld pairs ran, want %ld\n", counter, want);
        return 1;
    }
    printf("name=mutex impl=weft procs=%d goroutines=%ld ns_per_op=%.1f maxrss_kb=%ld\n",
           procs_used, goroutines, (double)elapsed_ns / (double)want, bench_maxrss_kb());
    return 0;
}
