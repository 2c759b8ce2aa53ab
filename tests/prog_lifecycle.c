/*
 * prog_lifecycle.c — a whole runtime lifetime, run under valgrind by ctest:
 * goroutines on several Ps, odd stack sizes, a locked goroutine, a
 * syscall hand-off, per-G storage with destructors, a GOMAXPROCS resize,
 * goroutines still runnable when main returns, and a second weft_main.
 * valgrind must report no error and no leak once main() returns.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <weft.h>

static atomic_long done;
static int key;

static void freeit(void *v) { free(v); }

static void worker(void *arg)
{
    long n = (long)(intptr_t)arg;
    weft_local_set(key, malloc(16));
    for (long i = 0; i < n % 5; i++)
        weft_yield();
    if (n % 7 == 0) {
        weft_syscall_enter();
        usleep(100);
        weft_syscall_exit();
    }
    atomic_fetch_add(&done, 1);
}

static void locked(void *arg)
{
    (void)arg;
    weft_lock_thread();
    for (int i = 0; i < 10; i++)
        weft_yield();
    weft_unlock_thread();
    atomic_fetch_add(&done, 1);
}

static void forever(void *arg)
{
    (void)arg;
    for (;;)
        weft_yield();
}

static void mainfn(void *arg)
{
    long n = (long)(intptr_t)arg;
    weft_maxprocs(2);
    weft_attr big = { .stack_size = 256 * 1024, .name = "big" };
    for (long i = 0; i < n; i++)
        weft_go_attr(i % 10 == 0 ? &big : NULL, worker, (void *)(intptr_t)i);
    weft_go(locked, NULL);
    weft_maxprocs(3);
    while (atomic_load(&done) < n + 1)
        weft_yield();
    weft_maxprocs(1);
    for (int i = 0; i < 4; i++)
        weft_go(forever, NULL);     /* abandoned when main returns */
    weft_yield();
}

int main(void)
{
    key = weft_local_key(freeit);
    for (int round = 0; round < 2; round++) {
        atomic_store(&done, 0);
        int r = weft_main(mainfn, (void *)(intptr_t)2000);
        if (r != 0) {
            fprintf(stderr, "weft_main: %d\n", r);
            return 1;
        }
    }
    puts("prog_lifecycle: ok");
    return 0;
}
