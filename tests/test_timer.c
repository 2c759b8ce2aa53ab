/*
 * test_timer.c — weft_sleep and the per-P timer heaps: sleepers wake (never
 * early), in order, while other goroutines run, when every P is idle, and
 * a crowd of sleepers costs no CPU.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "park.h"

static void run(void (*fn)(void *), void *arg)
{
    cr_assert_eq(weft_main(fn, arg), 0);
}

/* ---- never early; while others run ------------------------------------------ */

static atomic_long spin_stop;

static void yielder(void *arg)
{
    (void)arg;
    while (!atomic_load(&spin_stop))
        weft_yield();
}

static void early_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    weft_go(yielder, NULL);     /* keeps the only P busy switching */
    for (int i = 0; i < 20; i++) {
        int64_t t0 = weft_nanotime();
        weft_sleep(2 * 1000 * 1000);
        cr_assert_geq(weft_nanotime() - t0, 2 * 1000 * 1000, "woke early");
    }
    atomic_store(&spin_stop, 1);
}

Test(timer, sleep_never_wakes_early_even_on_a_busy_p, .timeout = 60)
{
    run(early_main, NULL);
}

/* ---- order ----------------------------------------------------------------------- */

#define ORD 50
static atomic_long ord_next, ord_bad, ord_done;
static int64_t ord_base;

static void ord_sleeper(void *arg)
{
    long i = (long)(intptr_t)arg;
    /* Spawned last, wakes first.  The deadlines are fixed before any
     * sleeper runs, so an OS hiccup between two sleepers (a loaded
     * machine, a sanitizer build) cannot reorder them. */
    weft_sleep(ord_base + (ORD - i) * 3 * 1000 * 1000LL - weft_nanotime());
    long pos = atomic_fetch_add(&ord_next, 1);
    if (pos != ORD - 1 - i)
        atomic_fetch_add(&ord_bad, 1);
    atomic_fetch_add(&ord_done, 1);
}

static void ord_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    ord_base = weft_nanotime() + 200 * 1000 * 1000LL;   /* every sleeper has started by then */
    for (long i = 0; i < ORD; i++)
        weft_go(ord_sleeper, (void *)(intptr_t)i);
    while (atomic_load(&ord_done) < ORD)
        weft_sleep(1000 * 1000);
    cr_assert_eq(atomic_load(&ord_bad), 0, "sleepers woke out of deadline order");
}

Test(timer, sleepers_wake_in_deadline_order, .timeout = 60)
{
    run(ord_main, NULL);
}

/* ---- 100 000 sleepers, random times, all wake; idle costs no CPU --------------- */

#define CROWD 100000
static atomic_long crowd_done;

static void crowd_sleeper(void *arg)
{
    long i = (long)(intptr_t)arg;
    weft_sleep(((i * 7919) % 200 + 1) * 1000 * 1000LL);    /* 1..200 ms */
    atomic_fetch_add(&crowd_done, 1);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void crowd_main(void *arg)
{
    (void)arg;
    for (long i = 0; i < CROWD; i++)
        cr_assert_gt(weft_go(crowd_sleeper, (void *)(intptr_t)i), 0);
    /* main sleeps too: every P goes idle, and the Ms must sleep until the
     * next deadline rather than spin. */
    while (atomic_load(&crowd_done) < CROWD)
        weft_sleep(50 * 1000 * 1000);
    /* The last sleepers counted themselves but may still be on their way
     * out (another P, or this one under ASan): give them a moment. */
    for (int i = 0; i < 2000 && weft_num_goroutine() != 1; i++)
        weft_sleep(1000 * 1000);
    cr_assert_eq(weft_num_goroutine(), 1);
    /* Nothing to do for a second: the runtime must not burn CPU. */
    double c0 = cpu_seconds();
    weft_sleep(1000 * 1000 * 1000);
    double used = cpu_seconds() - c0;
    cr_assert_lt(used, 0.2, "an idle runtime used %.3f s of CPU in 1 s", used);
}

Test(timer, a_crowd_of_sleepers_all_wake_and_idle_costs_no_cpu, .timeout = 120)
{
    run(crowd_main, NULL);
}

/* ---- outside goroutines ----------------------------------------------------------- */

Test(timer, sleep_outside_a_goroutine_sleeps_the_thread)
{
    int64_t t0 = weft_nanotime();
    weft_sleep(5 * 1000 * 1000);
    cr_assert_geq(weft_nanotime() - t0, 5 * 1000 * 1000);
    weft_sleep(0);
    weft_sleep(-1);
}

/* ---- timeouts (park.c's one timeout helper) -------------------------------------- */

/* A wait on a queue of our own (as a primitive would): times out at the
 * deadline, or is ended by a waker first, in which case its timer must be
 * gone (a late fire would ready a goroutine that is not waiting). */
/* Ranked as a semaphore bucket, which is what this queue plays. */
static weft__mutex to_lock = WEFT__MUTEX_INIT(LOCKRANK_SEMAROOT);
static weft__waitq to_q;
static atomic_long to_woken;

static bool to_unlock(G *gp, void *arg)
{
    (void)gp;
    weft__unlock(arg);
    return true;
}

static int to_wait(int64_t ns)
{
    weft__waiter *w = weft__waiter_get(weft__getg(), NULL, waitReasonSemacquire);
    weft__sudog *sg = weft__acquiresudog(w, NULL);
    weft__lock(&to_lock);
    weft__waitq_push(&to_q, &to_lock, sg);
    w->waiting = sg;
    int r = weft__park(w, to_unlock, &to_lock, waitReasonSemacquire, weft__nanotime() + ns);
    w->waiting = NULL;
    cr_assert(r == 0 || w->param == sg);
    weft__releasesudog(sg);
    return r;
}

static void to_waker(void *arg)
{
    (void)arg;
    for (;;) {
        weft__lock(&to_lock);
        weft__sudog *sg = weft__waitq_pop(&to_q);
        weft__unlock(&to_lock);
        if (sg) {
            atomic_fetch_add(&to_woken, 1);     /* before the wake: main may run at once */
            weft__wake(sg, true);
            return;
        }
        weft_yield();
    }
}

static void to_main(void *arg)
{
    (void)arg;
    int64_t t0 = weft_nanotime();
    cr_assert_eq(to_wait(2 * 1000 * 1000), 0, "nobody woke it: it times out");
    cr_assert_geq(weft_nanotime() - t0, 2 * 1000 * 1000);
    cr_assert_null(to_q.first, "the timeout took it off the queue");

    weft_go(to_waker, NULL);
    cr_assert_eq(to_wait(60LL * 1000 * 1000 * 1000), 1, "the waker ended it");
    cr_assert_eq(atomic_load(&to_woken), 1);
    /* Its 60 s timer is gone: a sleep (which uses the same timer) ends on
     * its own time, and nothing readies us early. */
    t0 = weft_nanotime();
    weft_sleep(5 * 1000 * 1000);
    cr_assert_geq(weft_nanotime() - t0, 5 * 1000 * 1000);
}

Test(timer, timeouts_fire_once_and_a_wake_cancels_them, .timeout = 60)
{
    run(to_main, NULL);
}

/* ---- resize moves timers ------------------------------------------------------------ */

static atomic_long rz_done;
static void rz_sleeper(void *arg)
{
    (void)arg;
    weft_sleep(30 * 1000 * 1000);
    atomic_fetch_add(&rz_done, 1);
}

static void rz_main(void *arg)
{
    (void)arg;
    weft_maxprocs(4);
    for (int i = 0; i < 400; i++)
        weft_go(rz_sleeper, NULL);
    weft_yield();
    weft_maxprocs(1);       /* the timers of P1..P3 move to P0 */
    while (atomic_load(&rz_done) < 400)
        weft_sleep(5 * 1000 * 1000);
}

Test(timer, shrinking_maxprocs_keeps_every_timer, .timeout = 60)
{
    run(rz_main, NULL);
}

/* ---- a timeout too long to reach is "never" ---------------------------------------- */

/* now + INT64_MAX overflows: the deadline must saturate (Go's when()), not
 * wrap into the past and fire at once.  Goroutines park on timers; plain
 * threads sleep on their futex until a deadline. */
static atomic_long far_returned, far_waiting;
static weft_chan *far_ch;
static weft_mutex far_mu = WEFT_MUTEX_INIT;
static weft_cond far_cv = WEFT_COND_INIT;
static int far_results[4];
static int far_thread;        /* far_waiter's argument on the plain thread */

static void far_sleeper(void *arg)
{
    (void)arg;
    weft_sleep(INT64_MAX);
    atomic_fetch_add(&far_returned, 1);
}

/* Waits in a select, then in a cond; records both results.  A goroutine
 * (arg NULL) or a plain thread (arg non-NULL). */
static void *far_waiter(void *arg)
{
    int *res = arg ? &far_results[2] : &far_results[0];
    weft_case k = { .ch = far_ch, .dir = WEFT_RECV, .elem = NULL };
    atomic_fetch_add(&far_waiting, 1);
    res[0] = weft_select(&k, 1, INT64_MAX);
    weft_mutex_lock(&far_mu);
    atomic_fetch_add(&far_waiting, 1);
    res[1] = weft_cond_timedwait(&far_cv, &far_mu, INT64_MAX);
    weft_mutex_unlock(&far_mu);
    atomic_fetch_add(&far_returned, 1);
    return NULL;
}

static void far_waiter_g(void *arg) { (void)arg; far_waiter(NULL); }

static void far_main(void *arg)
{
    (void)arg;
    far_ch = weft_chan_new(sizeof(int), 0);
    weft_go(far_sleeper, NULL);
    weft_go(far_waiter_g, NULL);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, far_waiter, &far_thread), 0);
    while (atomic_load(&far_waiting) < 2)
        weft_sleep(1000 * 1000);
    weft_sleep(50 * 1000 * 1000);
    cr_assert_eq(atomic_load(&far_returned), 0, "an INT64_MAX timeout ended a wait");
    cr_assert_eq(atomic_load(&far_waiting), 2, "a select with an INT64_MAX timeout timed out");
    int v = 1;
    weft_chan_send(far_ch, &v);     /* one select each */
    weft_chan_send(far_ch, &v);
    while (atomic_load(&far_waiting) < 4)
        weft_sleep(1000 * 1000);
    weft_sleep(50 * 1000 * 1000);
    cr_assert_eq(atomic_load(&far_returned), 0, "a cond wait with an INT64_MAX timeout timed out");
    weft_mutex_lock(&far_mu);       /* both are inside weft_cond_timedwait */
    weft_cond_broadcast(&far_cv);
    weft_mutex_unlock(&far_mu);
    while (atomic_load(&far_returned) < 2)
        weft_sleep(1000 * 1000);
    weft_syscall_enter();
    pthread_join(th, NULL);
    weft_syscall_exit();
    for (int i = 0; i < 4; i++)
        cr_assert_eq(far_results[i], 0, "result %d: %d (select: the case; cond: not -ETIMEDOUT)", i, far_results[i]);
    cr_assert_eq(atomic_load(&far_returned), 2, "the INT64_MAX sleeper woke");
    weft_chan_free(far_ch);
}

Test(timer, a_timeout_too_long_to_reach_never_fires, .timeout = 60)
{
    run(far_main, NULL);
}
