// boost_common.hpp — what every Boost.Fiber peer shares: bench_common.h
// (clock, peak RSS, option parsing) and a way to run the workload on 1 or
// more threads.
//
// On 1 thread the main thread keeps Boost's default round_robin scheduler.
// On N > 1 threads the main thread and N-1 worker threads all install
// boost::fibers::algo::work_stealing(N), whose constructor waits until all N
// have done so; the workers' main fibers then park on a fiber condition
// variable until the workload is over, while their dispatchers run (and
// steal) the workload's fibers.  Idle threads spin (work_stealing's
// suspend = false): with suspend = true a sleeping thread is woken only when
// a fiber is made ready *for it* from another thread, never to steal, so the
// other threads would sit out the whole workload.
#ifndef WEFT_BOOST_COMMON_HPP
#define WEFT_BOOST_COMMON_HPP

#include <boost/fiber/all.hpp>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace weftbench {

// The number of threads a -p value asks for (0 = one per CPU).
inline int threads_for(long procs)
{
    if (procs > 0)
        return (int)procs;
    unsigned n = std::thread::hardware_concurrency();
    return n > 0 ? (int)n : 1;
}

// Runs body() in the main fiber of the main thread with `threads` threads
// scheduling fibers, and returns when body() has returned and the worker
// threads have been joined.  body() must leave no fiber behind that is
// still blocked (close channels, join fibers).
template <typename F>
void run_with_threads(int threads, F body)
{
    if (threads <= 1) {
        body();
        return;
    }
    std::mutex mtx;
    boost::fibers::condition_variable_any cnd;
    bool done = false;
    std::vector<std::thread> workers;
    for (int i = 1; i < threads; i++) {
        workers.emplace_back([&] {
            boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(
                (std::uint32_t)threads, false);
            std::unique_lock<std::mutex> lk(mtx);
            cnd.wait(lk, [&] { return done; });
        });
    }
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(
        (std::uint32_t)threads, false);
    body();
    {
        std::unique_lock<std::mutex> lk(mtx);
        done = true;
    }
    cnd.notify_all();
    for (auto &t : workers)
        t.join();
}

} // namespace weftbench

#endif
