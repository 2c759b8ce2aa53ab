/*
 * prog_lockcycle.c — goroutines (and a plain thread) that deadlock on
 * weft_mutexes in a cycle, or wait long without one, for
 * test_lockcycle.c.  argv[1] picks the scenario.  Each prints the
 * addresses of its mutexes and the ids of its goroutines on stdout, and
 * main returns once the cycle has been reported (or, where there is none
 * to report, after 300 ms), printing "<mode>: done".  Main sleeps while it
 * waits, so a timer is always pending: the all-goroutines-asleep check
 * stays quiet and only the cycle report can speak.
 */
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <weft.h>

/* Cycles reported so far (runtime/lockcycle.h; linked statically, so the
 * hidden symbol resolves): main waits for the report to be out before it
 * returns, because the end of weft_main also ends the symbolizer that a
 * plain thread's report may still be using. */
extern unsigned long weft__lockcycles;

static weft_mutex mu[3] = { WEFT_MUTEX_INIT, WEFT_MUTEX_INIT, WEFT_MUTEX_INIT };
static weft_rwmutex rwmu = WEFT_RWMUTEX_INIT;
static weft_wg holding = WEFT_WG_INIT;      /* everyone holds their first mutex */
static weft_wg finished = WEFT_WG_INIT;

/* Ring member i: locks mu[i], waits until every member holds its own,
 * then locks mu[(i + 1) % n]. */
static int ringn;

static void ring_member(void *arg)
{
    int i = (int)(intptr_t)arg;
    weft_mutex_lock(&mu[i]);
    printf("goroutine %lld holds %p\n", (long long)weft_id(), (void *)&mu[i]);
    fflush(stdout);
    weft_wg_done(&holding);
    weft_wg_wait(&holding);
    weft_mutex_lock(&mu[(i + 1) % ringn]);     /* never returns */
    printf("goroutine %lld got its second mutex\n", (long long)weft_id());  /* (no tail call) */
}

static void ring(int n)
{
    ringn = n;
    weft_wg_add(&holding, n);
    for (int i = 0; i < n; i++)
        weft_go(ring_member, (void *)(intptr_t)i);
}

/* A plain thread holds mu[0] and blocks on mu[1]; a goroutine holds mu[1]
 * and blocks on mu[0].  last: the thread blocks 50 ms after the goroutine,
 * so it closes the cycle and reports it. */
static void *thread_member(void *arg)
{
    bool last = arg != NULL;
    weft_mutex_lock(&mu[0]);
    weft_wg_done(&holding);
    weft_wg_wait(&holding);
    if (last)
        weft_sleep(50 * 1000 * 1000);
    weft_mutex_lock(&mu[1]);                    /* never returns */
    puts("the thread got its second mutex");
    return NULL;
}

static void thread_cycle(bool last)
{
    ringn = 2;
    weft_wg_add(&holding, 2);
    pthread_t t;
    pthread_create(&t, NULL, thread_member, last ? &ringn : NULL);
    pthread_detach(t);
    weft_go(ring_member, (void *)(intptr_t)1);
}

/* The writer lock of a weft_rwmutex in an ABBA with a mutex. */
static void rw_writer(void *arg)
{
    (void)arg;
    weft_rwmutex_lock(&rwmu);
    weft_wg_done(&holding);
    weft_wg_wait(&holding);
    weft_mutex_lock(&mu[0]);
    puts("the writer got the mutex");
}

static void rw_locker(void *arg)
{
    (void)arg;
    weft_mutex_lock(&mu[0]);
    weft_wg_done(&holding);
    weft_wg_wait(&holding);
    weft_rwmutex_lock(&rwmu);
    puts("the locker got the rwmutex");
}

/* Long waits without a cycle: a holder that sleeps 300 ms before it
 * unlocks, a chain of waiters behind it, and goroutines taking two
 * mutexes in one order, flat out, on every P. */
static void slow_holder(void *arg)
{
    (void)arg;
    weft_mutex_lock(&mu[0]);
    weft_wg_done(&holding);
    weft_sleep(300 * 1000 * 1000);
    weft_mutex_unlock(&mu[0]);
    weft_wg_done(&finished);
}

static void chain_waiter(void *arg)
{
    (void)arg;
    weft_wg_wait(&holding);
    weft_mutex_lock(&mu[1]);
    weft_mutex_lock(&mu[0]);                    /* waits for slow_holder */
    weft_mutex_unlock(&mu[0]);
    weft_mutex_unlock(&mu[1]);
    weft_wg_done(&finished);
}

static void ordered(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        weft_mutex_lock(&mu[1]);
        weft_mutex_lock(&mu[2]);
        weft_mutex_unlock(&mu[2]);
        weft_mutex_unlock(&mu[1]);
        weft_mutex_lock(&mu[2]);
        if (i % 64 == 0)
            weft_yield();
        weft_mutex_unlock(&mu[2]);
    }
    weft_wg_done(&finished);
}

static void live(void)
{
    weft_maxprocs(2);
    weft_wg_add(&holding, 1);
    weft_wg_add(&finished, 1 + 4 + 8);
    weft_go(slow_holder, NULL);
    for (int i = 0; i < 4; i++)
        weft_go(chain_waiter, NULL);
    for (int i = 0; i < 8; i++)
        weft_go(ordered, NULL);
    weft_wg_wait(&finished);
}

static void mainfn(void *arg)
{
    const char *mode = arg;
    printf("mutexes %p %p %p rwmutex %p\n", (void *)&mu[0], (void *)&mu[1], (void *)&mu[2], (void *)&rwmu);
    fflush(stdout);
    if (strcmp(mode, "abba") == 0) {
        ring(2);
    } else if (strcmp(mode, "ring") == 0) {
        ring(3);
    } else if (strcmp(mode, "self") == 0) {
        ring(1);    /* locks mu[0], then mu[0] again */
    } else if (strcmp(mode, "thread") == 0) {
        thread_cycle(false);
    } else if (strcmp(mode, "threadlast") == 0) {
        thread_cycle(true);
    } else if (strcmp(mode, "rwmutex") == 0) {
        weft_wg_add(&holding, 2);
        weft_go(rw_writer, NULL);
        weft_go(rw_locker, NULL);
    } else if (strcmp(mode, "live") == 0) {
        live();
    } else {
        printf("unknown mode %s\n", mode);
        return;
    }
    const char *sd = getenv("SCHEDDEBUG");
    if (strcmp(mode, "live") == 0 || (sd && strstr(sd, "lockcycle=0"))) {
        weft_sleep(300 * 1000 * 1000);     /* nothing to report: give it time to be wrong */
    } else {
        while (__atomic_load_n(&weft__lockcycles, __ATOMIC_ACQUIRE) == 0)
            weft_sleep(10 * 1000 * 1000);
    }
    printf("%s: done\n", mode);
    fflush(stdout);
    if (getenv("LOCKCYCLE_QUIT"))
        raise(SIGQUIT);     /* the dump ends with the cycles found */
}

int main(int argc, char **argv)
{
    return weft_main(mainfn, argc > 1 ? argv[1] : "abba");
}
