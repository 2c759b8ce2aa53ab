/*
 * test_sync.c — Mutex, RWMutex, Cond, WaitGroup and Once, with goroutines
 * on all Ps and with plain threads mixed in.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "runtime.h"
#include "sema.h"

static void run(void (*fn)(void *), void *arg)
{
    cr_assert_eq(weft_main(fn, arg), 0);
}

/* ---- mutex torture: N x M increments give exactly N*M ------------------------- */

#define TN 64
#define TM 20000
static weft_mutex mu = WEFT_MUTEX_INIT;
static long counter;                /* protected by mu only */
static weft_wg wg = WEFT_WG_INIT;

static void incr(void *arg)
{
    (void)arg;
    for (int i = 0; i < TM; i++) {
        weft_mutex_lock(&mu);
        long v = counter;
        if (i % 97 == 0)
            weft_yield();           /* hold it across a switch sometimes */
        counter = v + 1;
        weft_mutex_unlock(&mu);
    }
    weft_wg_done(&wg);
}

static void *incr_thread(void *arg)
{
    incr(arg);
    return NULL;
}

static void torture_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    pthread_t t[2];
    weft_wg_add(&wg, TN + 2);
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, incr_thread, NULL);   /* plain threads too */
    for (int i = 0; i < TN; i++)
        cr_assert_gt(weft_go(incr, NULL), 0);
    weft_wg_wait(&wg);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(counter, (long)(TN + 2) * TM);
    cr_assert(weft_mutex_trylock(&mu));
    cr_assert(!weft_mutex_trylock(&mu));
    weft_mutex_unlock(&mu);
}

Test(sync, mutex_torture_counts_exactly, .timeout = 120)
{
    run(torture_main, NULL);
}

static void bad_unlock(void *arg)
{
    (void)arg;
    weft_mutex m = WEFT_MUTEX_INIT;
    weft_mutex_unlock(&m);
}

Test(sync, unlock_of_unlocked_mutex_panics, .exit_code = 2, .timeout = 30)
{
    run(bad_unlock, NULL);
}

/* ---- starvation: a waiter is not starved by a lock hog -------------------------- */

static atomic_long hog_stop, waiter_got;
static weft_mutex smu = WEFT_MUTEX_INIT;

static void hog(void *arg)
{
    (void)arg;
    while (!atomic_load(&hog_stop)) {
        weft_mutex_lock(&smu);
        weft_sleep(100 * 1000);     /* holds it 100 µs at a time */
        weft_mutex_unlock(&smu);
    }
}

static void waiter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        weft_mutex_lock(&smu);
        atomic_fetch_add(&waiter_got, 1);
        weft_mutex_unlock(&smu);
    }
}

static void starve_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_go(hog, NULL);
    weft_go(hog, NULL);
    weft_go(waiter, NULL);
    while (atomic_load(&waiter_got) < 20)
        weft_sleep(1000 * 1000);
    atomic_store(&hog_stop, 1);
}

Test(sync, starvation_mode_lets_a_waiter_in, .timeout = 60)
{
    run(starve_main, NULL);
}

/* ---- WaitGroup ----------------------------------------------------------------------- */

static atomic_long wg_ran;
static weft_wg wg2 = WEFT_WG_INIT;

static void wg_worker(void *arg)
{
    (void)arg;
    weft_yield();
    atomic_fetch_add(&wg_ran, 1);
    weft_wg_done(&wg2);
}

static void wg_main(void *arg)
{
    (void)arg;
    for (int round = 0; round < 50; round++) {
        atomic_store(&wg_ran, 0);
        weft_wg_add(&wg2, 200);
        for (int i = 0; i < 200; i++)
            weft_go(wg_worker, NULL);
        weft_wg_wait(&wg2);
        cr_assert_eq(atomic_load(&wg_ran), 200, "round %d", round);
    }
    weft_wg_wait(&wg2);     /* zero counter: returns at once */
}

Test(sync, waitgroup_waits_for_all, .timeout = 60)
{
    run(wg_main, NULL);
}

static void wg_negative(void *arg)
{
    (void)arg;
    weft_wg w = WEFT_WG_INIT;
    weft_wg_done(&w);
}

Test(sync, negative_waitgroup_counter_panics, .exit_code = 2, .timeout = 30)
{
    run(wg_negative, NULL);
}

/* ---- Cond -------------------------------------------------------------------------- */

static weft_mutex cmu = WEFT_MUTEX_INIT;
static weft_cond cv = WEFT_COND_INIT;
static int ready_flag;              /* cmu */
static int woken;                   /* cmu */
static weft_wg cwg = WEFT_WG_INIT;

static void cwaiter(void *arg)
{
    (void)arg;
    weft_mutex_lock(&cmu);
    while (!ready_flag)
        weft_cond_wait(&cv, &cmu);
    woken++;
    weft_mutex_unlock(&cmu);
    weft_wg_done(&cwg);
}

static void *cwaiter_thread(void *arg)
{
    cwaiter(arg);
    return NULL;
}

static void cond_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    pthread_t t;
    weft_wg_add(&cwg, 101);
    pthread_create(&t, NULL, cwaiter_thread, NULL);
    for (int i = 0; i < 100; i++)
        weft_go(cwaiter, NULL);
    weft_sleep(20 * 1000 * 1000);
    weft_mutex_lock(&cmu);
    ready_flag = 1;
    weft_cond_broadcast(&cv);
    weft_mutex_unlock(&cmu);
    weft_wg_wait(&cwg);
    pthread_join(t, NULL);
    cr_assert_eq(woken, 101);

    /* timedwait: nobody signals */
    weft_mutex_lock(&cmu);
    int64_t t0 = weft_nanotime();
    cr_assert_eq(weft_cond_timedwait(&cv, &cmu, 5 * 1000 * 1000), -ETIMEDOUT);
    cr_assert_geq(weft_nanotime() - t0, 5 * 1000 * 1000);
    weft_mutex_unlock(&cmu);
}

Test(sync, cond_broadcast_wakes_goroutines_and_threads, .timeout = 60)
{
    run(cond_main, NULL);
}

static atomic_long sig_woken;
static weft_wg swg = WEFT_WG_INIT;
static void sig_waiter(void *arg)
{
    (void)arg;
    weft_mutex_lock(&cmu);
    int r = weft_cond_timedwait(&cv, &cmu, 10LL * 1000 * 1000 * 1000);
    weft_mutex_unlock(&cmu);
    if (r == 0)
        atomic_fetch_add(&sig_woken, 1);
    weft_wg_done(&swg);
}

static void signal_main(void *arg)
{
    (void)arg;
    weft_wg_add(&swg, 10);
    for (int i = 0; i < 10; i++)
        weft_go(sig_waiter, NULL);
    weft_sleep(20 * 1000 * 1000);
    for (int i = 0; i < 10; i++) {
        weft_mutex_lock(&cmu);
        weft_cond_signal(&cv);
        weft_mutex_unlock(&cmu);
        weft_sleep(1000 * 1000);
        cr_assert_eq(atomic_load(&sig_woken), i + 1, "signal %d woke %ld", i, atomic_load(&sig_woken));
    }
    weft_wg_wait(&swg);
}

Test(sync, cond_signal_wakes_one_at_a_time, .timeout = 60)
{
    run(signal_main, NULL);
}

/* ---- RWMutex ------------------------------------------------------------------------ */

static weft_rwmutex rw = WEFT_RWMUTEX_INIT;
static atomic_long readers_in, writers_in, rw_bad, max_readers;
static weft_wg rwg = WEFT_WG_INIT;

static void rw_worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        if ((i + id) % 10 == 0) {
            weft_rwmutex_lock(&rw);
            if (atomic_fetch_add(&writers_in, 1) != 0 || atomic_load(&readers_in) != 0)
                atomic_fetch_add(&rw_bad, 1);
            weft_yield();
            atomic_fetch_sub(&writers_in, 1);
            weft_rwmutex_unlock(&rw);
        } else {
            weft_rwmutex_rlock(&rw);
            long r = atomic_fetch_add(&readers_in, 1) + 1;
            if (atomic_load(&writers_in) != 0)
                atomic_fetch_add(&rw_bad, 1);
            long m = atomic_load(&max_readers);
            while (r > m && !atomic_compare_exchange_weak(&max_readers, &m, r))
                ;
            weft_yield();
            atomic_fetch_sub(&readers_in, 1);
            weft_rwmutex_runlock(&rw);
        }
    }
    weft_wg_done(&rwg);
}

static void rw_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_wg_add(&rwg, 16);
    for (long i = 0; i < 16; i++)
        weft_go(rw_worker, (void *)(intptr_t)i);
    weft_wg_wait(&rwg);
    cr_assert_eq(atomic_load(&rw_bad), 0, "a writer overlapped someone");
    cr_assert_gt(atomic_load(&max_readers), 1, "readers never shared the lock");
}

Test(sync, rwmutex_readers_share_writers_exclude, .timeout = 60)
{
    run(rw_main, NULL);
}

/* ---- Once ----------------------------------------------------------------------------- */

static atomic_long once_calls, once_seen;
static weft_once once = WEFT_ONCE_INIT;
static weft_wg owg = WEFT_WG_INIT;

static void init_fn(void)
{
    weft_sleep(1000 * 1000);    /* slow: the others must wait for it */
    atomic_fetch_add(&once_calls, 1);
}

static void once_worker(void *arg)
{
    (void)arg;
    weft_once_do(&once, init_fn);
    atomic_fetch_add(&once_seen, atomic_load(&once_calls));
    weft_wg_done(&owg);
}

static void once_main(void *arg)
{
    (void)arg;
    weft_wg_add(&owg, 100);
    for (int i = 0; i < 100; i++)
        weft_go(once_worker, NULL);
    weft_wg_wait(&owg);
    cr_assert_eq(atomic_load(&once_calls), 1);
    cr_assert_eq(atomic_load(&once_seen), 100, "every caller returns after fn ran");
}

Test(sync, once_runs_exactly_once, .timeout = 60)
{
    run(once_main, NULL);
}

/* ---- a semaphore wait with a deadline (park.c's one timeout) ------------------ */

static uint32_t ts_sema;
static void ts_releaser(void *arg)
{
    (void)arg;
    weft_sleep(2 * 1000 * 1000);
    weft__semrelease(&ts_sema, false);
}

static void *ts_thread(void *arg)
{
    (void)arg;
    /* A plain thread times out the same way. */
    int64_t t0 = weft_nanotime();
    bool got = weft__semacquire(&ts_sema, false, waitReasonSemacquire, t0 + 3 * 1000 * 1000);
    cr_assert(!got);
    cr_assert_geq(weft_nanotime() - t0, 3 * 1000 * 1000);
    return NULL;
}

static void ts_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_nanotime();
    cr_assert(!weft__semacquire(&ts_sema, false, waitReasonSemacquire, t0 + 5 * 1000 * 1000),
              "nobody releases: it times out without a unit");
    cr_assert_geq(weft_nanotime() - t0, 5 * 1000 * 1000);
    weft_go(ts_releaser, NULL);
    cr_assert(weft__semacquire(&ts_sema, false, waitReasonSemacquire, weft_nanotime() + 60LL * 1000000000),
              "a release before the deadline hands it the unit");
    cr_assert_eq(ts_sema, 0);
    pthread_t t;
    pthread_create(&t, NULL, ts_thread, NULL);
    pthread_join(t, NULL);
    weft__semrelease(&ts_sema, false);  /* no waiter left: the unit stays */
    cr_assert_eq(ts_sema, 1);
}

Test(sync, a_semaphore_wait_times_out_at_its_deadline, .timeout = 30)
{
    run(ts_main, NULL);
}
