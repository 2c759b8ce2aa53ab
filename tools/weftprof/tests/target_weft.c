/*
 * target_weft — a weft program on two Ps: one goroutine burns CPU in
 * weft_spin and yields, two sleep 1 ms at a time, so the Ms show both a
 * running goroutine and the scheduler itself (finding work, parking on the
 * futex), and sysmon its own loop.
 */
#include <stdio.h>
#include <weft.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void weft_spin(void)
{
    for (unsigned long i = 0; i < 100000; i++)
        sink += i;
}

static void burner(void *arg)
{
    (void)arg;
    for (;;) {
        weft_spin();
        weft_yield();
    }
}

static void sleeper(void *arg)
{
    (void)arg;
    for (;;)
        weft_sleep(1000000);  /* 1 ms */
}

static void start(void *arg)
{
    (void)arg;
    weft_go(burner, NULL);
    weft_go(sleeper, NULL);
    weft_go(sleeper, NULL);
    printf("ready\n");
    fflush(stdout);
    for (;;)
        weft_sleep(100000000);
}

int main(void)
{
    weft_maxprocs(2);
    return weft_main(start, NULL);
}
