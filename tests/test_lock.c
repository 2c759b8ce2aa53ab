/*
 * test_lock.c — the runtime's own mutex (lock.c): mutual exclusion and no
 * lost wake-up when holders sleep in the critical section and waiters go
 * to sleep on the futex, under both unlock protocols (membarrier-backed
 * fence-free unlock, and the full-fence fallback).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>

#include "runtime.h"

#define NTHREADS 8
#define NITER    400000

static weft__mutex mu = WEFT__MUTEX_INIT(LOCKRANK_TEST);
static volatile long counter;   /* only ever touched under mu */
static volatile long inside;    /* 1 while someone holds mu */
static AO_t overlaps;

static void *hammer(void *arg)
{
    (void)arg;
    for (long i = 0; i < NITER; i++) {
        weft__lock(&mu);
        if (inside != 0)
            AO_fetch_and_add1(&overlaps);
        inside = 1;
        long c = counter;
        /* Now and then hold the lock across a yield, so that the others
         * exhaust their spinning and sleep on the futex. */
        if ((i & 255) == 0)
            sched_yield();
        counter = c + 1;
        inside = 0;
        weft__unlock(&mu);
    }
    return NULL;
}

static void torture(void)
{
    AO_t sleeps0 = AO_load(&weft__lock_sleeps);
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(AO_load(&overlaps), 0, "two threads held the lock at once");
    cr_assert_eq(counter, (long)NTHREADS * NITER, "lost updates: %ld", counter);
    cr_assert_eq(mu.key, 0, "lock left held");
    cr_assert_eq(mu.sleepers & WEFT__SLEEPERS_MASK, 0, "sleeper count left at %u",
                 mu.sleepers & WEFT__SLEEPERS_MASK);
    /* The test means nothing unless the sleeping path ran. */
    cr_assert_gt(AO_load(&weft__lock_sleeps) - sleeps0, 0, "no locker ever slept");
}

/* A lost wake-up hangs a thread: the timeout is the failure. */
Test(lock, fence_free_unlock_excludes_and_wakes, .timeout = 120)
{
    cr_assert(weft__lock_asymfence, "membarrier(2) unavailable: the fallback is tested below");
    torture();
}

Test(lock, full_fence_unlock_excludes_and_wakes, .timeout = 120)
{
    weft__lock_asymfence = false;   /* before any thread takes a lock */
    torture();
}

Test(lock, trylock_fails_while_held)
{
    weft__mutex l = WEFT__MUTEX_INIT(LOCKRANK_TEST);
    cr_assert(weft__trylock(&l));
    cr_assert_not(weft__trylock(&l));
    weft__unlock(&l);
    cr_assert(weft__trylock(&l));
    weft__unlock(&l);
}

Test(lock, unlock_of_unlocked_lock_throws, .exit_code = 2, .timeout = 30)
{
    weft__mutex l = WEFT__MUTEX_INIT(LOCKRANK_TEST);
    weft__unlock(&l);
}
