// chanbuf.cpp — the Boost.Fiber peer of weft's bench_chanbuf: one producer
// fiber sends the ints 1..n through a boost::fibers::buffered_channel of
// capacity 128 to one consumer fiber, which sums them and sends the sum to
// main over an unbuffered channel; prints ns per item and checks the sum.
// (Boost wants a power-of-two capacity, and its ring holds capacity - 1 =
// 127 items.)
//
// Options: -p PROCS (threads; default 1), -n ITEMS (default 10,000,000).
#include "boost_common.hpp"

using boost::fibers::channel_op_status;

int main(int argc, char **argv)
{
    bench_args args = { 1, 10000000, 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n ITEMS]", 1, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int threads = weftbench::threads_for(args.procs);

    long long total = -1;
    int64_t elapsed_ns = 0;
    weftbench::run_with_threads(threads, [&] {
        boost::fibers::buffered_channel<long> items(128);
        boost::fibers::unbuffered_channel<long long> result;
        int64_t t0 = bench_now_ns();
        boost::fibers::fiber consumer([&] {
            long long sum = 0;
            long v;
            while (items.pop(v) == channel_op_status::success)
                sum += v;
            result.push(sum);
        });
        boost::fibers::fiber producer([&] {
            for (long i = 1; i <= args.n; i++)
                items.push(i);
            items.close();
        });
        result.pop(total);
        elapsed_ns = bench_now_ns() - t0;
        producer.join();
        consumer.join();
    });

    long long want = (long long)args.n * (args.n + 1) / 2;
    if (total != want) {
        std::fprintf(stderr, "boost_chanbuf: wrong answer: sum %lld, want %lld\n", total, want);
        return 1;
    }
    std::printf("name=chanbuf impl=boost procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
                threads, (double)elapsed_ns / (double)args.n, bench_maxrss_kb());
    return 0;
}
