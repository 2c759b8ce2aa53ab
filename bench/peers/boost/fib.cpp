// fib.cpp — the Boost.Fiber peer of weft's bench_fib: fib(n) where every
// call above the cutoff 18 computes fib(n-1) in a new fiber and fib(n-2)
// itself, then joins the fiber (boost::fibers::fiber::join, Boost's own
// fork-join wait); calls at or below the cutoff recurse serially.
// Repeated r times; prints ms per fib(n).  Boost's default stacks.
//
// Options: -p PROCS (threads; 0 = one per CPU), -n N (default 27), -r REPS
// (default 500).
#include "boost_common.hpp"

static const int CUTOFF = 18;

static long fib_serial(int n)
{
    return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2);
}

static long fib_par(int n)
{
    if (n <= CUTOFF)
        return fib_serial(n);
    long a = 0;
    boost::fibers::fiber f([&a, n] { a = fib_par(n - 1); });
    long b = fib_par(n - 2);
    f.join();
    return a + b;
}

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

int main(int argc, char **argv)
{
    bench_args args = { 0, 27, 500 };
    bench_parse_args(argc, argv, "p:n:r:", "[-p PROCS] [-n N] [-r REPS]", 0, 40, &args);
    long want = fib_iter((int)args.n);
    if (args.n == 27 && want != 196418) {
        std::fprintf(stderr, "boost_fib: wrong answer: fib(27) = %ld, want 196418\n", want);
        return 1;
    }
    int threads = weftbench::threads_for(args.procs);

    long wrong = -1;
    int64_t elapsed_ns = 0;
    weftbench::run_with_threads(threads, [&] {
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < args.reps; i++) {
            long got = fib_par((int)args.n);
            if (got != want) {
                wrong = got;
                return;
            }
        }
        elapsed_ns = bench_now_ns() - t0;
    });

    if (wrong >= 0 || elapsed_ns == 0) {
        std::fprintf(stderr, "boost_fib: wrong answer: fib(%ld) = %ld, want %ld\n",
                     args.n, wrong, want);
        return 1;
    }
    std::printf("name=fib impl=boost procs=%d ms_per_op=%.4f maxrss_kb=%ld\n",
                threads, (double)elapsed_ns / 1e6 / (double)args.reps, bench_maxrss_kb());
    return 0;
}
