/*
 * test_sched.c — the scheduler through the public API, mirroring Go's
 * proc_test.go where it applies.  Each test boots its own runtime with
 * weft_main (Criterion runs every test in its own process).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "park.h"

static void run(void (*fn)(void *), void *arg)
{
    cr_assert_eq(weft_main(fn, arg), 0);
}

static void wait_until(atomic_long *v, long want)
{
    while (atomic_load(v) < want)
        weft_yield();
}

/* ---- parallelism (TestGoroutineParallelism) ---------------------------------- */

#define PAR_P 2
#define PAR_N 20000
static atomic_long par_x, par_done;

static void par_worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (long i = 0; i < PAR_N; i++) {
        /* Spin without yielding: only progresses if all PAR_P run at once. */
        while (atomic_load(&par_x) % PAR_P != id)
            ;
        atomic_fetch_add(&par_x, 1);
    }
    atomic_fetch_add(&par_done, 1);
}

static void par_main(void *arg)
{
    (void)arg;
    weft_maxprocs(PAR_P);
    for (long i = 0; i < PAR_P; i++)
        cr_assert_gt(weft_go(par_worker, (void *)(intptr_t)i), 0);
    wait_until(&par_done, PAR_P);
    cr_assert_eq(atomic_load(&par_x), PAR_P * PAR_N);
}

Test(sched, goroutine_parallelism_on_all_ps, .timeout = 120)
{
    run(par_main, NULL);
}

/* ---- Gs queued behind a hog run elsewhere ------------------------------------ */

/* Go preempts a G that runs without reaching a scheduling point; weft cannot,
 * so sysmon moves the Gs queued on that P to the global queue.  The worst
 * case: the other P runs a G that only yields, so it never steals (its local
 * queue is never empty) and B, queued behind the hog, would wait forever.
 * Each round B lands either there (only sysmon's rescue can run it) or, if
 * the yielder shares the hog's P, in reach of the idle P's thief. */
#define HOG_ROUNDS 8
static atomic_long hog_stop, hog_ystarted, hog_ran;

static void hog_yielder(void *arg)
{
    (void)arg;
    atomic_store(&hog_ystarted, 1);
    while (!atomic_load(&hog_stop))
        weft_yield();
}

static void hog_b(void *arg)
{
    (void)arg;
    atomic_fetch_add(&hog_ran, 1);
}

static void hog_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    cr_assert_gt(weft_go(hog_yielder, NULL), 0);
    wait_until(&hog_ystarted, 1);
    for (long r = 1; r <= HOG_ROUNDS; r++) {
        cr_assert_gt(weft_go(hog_b, NULL), 0);
        /* Hog: no scheduling point until B has run on the other P. */
        while (atomic_load(&hog_ran) < r)
            ;
    }
    atomic_store(&hog_stop, 1);
}

Test(sched, gs_queued_behind_a_hog_run_elsewhere, .timeout = 60)
{
    run(hog_main, NULL);
}

/* ---- a yielding spinner cannot starve others (TestYieldProgress) ------------ */

static atomic_long yp_stop, yp_ack, yp_count;

static void yp_spinner(void *arg)
{
    bool locked = arg != NULL;
    if (locked)
        weft_lock_thread();
    while (!atomic_load(&yp_stop))
        weft_yield();
    atomic_store(&yp_ack, 1);
}

static void yp_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        atomic_fetch_add(&yp_count, 1);
        weft_yield();
    }
}

static void yp_main(void *arg)
{
    weft_maxprocs(1);
    cr_assert_gt(weft_go(yp_spinner, arg), 0);
    cr_assert_gt(weft_go(yp_worker, NULL), 0);
    wait_until(&yp_count, 1000);
    atomic_store(&yp_stop, 1);
    wait_until(&yp_ack, 1);
}

Test(sched, yielding_spinner_cannot_starve_another_g, .timeout = 60)
{
    run(yp_main, NULL);
}

Test(sched, locked_yielding_spinner_cannot_starve_another_g, .timeout = 60)
{
    run(yp_main, (void *)1);
}

/* ---- locked goroutines ------------------------------------------------------- */

static atomic_long lk_bad, lk_done, lk_noise;

static void lk_locked(void *arg)
{
    (void)arg;
    weft_lock_thread();
    pthread_t self = pthread_self();
    long tid = syscall(SYS_gettid);
    for (int i = 0; i < 2000; i++) {
        weft_yield();
        if (!pthread_equal(self, pthread_self()) || syscall(SYS_gettid) != tid)
            atomic_fetch_add(&lk_bad, 1);
        if (i % 100 == 0) {
            weft_syscall_enter();
            usleep(100);
            weft_syscall_exit();
            if (syscall(SYS_gettid) != tid)
                atomic_fetch_add(&lk_bad, 1);
        }
    }
    /* Nesting: two locks need two unlocks. */
    weft_lock_thread();
    weft_unlock_thread();
    cr_assert_not_null(weft__getg()->lockedm);
    weft_unlock_thread();
    cr_assert_null(weft__getg()->lockedm);
    atomic_fetch_add(&lk_done, 1);
}

static void lk_noisy(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        atomic_fetch_add(&lk_noise, 1);
        weft_yield();
    }
}

static void lk_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    for (int i = 0; i < 4; i++)
        cr_assert_gt(weft_go(lk_locked, NULL), 0);
    for (int i = 0; i < 20; i++)
        cr_assert_gt(weft_go(lk_noisy, NULL), 0);
    wait_until(&lk_done, 4);
    wait_until(&lk_noise, 20 * 2000);
    cr_assert_eq(atomic_load(&lk_bad), 0, "a locked G ran on another thread");
}

Test(sched, locked_g_always_runs_on_its_own_m, .timeout = 120)
{
    run(lk_main, NULL);
}

/* ---- goroutine counting --------------------------------------------------------- */

#define NG 1000
static G *ng_parked[NG];
static atomic_long ng_nparked, ng_finished;

/* Runs once the worker is off its stack: only then may main ready it. */
static bool ng_park_commit(G *gp, void *arg)
{
    (void)gp;
    (void)arg;
    atomic_fetch_add(&ng_nparked, 1);
    return true;
}

static void ng_worker(void *arg)
{
    ng_parked[(intptr_t)arg] = weft__getg();
    weft__park(weft__waiter_get(weft__getg(), NULL, waitReasonSemacquire), ng_park_commit, arg, waitReasonSemacquire, 0);
    atomic_fetch_add(&ng_finished, 1);
}

static void ng_main(void *arg)
{
    (void)arg;
    cr_assert_eq(weft_num_goroutine(), 1);
    for (intptr_t i = 0; i < NG; i++)
        cr_assert_gt(weft_go(ng_worker, (void *)i), 0);
    wait_until(&ng_nparked, NG);
    cr_assert_eq(weft_num_goroutine(), NG + 1);
    for (int i = 0; i < NG; i++)
        weft__ready(ng_parked[i], false);
    wait_until(&ng_finished, NG);
    /* The finished Gs leave in their switch-out; give them a moment. */
    for (int i = 0; i < 1000 && weft_num_goroutine() != 1; i++)
        weft_yield();
    cr_assert_eq(weft_num_goroutine(), 1);
}

Test(sched, num_goroutine_counts_live_gs, .timeout = 60)
{
    run(ng_main, NULL);
}

/* ---- a million spawns, each runs exactly once ------------------------------------ */

#define MILLION 1000000
static atomic_uchar *mil_ran;
static atomic_long mil_count;

static void mil_worker(void *arg)
{
    atomic_fetch_add(&mil_ran[(intptr_t)arg], 1);
    atomic_fetch_add(&mil_count, 1);
}

static int64_t *mil_ids;

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void mil_main(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < MILLION; i++) {
        mil_ids[i] = weft_go(mil_worker, (void *)i);
        cr_assert_gt(mil_ids[i], 1, "spawn %ld: %ld", (long)i, (long)mil_ids[i]);
    }
    wait_until(&mil_count, MILLION);
    for (int i = 0; i < MILLION; i++)
        cr_assert_eq(atomic_load(&mil_ran[i]), 1, "G %d ran %d times", i, atomic_load(&mil_ran[i]));
    /* goids come from per-P batches (as in Go), so they are unique but not
     * in spawn order when the spawner moves between Ps. */
    qsort(mil_ids, MILLION, sizeof *mil_ids, cmp64);
    for (int i = 1; i < MILLION; i++)
        cr_assert_neq(mil_ids[i], mil_ids[i - 1], "goid %ld handed out twice", (long)mil_ids[i]);
}

Test(sched, million_spawns_each_run_exactly_once, .timeout = 300)
{
    mil_ran = calloc(MILLION, 1);
    mil_ids = calloc(MILLION, sizeof *mil_ids);
    run(mil_main, NULL);
    free(mil_ran);
    free(mil_ids);
}

/* ---- resize under load (TestStopTheWorldDeadlock, GOMAXPROCS part) -------------- */

#define RS_GS 20000
static atomic_uchar *rs_ran;
static atomic_long rs_count, rs_spawned;

static void rs_leaf(void *arg)
{
    for (int i = 0; i < 3; i++)
        weft_yield();
    atomic_fetch_add(&rs_ran[(intptr_t)arg], 1);
    atomic_fetch_add(&rs_count, 1);
}

static void rs_spawner(void *arg)
{
    (void)arg;
    for (;;) {
        long i = atomic_fetch_add(&rs_spawned, 1);
        if (i >= RS_GS)
            return;
        cr_assert_gt(weft_go(rs_leaf, (void *)(intptr_t)i), 0);
        if (i % 7 == 0)
            weft_yield();
    }
}

static void rs_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 4; i++)
        weft_go(rs_spawner, NULL);
    static const int sizes[] = { 1, 3, 2, 4, 1, 2, 5, 1, 3 };
    int prev = weft_maxprocs(0);
    for (int r = 0; r < 60; r++) {
        int n = sizes[r % 9];
        int got = weft_maxprocs(n);
        cr_assert_eq(got, prev, "weft_maxprocs returns the previous value");
        prev = n;
        weft_yield();
    }
    weft_maxprocs(2);
    wait_until(&rs_count, RS_GS);
    for (int i = 0; i < RS_GS; i++)
        cr_assert_eq(atomic_load(&rs_ran[i]), 1, "G %d ran %d times", i, atomic_load(&rs_ran[i]));
}

Test(sched, maxprocs_resize_under_load_loses_no_g, .timeout = 120)
{
    rs_ran = calloc(RS_GS, 1);
    run(rs_main, NULL);
    free(rs_ran);
}

/* ---- syscall hand-off ------------------------------------------------------------ */

static int sc_pipe[2];
static atomic_long sc_in, sc_out, sc_other;

static void sc_blocker(void *arg)
{
    (void)arg;
    char c;
    atomic_store(&sc_in, 1);
    weft_syscall_enter();
    ssize_t r = read(sc_pipe[0], &c, 1);     /* nobody writes until main says so */
    weft_syscall_exit();
    cr_assert_eq(r, 1);
    atomic_store(&sc_out, 1);
}

static void sc_other_g(void *arg)
{
    (void)arg;
    atomic_store(&sc_other, 1);
}

static void sc_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    cr_assert_eq(pipe(sc_pipe), 0);
    weft_go(sc_blocker, NULL);
    wait_until(&sc_in, 1);
    /* The blocker holds the only P's M in read(); this G and the next only
     * run because sysmon hands the P to another M. */
    weft_go(sc_other_g, NULL);
    wait_until(&sc_other, 1);
    cr_assert_eq(atomic_load(&sc_out), 0);
    cr_assert_eq(write(sc_pipe[1], "x", 1), 1);
    wait_until(&sc_out, 1);
}

Test(sched, blocking_syscall_hands_off_the_p, .timeout = 60)
{
    run(sc_main, NULL);
}

/* ---- a syscall entered during a stop the world (Go's entersyscall_gcwait) ------- */

/* A goroutine that enters a syscall while the world is being stopped
 * counts its own P as stopped, under sched.lock.  Its thread may get the
 * lock late: here the test hook holds it 2 ms there, as a preemption
 * would, while sysmon retakes its P for the stop, the stop ends, the
 * world restarts and the P goes to another goroutine's syscall.  The late
 * count must then leave that P alone: taken, it stayed Pgcstop in a
 * running world with stopwait at -1, and the next stop waited for it for
 * ever (a hang seen in test_cpuprof's stress test).  Without the check
 * this hung in every run. */

#define SG_SYSCALLERS 8
#define SG_ROUNDS 200
static atomic_int sg_stop;
static atomic_long sg_late;
static weft_wg sg_wg;

static void sg_hook(void)
{
    atomic_fetch_add(&sg_late, 1);
    usleep(2000);
}

static void sg_syscaller(void *arg)
{
    (void)arg;
    while (!atomic_load(&sg_stop)) {
        /* Running between syscalls, with no scheduling point before the
         * next: a stop that starts now sees this P running, and it is the
         * syscall entry that stops it. */
        for (int64_t end = weft_nanotime() + 50 * 1000; weft_nanotime() < end;)
            ;
        weft_syscall_enter();
        usleep(100);
        weft_syscall_exit();
    }
    weft_wg_done(&sg_wg);
}

static void sg_main(void *arg)
{
    (void)arg;
    weft_maxprocs(3);
    weft__syscall_gcwait_testhook = sg_hook;
    weft_wg_add(&sg_wg, SG_SYSCALLERS);
    for (int i = 0; i < SG_SYSCALLERS; i++)
        weft_go(sg_syscaller, NULL);
    for (int r = 0; r < SG_ROUNDS; r++) {
        weft_maxprocs(2 + r % 2);
        weft_sleep(500 * 1000);
    }
    atomic_store(&sg_stop, 1);
    weft_wg_wait(&sg_wg);
    weft__syscall_gcwait_testhook = NULL;
    weft__lock(&sched.lock);
    int32_t stopwait = sched.stopwait;
    weft__unlock(&sched.lock);
    cr_assert_eq(stopwait, 0, "no P was counted as stopped outside a stop");
    cr_log_info("syscalls entered during a stop: %ld", atomic_load(&sg_late));
    cr_assert_gt(atomic_load(&sg_late), 0, "syscalls were entered during stops");
}

Test(sched, syscall_entered_during_a_stop_leaves_the_restarted_p_alone, .timeout = 60)
{
    run(sg_main, NULL);
}

/* ---- sysmon flags a long-running G -------------------------------------------- */

static void pre_main(void *arg)
{
    (void)arg;
    G *gp = weft__getg();
    AO_store(&gp->preempt, 0);
    /* Run without a scheduling point until sysmon notices (it must, after
     * 10 ms of the same G on this P); bounded so a bug fails, not hangs. */
    int64_t start = weft_nanotime();
    while (!AO_load(&gp->preempt) && weft_nanotime() - start < 20LL * 1000000000)
        ;
    cr_assert(AO_load(&gp->preempt), "sysmon never flagged a G that ran for 20 s");
    weft_yield();   /* honours the flag: through the global queue */
    cr_assert_eq(AO_load(&gp->preempt), 0, "the flag is consumed at the scheduling point");
}

Test(sched, sysmon_flags_long_running_g, .timeout = 60)
{
    run(pre_main, NULL);
}

/* ---- end of main: Ms exit, weft_main returns, twice ------------------------------- */

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static atomic_long em_started;
static void em_forever(void *arg)
{
    (void)arg;
    atomic_fetch_add(&em_started, 1);
    for (;;)
        weft_yield();   /* never returns; abandoned when main returns */
}

static int64_t em_goid;
static void em_main(void *arg)
{
    (void)arg;
    em_goid = weft_id();
    weft_maxprocs(2);
    for (int i = 0; i < 8; i++)
        weft_go(em_forever, NULL);
    wait_until(&em_started, 8);
}

Test(sched, end_of_main_stops_everything_and_can_restart, .timeout = 60)
{
    int before = count_threads();
    run(em_main, NULL);
    cr_assert_eq(count_threads(), before, "runtime threads must exit with main");
    cr_assert_eq(weft_id(), 0);
    int64_t first = em_goid;
    atomic_store(&em_started, 0);
    run(em_main, NULL);
    cr_assert_gt(em_goid, first, "goids are never reused");
    cr_assert_eq(count_threads(), before);
}

/* ---- lazy boot from a plain thread ----------------------------------------------- */

static atomic_long lz_ran;
static void lz_g(void *arg)
{
    (void)arg;
    cr_assert_gt(weft_id(), 0);
    atomic_fetch_add(&lz_ran, 1);
}

static void *lz_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        cr_assert_gt(weft_go(lz_g, NULL), 0);
    return NULL;
}

Test(sched, weft_go_from_plain_threads_boots_lazily, .timeout = 60)
{
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&t[i], NULL, lz_thread, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    while (atomic_load(&lz_ran) < 300)
        weft_yield();   /* outside a G: sched_yield */
    cr_assert_eq(weft_id(), 0);
    cr_assert_eq(weft_main(lz_g, NULL), -EBUSY, "a lazily started runtime has no main");
}
