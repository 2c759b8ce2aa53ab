/*
 * target_churn — spawns and joins threads continuously (four at a time, each
 * spinning briefly in churn_work), counts the real-time signals SIGRTMIN it
 * receives, and prints "beat ROUNDS sigs=N" about every 20 ms.  Progress and
 * the signal count let a test see that weftprof neither stalled the process
 * nor swallowed a signal.  With the argument "zombie" the main thread hands
 * the loop to a new thread and calls pthread_exit, leaving a zombie leader.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile unsigned long sink;
static int nsig;

static void on_rt(int sig)
{
    (void)sig;
    __atomic_add_fetch(&nsig, 1, __ATOMIC_RELAXED);
}

__attribute__((noinline)) static void churn_work(void)
{
    for (unsigned long i = 0; i < 200000; i++)
        sink += i;
}

static void *worker(void *arg)
{
    (void)arg;
    churn_work();
    return NULL;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *churn(void *arg);

int main(int argc, char **argv)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_rt;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGRTMIN, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    if (argc > 1 && strcmp(argv[1], "zombie") == 0) {
        pthread_t t;
        pthread_create(&t, NULL, churn, NULL);
        pthread_exit(NULL);
    }
    return churn(NULL) != NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    long rounds = 0, last = 0;
    for (;;) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)
            pthread_create(&t[i], NULL, worker, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
        rounds++;
        long now = now_ms();
        if (now - last >= 20) {
            last = now;
            printf("beat %ld sigs=%d\n", rounds, __atomic_load_n(&nsig, __ATOMIC_RELAXED));
        }
    }
    return NULL;
}
