/*
 * target_burn2 — two threads burning CPU in two known functions, burn_alpha
 * and burn_beta; the main thread waits in pthread_join.  Prints "ready"
 * once both burners run.  With an argument N it instead exits with status 7
 * after N seconds (the -- CMD test).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;
static volatile int running;

__attribute__((noinline)) static void burn_alpha(void)
{
    __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
    for (;;)
        for (unsigned long i = 0; i < 1000000; i++)
            sink += i * 7;
}

__attribute__((noinline)) static void burn_beta(void)
{
    __atomic_add_fetch(&running, 1, __ATOMIC_SEQ_CST);
    for (;;)
        for (unsigned long i = 0; i < 1000000; i++)
            sink ^= i * 13;
}

static void *alpha_main(void *arg)
{
    (void)arg;
    burn_alpha();
    return NULL;
}

static void *beta_main(void *arg)
{
    (void)arg;
    burn_beta();
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t a, b;
    pthread_create(&a, NULL, alpha_main, NULL);
    pthread_create(&b, NULL, beta_main, NULL);
    while (__atomic_load_n(&running, __ATOMIC_SEQ_CST) < 2)
        ;
    printf("ready\n");
    fflush(stdout);
    if (argc > 1) {
        double s = atof(argv[1]);
        struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
        while (nanosleep(&ts, &ts) != 0)
            ;
        exit(7);
    }
    pthread_join(a, NULL);
    return 0;
}
