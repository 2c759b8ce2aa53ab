/*
 * bench_skynet.c — the classic skynet benchmark: a tree of goroutines with
 * 1,000,000 leaves, each inner node spawning 10 children (1,111,111
 * goroutines in all).  Leaf k sends k to its parent; every inner node
 * receives its 10 children's numbers over its own unbuffered channel and
 * sends their sum up to its parent.  The root's sum must be 499999500000.
 * Prints the time of the whole tree and the peak RSS, and what the tree
 * cost per goroutine: minor page faults (first touches of fresh memory,
 * getrusage) and resident bytes ((peak RSS - RSS before the tree) divided
 * by the goroutines spawned).  The Go peer reports the same.
 *
 * As in the Go peer, each inner node makes one unbuffered channel (Go:
 * make(chan int)) that all its children send on.  The children's arguments
 * live in the parent's frame, which outlives them: the parent returns only
 * after all ten have sent.  The parent frees its channel when it has all
 * ten numbers (Go's garbage collector does that there).
 *
 * Options: -p PROCS (0 = runtime default), -n LEAVES (default 1,000,000,
 * a power of 10).
 */
#include <stdatomic.h>

#include "bench_common.h"
#include "weft.h"

#define DIV 10

struct node {
    weft_chan *out;     /* the parent's channel */
    long num;           /* first leaf number of this subtree */
    long size;          /* leaves in this subtree */
};

static struct bench_args args = { .procs = 0, .n = 1000000, .reps = 1 };
static int procs_used;
static int64_t elapsed_ns;
static long minflt_before, minflt_after, rss_before_kb;
static long long total = -1;
static atomic_llong setup_error;    /* the first failure, or 0 */

static void fail(long long err)
{
    long long expected = 0;
    atomic_compare_exchange_strong(&setup_error, &expected, err);
}

static void skynet(void *arg)
{
    struct node *self = arg;
    long long sum = 0;
    if (self->size == 1) {
        sum = self->num;
        weft_chan_send(self->out, &sum);
        return;
    }
    struct node kids[DIV];
    weft_chan *rc = weft_chan_new(sizeof(long long), 0);
    if (!rc) {
        fail(-ENOMEM);
        weft_chan_send(self->out, &sum);
        return;
    }
    long sub = self->size / DIV;
    int spawned = 0;
    for (int i = 0; i < DIV; i++) {
        kids[i] = (struct node){ .out = rc, .num = self->num + i * sub, .size = sub };
        int64_t id = weft_go(skynet, &kids[i]);
        if (id < 0) {
            fail(id);
            break;
        }
        spawned++;
    }
    for (int i = 0; i < spawned; i++) {
        long long v;
        weft_chan_recv(rc, &v);
        sum += v;
    }
    weft_chan_free(rc);
    weft_chan_send(self->out, &sum);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);

    rss_before_kb = bench_rss_kb();
    minflt_before = bench_minflt();
    int64_t t0 = bench_now_ns();
    weft_chan *c = weft_chan_new(sizeof(long long), 0);
    if (!c) {
        fail(-ENOMEM);
        return;
    }
    struct node root = { .out = c, .num = 0, .size = args.n };
    int64_t id = weft_go(skynet, &root);
    if (id < 0) {
        fail(id);
        return;
    }
    weft_chan_recv(c, &total);
    elapsed_ns = bench_now_ns() - t0;
    minflt_after = bench_minflt();
    weft_chan_free(c);
}

int main(int argc, char **argv)
{
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n LEAVES]",
                     1, 100000000, &args);
    for (long s = args.n; s > 1; s /= DIV) {
        if (s % DIV != 0) {
            fprintf(stderr, "bench_skynet: bad value for -n: '%ld' (want a power of %d)\n",
                    args.n, DIV);
            return 2;
        }
    }
    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_skynet: weft_main failed: %d\n", rc);
        return 1;
    }
    if (atomic_load(&setup_error) != 0) {
        fprintf(stderr, "bench_skynet: setup failed: %lld\n", (long long)atomic_load(&setup_error));
        return 1;
    }
    long long want = (long long)args.n * (args.n - 1) / 2;
    if (args.n == 1000000 && want != 499999500000LL) {
        fprintf(stderr, "bench_skynet: wrong reference sum %lld\n", want);
        return 1;
    }
    if (total != want) {
        fprintf(stderr, "bench_skynet: wrong answer: sum %lld, want %lld\n", total, want);
        return 1;
    }
    long ngoroutines = 0;
    for (long s = args.n; s >= 1; s /= DIV)
        ngoroutines += s;
    long maxrss = bench_maxrss_kb();
    printf("name=skynet impl=weft procs=%d ms_per_op=%.3f maxrss_kb=%ld sum=%lld "
           "faults_per_g=%.2f rss_bytes_per_g=%.0f\n",
           procs_used, (double)elapsed_ns / 1e6, maxrss, total,
           (double)(minflt_after - minflt_before) / (double)ngoroutines,
           (double)(maxrss - rss_before_kb) * 1024.0 / (double)ngoroutines);
    return 0;
}
