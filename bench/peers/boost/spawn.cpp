// spawn.cpp — the Boost.Fiber peer of weft's bench_spawn: the main fiber
// starts n detached fibers (Boost's default launch policy, launch::post:
// the new fiber is queued and the spawner goes on) that each increment an
// atomic counter and return, then waits, yielding as weft does, until the
// counter reaches n.  Prints ns per spawn+finish.
//
// Boost.Fiber has no preemption, so all n fibers exist before the first one
// runs.  Stacks: SPAWN_STACK_KB (default 16) KiB from
// boost::fibers::fixedsize_stack (malloc), as in skynet; printed as
// stack_kb.  Boost's default 128 KiB stacks take one mmap each until
// vm.max_map_count runs out and cost about 3x more per spawn here, for the
// same ~9 GiB of touched pages.
//
// Options: -p PROCS (threads; 0 = one per CPU), -n N (default 1,000,000).
#include <atomic>

#include "boost_common.hpp"

#ifndef SPAWN_STACK_KB
#define SPAWN_STACK_KB 16
#endif

static std::atomic<long> counter;

int main(int argc, char **argv)
{
    bench_args args = { 0, 1000000, 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n FIBERS]", 1, 1000000000, &args);
    int threads = weftbench::threads_for(args.procs);

    int64_t elapsed_ns = 0;
    weftbench::run_with_threads(threads, [&] {
        boost::fibers::fixedsize_stack salloc(SPAWN_STACK_KB * 1024);
        int64_t t0 = bench_now_ns();
        for (long i = 0; i < args.n; i++)
            boost::fibers::fiber(std::allocator_arg, salloc,
                                 [] { counter.fetch_add(1, std::memory_order_relaxed); })
                .detach();
        while (counter.load(std::memory_order_acquire) < args.n)
            boost::this_fiber::yield();
        elapsed_ns = bench_now_ns() - t0;
    });

    long got = counter.load();
    if (got != args.n) {
        std::fprintf(stderr, "boost_spawn: wrong answer: counter = %ld, want %ld\n", got, args.n);
        return 1;
    }
    std::printf("name=spawn impl=boost procs=%d ns_per_op=%.1f maxrss_kb=%ld stack_kb=%d\n",
                threads, (double)elapsed_ns / (double)args.n, bench_maxrss_kb(), SPAWN_STACK_KB);
    return 0;
}
