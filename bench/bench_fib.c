/*
 * bench_fib.c — fork-join parallelism: fib(n) where every call above a
 * cutoff of 18 computes fib(n-1) in a new goroutine and fib(n-2) itself,
 * and calls at or below the cutoff recurse serially; the parent waits for
 * the spawned branch on a weft_wg, as the Go peer does with a
 * sync.WaitGroup.  Repeated r times; prints ms per fib(n).  Before booting the runtime it times the plain
 * serial C fib(n) on this thread, printed as a reference line of its own.
 *
 * Options: -p PROCS (0 = runtime default), -n N (default 27), -r REPS
 * (default 500), -P HZ: the profile-overhead workload, the same run with
 * the CPU profiler at HZ (to /dev/null; 0 = off), printed as
 * name=profile_overhead impl=on|off.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "weft.h"

#define CUTOFF 18

/* One spawned branch; its parent waits on wg (Go: a WaitGroup and a
 * captured variable). */
struct fib_task {
    int n;
    long result;
    weft_wg wg;
};

static struct bench_args args = { .procs = 0, .n = 27, .reps = 500 };
static long prof_hz = -1;           /* -P: -1 = not the profile-overhead workload */
static long want;
static int procs_used;
static int64_t elapsed_ns;
static long wrong_value;            /* a wrong fib(n) seen, or 0 */
static atomic_llong spawn_error;    /* the first weft_go failure, or 0 */

static long fib_serial(int n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static long fib_par(int n);

static void fib_task_run(void *arg)
{
    struct fib_task *t = arg;
    t->result = fib_par(t->n);
    weft_wg_done(&t->wg);
}

static long fib_par(int n)
{
    if (n <= CUTOFF)
        return fib_serial(n);
    struct fib_task t = { .n = n - 1, .result = 0, .wg = WEFT_WG_INIT };
    weft_wg_add(&t.wg, 1);
    int64_t id = weft_go(fib_task_run, &t);
    if (id < 0) {
        /* Record the failure and compute the branch here instead, so that
         * t never outlives this frame. */
        long long expected = 0;
        atomic_compare_exchange_strong(&spawn_error, &expected, (long long)id);
        fib_task_run(&t);
    }
    long b = fib_par(n - 2);
    weft_wg_wait(&t.wg);
    return t.result + b;
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);

    int devnull = -1;
    if (prof_hz > 0) {
        devnull = open("/dev/null", O_WRONLY);
        int e = weft_cpuprofile_start(devnull, (int)prof_hz);
        if (e < 0) {
            fprintf(stderr, "bench_fib: weft_cpuprofile_start: %s\n", strerror(-e));
            exit(1);
        }
    }
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < args.reps; i++) {
        long got = fib_par((int)args.n);
        if (got != want) {
            wrong_value = got;
            return;
        }
    }
    elapsed_ns = bench_now_ns() - t0;
    if (devnull >= 0) {
        int e = weft_cpuprofile_stop();
        if (e < 0) {
            fprintf(stderr, "bench_fib: weft_cpuprofile_stop: %s\n", strerror(-e));
            exit(1);
        }
        close(devnull);
    }
}

/* The reference value, computed without recursion. */
static long fib_iter(int n)
{
    long a = 0, b = 1;
    for (int i = 0; i < n; i++) {
        long c = a + b;
        a = b;
        b = c;
    }
    return a;
}

/* Times the plain serial recursion, with the argument hidden from the
 * optimizer so that nothing is computed at compile time. */
static void time_serial(void)
{
    volatile int n = (int)args.n;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < args.reps; i++) {
        long got = fib_serial(n);
        if (got != want) {
            fprintf(stderr, "bench_fib: wrong answer: serial fib(%ld) = %ld, want %ld\n",
                    args.n, got, want);
            exit(1);
        }
    }
    int64_t t = bench_now_ns() - t0;
    printf("name=fib_serial impl=c procs=1 ms_per_op=%.4f maxrss_kb=%ld\n",
           (double)t / 1e6 / (double)args.reps, bench_maxrss_kb());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    /* -P HZ is ours alone: take it out before the common parser sees it. */
    int k = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-P") == 0 && i + 1 < argc) {
            prof_hz = bench_parse_long(argv[0], 'P', argv[++i], 0, 10000);
            continue;
        }
        argv[k++] = argv[i];
    }
    argc = k;
    argv[argc] = NULL;
    bench_parse_args(argc, argv, "p:n:r:", "[-p PROCS] [-n N] [-r REPS] [-P HZ]",
                     0, 40, &args);
    want = fib_iter((int)args.n);
    if (args.n == 27 && want != 196418) {
        fprintf(stderr, "bench_fib: wrong answer: fib(27) = %ld, want 196418\n", want);
        return 1;
    }
    time_serial();

    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_fib: weft_main failed: %d\n", rc);
        return 1;
    }
    if (atomic_load(&spawn_error) != 0) {
        fprintf(stderr, "bench_fib: weft_go failed: %lld\n", (long long)atomic_load(&spawn_error));
        return 1;
    }
    if (wrong_value != 0 || elapsed_ns == 0) {
        fprintf(stderr, "bench_fib: wrong answer: fib(%ld) = %ld, want %ld\n",
                args.n, wrong_value, want);
        return 1;
    }
    if (prof_hz >= 0)
        printf("name=profile_overhead impl=%s procs=%d hz=%ld ms_per_op=%.4f maxrss_kb=%ld\n",
               prof_hz > 0 ? "on" : "off", procs_used, prof_hz,
               (double)elapsed_ns / 1e6 / (double)args.reps, bench_maxrss_kb());
    else
        printf("name=fib impl=weft procs=%d ms_per_op=%.4f maxrss_kb=%ld\n",
               procs_used, (double)elapsed_ns / 1e6 / (double)args.reps, bench_maxrss_kb());
    return 0;
}
