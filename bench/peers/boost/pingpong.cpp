// pingpong.cpp — the Boost.Fiber peer of weft's bench_pingpong: the main
// fiber sends a counter on a boost::fibers::unbuffered_channel, another
// fiber adds one and sends it back on a second one; prints ns per round
// trip.  At the end main closes ping and joins the other fiber.
//
// Options: -p PROCS (threads; default 1), -n ROUND_TRIPS (default 1,000,000).
#include "boost_common.hpp"

using boost::fibers::channel_op_status;

int main(int argc, char **argv)
{
    bench_args args = { 1, 1000000, 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n ROUND_TRIPS]", 1, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int threads = weftbench::threads_for(args.procs);

    long final_value = -1;
    int64_t elapsed_ns = 0;
    weftbench::run_with_threads(threads, [&] {
        boost::fibers::unbuffered_channel<long> ping, pong;
        boost::fibers::fiber ponger([&] {
            long v;
            while (ping.pop(v) == channel_op_status::success)
                pong.push(v + 1);
        });
        int64_t t0 = bench_now_ns();
        long v = 0;
        for (long i = 0; i < args.n; i++) {
            ping.push(v);
            pong.pop(v);
        }
        elapsed_ns = bench_now_ns() - t0;
        final_value = v;
        ping.close();
        ponger.join();
    });

    if (final_value != args.n) {
        std::fprintf(stderr, "boost_pingpong: wrong answer: counter is %ld after %ld round trips\n",
                     final_value, args.n);
        return 1;
    }
    std::printf("name=pingpong impl=boost procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
                threads, (double)elapsed_ns / (double)args.n, bench_maxrss_kb());
    return 0;
}
