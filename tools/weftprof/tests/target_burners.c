/*
 * target_burners — a weft program on two Ps with two named goroutines
 * burning CPU, "burner-a" in burn_a and "burner-b" in burn_b, and a
 * sleeper; it prints "ready A B" with the two goroutine ids, so that a
 * test can look for them in weftprof's goroutine labels.
 */
#include <stdio.h>
#include <weft.h>

static volatile unsigned long sink;

__attribute__((noinline)) static void burn_a(void)
{
    for (unsigned long i = 0; i < 2000000; i++)
        sink += i;
}

__attribute__((noinline)) static void burn_b(void)
{
    for (unsigned long i = 0; i < 2000000; i++)
        sink ^= i;
}

static void burner(void *arg)
{
    void (*burn)(void) = (void (*)(void))arg;
    for (;;) {
        burn();
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
    weft_attr a = { .name = "burner-a" }, b = { .name = "burner-b" };
    long long ida = weft_go_attr(&a, burner, (void *)burn_a);
    long long idb = weft_go_attr(&b, burner, (void *)burn_b);
    weft_go(sleeper, NULL);
    printf("ready %lld %lld\n", ida, idb);
    fflush(stdout);
    for (;;)
        weft_sleep(100000000);
}

int main(void)
{
    weft_maxprocs(2);
    return weft_main(start, NULL);
}
