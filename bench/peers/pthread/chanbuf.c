/*
 * chanbuf.c — the plain-pthreads peer of bench_chanbuf: one producer thread
 * sends the ints 1..n through a bounded FIFO of capacity 128 (a ring, one
 * mutex and two condition variables, not_empty and not_full; signalled
 * after the mutex is released, see handoff.h) to one consumer thread, which
 * sums them.  Timed from before the two threads are created until main has
 * joined the consumer and so has its sum (weft and Go send the sum to main
 * over an unbuffered channel instead), which is checked.
 *
 * Options: -p PROCS (default 1), -n ITEMS (default 10,000,000).
 * -p 1 pins both threads to one CPU, -p 2 lets them run on two.
 */
#include "pthread_common.h"

#define CAP 128

static const char *prog = "pthread_chanbuf";

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    long ring[CAP];
    int head, count;            /* the oldest item and the number queued */
    int closed;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
        { 0 }, 0, 0, 0 };

static long items;
static long long total = -1;

static void q_push(long v)
{
    pthread_mutex_lock(&q.mu);
    while (q.count == CAP)
        pthread_cond_wait(&q.not_full, &q.mu);
    q.ring[(q.head + q.count) % CAP] = v;
    q.count++;
    pthread_mutex_unlock(&q.mu);
    pthread_cond_signal(&q.not_empty);
}

static void q_close(void)
{
    pthread_mutex_lock(&q.mu);
    q.closed = 1;
    pthread_mutex_unlock(&q.mu);
    pthread_cond_broadcast(&q.not_empty);
}

/* Takes the oldest item into *v; returns 0 when the queue is closed and
 * empty. */
static int q_pop(long *v)
{
    pthread_mutex_lock(&q.mu);
    while (q.count == 0 && !q.closed)
        pthread_cond_wait(&q.not_empty, &q.mu);
    if (q.count == 0) {
        pthread_mutex_unlock(&q.mu);
        return 0;
    }
    *v = q.ring[q.head];
    q.head = (q.head + 1) % CAP;
    q.count--;
    pthread_mutex_unlock(&q.mu);
    pthread_cond_signal(&q.not_full);
    return 1;
}

static void *producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= items; i++)
        q_push(i);
    q_close();
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    long long sum = 0;
    long v;
    while (q_pop(&v))
        sum += v;
    total = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_args args = { .procs = 1, .n = 10000000, .reps = 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n ITEMS]",
                     1, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int procs = pt_use_cpus(prog, args.procs);
    items = args.n;

    pthread_t prod, cons;
    int64_t t0 = bench_now_ns();
    pt_check(prog, "pthread_create", pthread_create(&cons, NULL, consumer, NULL));
    pt_check(prog, "pthread_create", pthread_create(&prod, NULL, producer, NULL));
    pt_check(prog, "pthread_join", pthread_join(cons, NULL));
    int64_t elapsed_ns = bench_now_ns() - t0;
    pt_check(prog, "pthread_join", pthread_join(prod, NULL));

    long long want = (long long)args.n * (args.n + 1) / 2;
    if (total != want) {
        fprintf(stderr, "%s: wrong answer: sum %lld, want %lld\n", prog, total, want);
        return 1;
    }
    printf("name=chanbuf impl=pthread procs=%d ns_per_op=%.1f maxrss_kb=%ld n=%ld\n",
           procs, (double)elapsed_ns / (double)args.n, bench_maxrss_kb(), args.n);
    return 0;
}
