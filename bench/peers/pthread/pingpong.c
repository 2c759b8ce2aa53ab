/*
 * pingpong.c — the plain-pthreads peer of bench_pingpong: main sends a
 * counter through one unbuffered hand-off (handoff.h: mutex + condition
 * variables, the sender waits until the receiver has taken the value, as
 * with an unbuffered weft_chan or Go chan), a second thread adds one and
 * sends it back through another, n round trips; the final counter is
 * checked.  Timed after the partner thread is created, as in weft.
 *
 * Options: -p PROCS (default 1), -n ROUND_TRIPS (default 1,000,000).
 * -p 1 pins both threads to one CPU, so every hand-off is a kernel switch;
 * -p 2 lets them run on two CPUs, so every hand-off is a cross-CPU wake-up
 * (a futex wake, and the other CPU leaving idle when the partner slept):
 * some 75 µs per round trip here, so bench/run passes -n 100000 on 2 CPUs.
 * n is printed as n= on the output line.
 */
#include "handoff.h"

static const char *prog = "pthread_pingpong";
static struct handoff ping = HANDOFF_INIT, pong = HANDOFF_INIT;
static long rounds;

static void *ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++)
        handoff_send(&pong, handoff_recv(&ping) + 1);
    return NULL;
}

int main(int argc, char **argv)
{
    struct bench_args args = { .procs = 1, .n = 1000000, .reps = 1 };
    bench_parse_args(argc, argv, "p:n:", "[-p PROCS] [-n ROUND_TRIPS]",
                     1, 1000000000, &args);
    if (args.procs == 0)
        args.procs = 1;
    int procs = pt_use_cpus(prog, args.procs);
    rounds = args.n;

    pthread_t t;
    pt_check(prog, "pthread_create", pthread_create(&t, NULL, ponger, NULL));
    int64_t t0 = bench_now_ns();
    long v = 0;
    for (long i = 0; i < args.n; i++) {
        handoff_send(&ping, v);
        v = handoff_recv(&pong);
    }
    int64_t elapsed_ns = bench_now_ns() - t0;
    pt_check(prog, "pthread_join", pthread_join(t, NULL));

    if (v != args.n) {
        fprintf(stderr, "%s: wrong answer: counter is %ld after %ld round trips\n",
                prog, v, args.n);
        return 1;
    }
    printf("name=pingpong impl=pthread procs=%d ns_per_op=%.1f maxrss_kb=%ld n=%ld\n",
           procs, (double)elapsed_ns / (double)args.n, bench_maxrss_kb(), args.n);
    return 0;
}
