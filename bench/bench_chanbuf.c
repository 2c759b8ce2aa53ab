/*
 * bench_chanbuf.c — throughput of a buffered channel: one producer sends
 * the ints 1..n through a channel of capacity 128 to one consumer, which
 * sums them; the time per item is printed and the sum checked.
 *
 * Options: -p PROCS (default 1), -n ITEMS (default 10,000,000).
 */
#include "bench_common.h"
#include "weft.h"

static struct bench_args args = { .procs = 1, .n = 10000000, .reps = 1 };
static weft_chan *items, *result;
static long long total = -1;
static int procs_used;
static int64_t elapsed_ns;
static int64_t setup_error;

static void producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= args.n; i++)
        weft_chan_send(items, &i);
    weft_chan_close(items);
}

static void consumer(void *arg)
{
    (void)arg;
    long long sum = 0;
    long v;
    while (weft_chan_recv(items, &v))
        sum += v;
    weft_chan_send(result, &sum);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);
    items = weft_chan_new(sizeof(long), 128);
    result = weft_chan_new(sizeof(long long), 0);
    if (!items || !result) {
        setup_error = -ENOMEM;
        return;
    }
    int64_t t0 = bench_now_ns();
    int64_t id = weft_go(consumer, NULL);
    if (id >= 0)
        id = weft_go(producer, NULL);
    if (id < 0) {
        setup_error = id;
        return;
    }
    weft_chan_recv(result, &total);
    elapsed_ns = bench_now_ns() - t0;
    weft_chan_free(items);
    weft_chan_free(result);
}

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n ITEMS]",
                     1, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_chanbuf: weft_main failed: %d\n", rc);
        return 1;
    }
    if (setup_error != 0) {
        fprintf(stderr, "bench_chanbuf: setup failed: %lld\n", (long long)setup_error);
        return 1;
    }
    long long want = (long long)args.n * (args.n + 1) / 2;
    if (total != want) {
        fprintf(stderr, "bench_chanbuf: wrong answer: sum %lld, want %lld\n", total, want);
        return 1;
    }
    printf("name=chanbuf impl=weft procs=%d ns_per_op=%.1f maxrss_kb=%ld\n",
           procs_used, (double)elapsed_ns / (double)args.n, bench_maxrss_kb());
    return 0;
}
