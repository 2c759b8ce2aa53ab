/*
 * bench_pingpong.c — the cost of one round trip over two unbuffered
 * channels: main sends a counter on ping, the other goroutine adds one and
 * sends it back on pong.  Each round trip is two hand-offs to a parked
 * partner (direct copy into the waiter, then a wake-up).
 *
 * Options: -p PROCS (default 1), -n ROUND_TRIPS (default 1,000,000).
 */
#include "bench_common.h"
#include "weft.h"

static struct bench_args args = { .procs = 1, .n = 1000000, .reps = 1 };
static weft_chan *ping, *pong;
static long final_value = -1;
static int procs_used;
static int64_t elapsed_ns;
static int64_t setup_error;

static void ponger(void *arg)
{
    (void)arg;
    long v;
    while (weft_chan_recv(ping, &v)) {
        v++;
        weft_chan_send(pong, &v);
    }
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);
    ping = weft_chan_new(sizeof(long), 0);
    pong = weft_chan_new(sizeof(long), 0);
    if (!ping || !pong) {
        setup_error = -ENOMEM;
        return;
    }
    int64_t id = weft_go(ponger, NULL);
    if (id < 0) {
        setup_error = id;
        return;
    }
    int64_t t0 = bench_now_ns();
    long v = 0;
    for (long i = 0; i < args.n; i++) {
        weft_chan_send(ping, &v);
        weft_chan_recv(pong, &v);
    }
    elapsed_ns = bench_now_ns() - t0;
    final_value = v;
    /* The ponger stays parked on ping; the end of main ends it. */
}

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n ROUND_TRIPS]",
                     1, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_pingpong: weft_main failed: %d\n", rc);
        return 1;
    }
    if (setup_error != 0) {
        fprintf(stderr, "bench_pingpong: setup failed: %lld\n", (long long)setup_error);
        return 1;
    }
    if (final_value != args.n) {
        fprintf(stderr, "bench_pingpong: wrong answer: counter is %ld after %ld round trips\n",
                final_value, args.n);
        return 1;
    }
    printf("name=pingpong impl=weft procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
           procs_used, (double)elapsed_ns / (double)args.n, bench_maxrss_kb());
    return 0;
}
