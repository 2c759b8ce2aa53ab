/*
 * bench_ctxswitch.c — the physical floor of a goroutine switch: the bare
 * register swap weft__swapctx, with no scheduler around it.  Two contexts,
 * this thread's own stack and one mmap'd stack, hand control back and forth
 * n times; prints ns per switch.
 *
 * Options: -n SWITCHES (default 10,000,000).
 */
#include <sys/mman.h>

#include "arch/switch.h"
#include "bench_common.h"

#define STACK_SIZE (64u * 1024u)

static void *main_sp;   /* the saved SP of main's context */
static void *co_sp;     /* the saved SP of the other context */

/* The other context: switch straight back, forever. */
static void co_entry(void)
{
    for (;;)
        weft__swapctx(&co_sp, main_sp);
}

int main(int argc, char **argv)
{
    struct bench_args args = { .procs = 1, .n = 10000000, .reps = 1 };
    bench_parse_args(argc, argv, "n:", "[-n SWITCHES]", 2, 2000000000, &args);
    long rounds = args.n / 2;

    void *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED) {
        perror("bench_ctxswitch: mmap");
        return 1;
    }
    co_sp = weft__ctx_init((char *)stack + STACK_SIZE, co_entry);

    /* One round trip first, so that the timed loop starts warm. */
    weft__swapctx(&main_sp, co_sp);

    int64_t t0 = bench_now_ns();
    for (long i = 0; i < rounds; i++)
        weft__swapctx(&main_sp, co_sp);
    int64_t t = bench_now_ns() - t0;

    printf("name=ctxswitch impl=weft procs=1 ns_per_op=%.2f maxrss_kb=%ld\n",
           (double)t / (double)(2 * rounds), bench_maxrss_kb());
    return 0;
}
