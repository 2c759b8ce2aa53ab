// skynet.cpp — the Boost.Fiber peer of weft's bench_skynet: a tree of
// 1,111,111 fibers with 1,000,000 leaves, each inner node starting 10
// detached children that send their numbers on the node's own
// boost::fibers::unbuffered_channel, the node sending the sum up; the
// root's sum must be 499999500000.  Prints the time of the whole tree and
// the peak RSS.
//
// Stacks: SKYNET_STACK_KB (default 16) KiB from boost::fibers::fixedsize_stack
// (malloc), not Boost's default 128 KiB, which would need tens of GiB of
// address space with the whole tree alive at once; printed as stack_kb.
//
// Options: -p PROCS (threads; 0 = one per CPU), -n LEAVES (default
// 1,000,000, a power of 10).
#include "boost_common.hpp"

#ifndef SKYNET_STACK_KB
#define SKYNET_STACK_KB 16
#endif

static const long DIV = 10;
using chan = boost::fibers::unbuffered_channel<long long>;

static void skynet(chan &out, long num, long size)
{
    if (size == 1) {
        out.push(num);
        return;
    }
    chan rc;
    long sub = size / DIV;
    for (long i = 0; i < DIV; i++)
        boost::fibers::fiber(std::allocator_arg,
                             boost::fibers::fixedsize_stack(SKYNET_STACK_KB * 1024),
                             [&rc, num, i, sub] { skynet(rc, num + i * sub, sub); })
            .detach();
    long long sum = 0;
    for (long i = 0; i < DIV; i++) {
        long long v;
        rc.pop(v);
        sum += v;
    }
    out.push(sum);
}

int main(int argc, char **argv)
{
    bench_args args = { 0, 1000000, 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n LEAVES]", 1, 100000000, &args);
    for (long s = args.n; s > 1; s /= DIV) {
        if (s % DIV != 0) {
            std::fprintf(stderr, "boost_skynet: bad value for -n: '%ld' (want a power of %ld)\n",
                         args.n, DIV);
            return 2;
        }
    }
    int threads = weftbench::threads_for(args.procs);

    long long total = -1;
    int64_t elapsed_ns = 0;
    weftbench::run_with_threads(threads, [&] {
        int64_t t0 = bench_now_ns();
        chan c;
        long n = args.n;
        boost::fibers::fiber(std::allocator_arg,
                             boost::fibers::fixedsize_stack(SKYNET_STACK_KB * 1024),
                             [&c, n] { skynet(c, 0, n); })
            .detach();
        c.pop(total);
        elapsed_ns = bench_now_ns() - t0;
    });

    long long want = (long long)args.n * (args.n - 1) / 2;
    if (args.n == 1000000 && want != 499999500000LL) {
        std::fprintf(stderr, "boost_skynet: wrong reference sum %lld\n", want);
        return 1;
    }
    if (total != want) {
        std::fprintf(stderr, "boost_skynet: wrong answer: sum %lld, want %lld\n", total, want);
        return 1;
    }
    std::printf("name=skynet impl=boost procs=%d ms_per_op=%.3f maxrss_kb=%ld sum=%lld stack_kb=%d\n",
                threads, (double)elapsed_ns / 1e6, bench_maxrss_kb(), total, SKYNET_STACK_KB);
    return 0;
}
