// yield.cpp — the Boost.Fiber peer of weft's bench_yield: two fibers on one
// thread (the main fiber and one other) each call boost::this_fiber::yield()
// n/2 times; prints ns per switch.  As in weft, the main fiber is one of the
// two, so each yield is one switch; at the end it joins the other.  On one
// thread it checks that the two really alternated.
//
// Options: -p PROCS (threads; default 1), -n SWITCHES (default 10,000,000).
#include <atomic>

#include "boost_common.hpp"

int main(int argc, char **argv)
{
    bench_args args = { 1, 10000000, 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n SWITCHES]", 2, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int threads = weftbench::threads_for(args.procs);
    long half = args.n / 2;

    std::atomic<long> other_yields{0};
    long other_at_main_end = 0;
    int64_t elapsed_ns = 0;
    weftbench::run_with_threads(threads, [&] {
        int64_t t0 = bench_now_ns();
        boost::fibers::fiber other([&] {
            for (long i = 0; i < half; i++) {
                boost::this_fiber::yield();
                other_yields.store(i + 1, std::memory_order_relaxed);
            }
        });
        for (long i = 0; i < half; i++)
            boost::this_fiber::yield();
        other_at_main_end = other_yields.load(std::memory_order_relaxed);
        other.join();
        elapsed_ns = bench_now_ns() - t0;
    });

    if (threads == 1 && other_at_main_end < half / 2) {
        std::fprintf(stderr, "boost_yield: wrong answer: the fibers did not alternate "
                     "(the other had yielded %ld of %ld times when main finished)\n",
                     other_at_main_end, half);
        return 1;
    }
    std::printf("name=yield impl=boost procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
                threads, (double)elapsed_ns / (double)(2 * half), bench_maxrss_kb());
    return 0;
}
