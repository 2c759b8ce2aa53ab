/*
 * prog_overflow.c — a goroutine that recurses until its stack runs out.
 * test_stack.c runs it in a child process and checks the report.
 * argv[1]: "default" or "small" (a 32 KiB stack from weft_go_attr).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

static volatile int sink;
static atomic_int reported;     /* main has printed our id */

#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int recurse(int depth)
{
    volatile char frame[512];
    frame[0] = (char)depth;
    frame[511] = (char)depth;
    return recurse(depth + 1) + frame[0] + frame[511];
}

static void deep(void *arg)
{
    (void)arg;
    /* Another P can start us at once and overflow within microseconds:
     * wait until main has written our id, or the test reads no stdout. */
    while (!atomic_load(&reported))
        weft_yield();
    sink = recurse(0);
}

static void mainfn(void *arg)
{
    const char *mode = arg;
    weft_attr a = { .stack_size = 32 * 1024, .name = "deep" };
    int64_t id = strcmp(mode, "small") == 0 ? weft_go_attr(&a, deep, NULL) : weft_go(deep, NULL);
    printf("spawned %lld\n", (long long)id);
    fflush(stdout);
    atomic_store(&reported, 1);
    for (;;)
        weft_yield();
}

int main(int argc, char **argv)
{
    return weft_main(mainfn, argc > 1 ? argv[1] : "default");
}
