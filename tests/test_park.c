/*
 * test_park.c — the one park path (park.c): every wait reason goes
 * through weft__park with a sudog from the P's cache; parking around it is
 * refused; sudogs survive many at once; and after weft_main returns, the
 * channels, mutexes, wait groups and conds goroutines were parked on work
 * from plain threads as if those waits had been cancelled.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "park.h"

#define SEC (1000LL * 1000 * 1000)

static G *findg(int64_t goid)
{
    for (G *gp = (G *)AO_load(&weft__allg); gp; gp = gp->allglink)
        if (gp->goid == goid)
            return gp;
    return NULL;
}

/* Waits until goroutine goid is parked with reason r. */
static G *parked_in(int64_t goid, weft__waitreason r)
{
    G *gp = findg(goid);
    cr_assert_not_null(gp);
    for (int i = 0; i < 100000; i++) {
        if (AO_load(&gp->atomicstatus) == Gwaiting && gp->waitreason == r)
            return gp;
        weft_yield();
        if (i > 1000)
            usleep(100);
    }
    cr_assert_fail("goroutine %lld never parked in [%s] (status %lu, reason %s)", (long long)goid,
                   weft__waitreason_str(r), (unsigned long)AO_load(&gp->atomicstatus),
                   weft__waitreason_str(gp->waitreason));
    return NULL;
}

/* ---- every wait reason parks through weft__park ---------------------------------- */

static weft_chan *wr_recv, *wr_send, *wr_sel1, *wr_sel2;
static weft_mutex wr_mu = WEFT_MUTEX_INIT;
static weft_rwmutex wr_rw = WEFT_RWMUTEX_INIT, wr_rw2 = WEFT_RWMUTEX_INIT;
static weft_wg wr_wg = WEFT_WG_INIT;
static weft_cond wr_cond = WEFT_COND_INIT;
static weft_mutex wr_condmu = WEFT_MUTEX_INIT;
static atomic_bool wr_condgo;
static int wr_pipe[2];
static atomic_long wr_done;

static void b_recv(void *a) { (void)a; int v; weft_chan_recv(wr_recv, &v); atomic_fetch_add(&wr_done, 1); }
static void b_send(void *a) { (void)a; int v = 1; weft_chan_send(wr_send, &v); atomic_fetch_add(&wr_done, 1); }
static void b_select(void *a)
{
    (void)a;
    int v;
    weft_case cs[2] = { { wr_sel1, WEFT_RECV, &v, false }, { wr_sel2, WEFT_RECV, &v, false } };
    cr_assert_geq(weft_select(cs, 2, -1), 0);
    atomic_fetch_add(&wr_done, 1);
}
static void b_sleep(void *a) { (void)a; weft_sleep(SEC / 2); atomic_fetch_add(&wr_done, 1); }
static void b_io(void *a)
{
    (void)a;
    char c;
    cr_assert_eq(weft_read(wr_pipe[0], &c, 1), 1);
    atomic_fetch_add(&wr_done, 1);
}
static void b_mutex(void *a) { (void)a; weft_mutex_lock(&wr_mu); weft_mutex_unlock(&wr_mu); atomic_fetch_add(&wr_done, 1); }
static void b_rlock(void *a) { (void)a; weft_rwmutex_rlock(&wr_rw); weft_rwmutex_runlock(&wr_rw); atomic_fetch_add(&wr_done, 1); }
static void b_wlock(void *a) { (void)a; weft_rwmutex_lock(&wr_rw2); weft_rwmutex_unlock(&wr_rw2); atomic_fetch_add(&wr_done, 1); }
static void b_wg(void *a) { (void)a; weft_wg_wait(&wr_wg); atomic_fetch_add(&wr_done, 1); }
static void b_cond(void *a)
{
    (void)a;
    weft_mutex_lock(&wr_condmu);
    while (!atomic_load(&wr_condgo))
        weft_cond_wait(&wr_cond, &wr_condmu);
    weft_mutex_unlock(&wr_condmu);
    atomic_fetch_add(&wr_done, 1);
}
static void b_nilrecv(void *a) { (void)a; int v; weft_chan_recv(NULL, &v); }
static void b_nilsend(void *a) { (void)a; int v = 0; weft_chan_send(NULL, &v); }
static void b_nocases(void *a) { (void)a; weft_select(NULL, 0, -1); }

static const struct {
    void (*fn)(void *);
    weft__waitreason r;
    bool queued;            /* waits with a sudog on a queue */
    bool ends;              /* the test ends the wait */
} blockers[] = {
    { b_recv, waitReasonChanReceive, true, true },
    { b_send, waitReasonChanSend, true, true },
    { b_select, waitReasonSelect, true, true },
    { b_sleep, waitReasonSleep, false, true },
    { b_io, waitReasonIOWait, true, true },
    { b_mutex, waitReasonSyncMutexLock, true, true },
    { b_rlock, waitReasonSyncRWMutexRLock, true, true },
    { b_wlock, waitReasonSyncRWMutexLock, true, true },
    { b_wg, waitReasonSyncWaitGroupWait, true, true },
    { b_cond, waitReasonSyncCondWait, true, true },
    { b_nilrecv, waitReasonChanReceiveNilChan, false, false },
    { b_nilsend, waitReasonChanSendNilChan, false, false },
    { b_nocases, waitReasonSelectNoCases, false, false },
};
#define NBLOCKERS (sizeof blockers / sizeof blockers[0])

static void reasons_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    wr_recv = weft_chan_new(sizeof(int), 0);
    wr_send = weft_chan_new(sizeof(int), 0);
    wr_sel1 = weft_chan_new(sizeof(int), 0);
    wr_sel2 = weft_chan_new(sizeof(int), 0);
    cr_assert_eq(pipe(wr_pipe), 0);
    weft_mutex_lock(&wr_mu);
    weft_rwmutex_lock(&wr_rw);
    weft_rwmutex_rlock(&wr_rw2);
    weft_wg_add(&wr_wg, 1);

    int64_t ids[NBLOCKERS];
    for (size_t i = 0; i < NBLOCKERS; i++)
        ids[i] = weft_go(blockers[i].fn, NULL);
    long ends = 0;
    for (size_t i = 0; i < NBLOCKERS; i++) {
        G *gp = parked_in(ids[i], blockers[i].r);
        /* weft__gopark refuses any park that does not come through
         * weft__park, so reaching Gwaiting here proves the path. */
        weft__sudog *sg = gp->w.waiting;
        if (blockers[i].queued) {
            cr_assert_not_null(sg, "[%s] waits with a sudog", weft__waitreason_str(blockers[i].r));
            cr_assert_eq(sg->w, &gp->w);
            cr_assert_eq(sg->reason, blockers[i].r);
            cr_assert_not_null(sg->obj);
            /* Off the goroutine's stack: nothing another thread can reach
             * lives there. */
            cr_assert(!((uintptr_t)sg >= gp->stacklo && (uintptr_t)sg < gp->stackhi),
                      "[%s]: the sudog is on the goroutine's stack", weft__waitreason_str(blockers[i].r));
        } else {
            cr_assert_null(sg, "[%s] waits on nothing", weft__waitreason_str(blockers[i].r));
        }
        ends += blockers[i].ends;
    }
    cr_assert_eq(findg(ids[2])->w.waiting->waitlink->isselect, true, "a select queues a sudog per case");

    /* End every wait that can end. */
    int v = 7;
    weft_chan_send(wr_recv, &v);
    weft_chan_recv(wr_send, &v);
    weft_chan_send(wr_sel2, &v);
    cr_assert_eq(write(wr_pipe[1], "x", 1), 1);
    weft_mutex_unlock(&wr_mu);
    weft_rwmutex_unlock(&wr_rw);
    weft_rwmutex_runlock(&wr_rw2);
    weft_wg_done(&wr_wg);
    weft_mutex_lock(&wr_condmu);
    atomic_store(&wr_condgo, true);
    weft_cond_broadcast(&wr_cond);
    weft_mutex_unlock(&wr_condmu);
    while (atomic_load(&wr_done) < ends)
        weft_sleep(1000 * 1000);
    /* The nil-channel and no-case waiters are still parked; main's return
     * ends them. */
}

Test(park, every_wait_reason_parks_through_weft_park, .timeout = 60)
{
    cr_assert_eq(weft_main(reasons_main, NULL), 0);
}

/* A park that does not come through weft__park is refused: it would skip
 * the waiter's preparation and its timeout. */
static bool raw_commit(G *gp, void *arg) { (void)gp; (void)arg; return true; }
static void raw_main(void *arg)
{
    (void)arg;
    weft__gopark(raw_commit, NULL, waitReasonSemacquire);
}

#if WEFT_DEBUG
Test(park, a_park_around_weft_park_throws, .exit_code = 2, .timeout = 30)
{
    cr_redirect_stderr();
    weft_main(raw_main, NULL);
}
#else
Test(park, a_park_around_weft_park_throws, .disabled = true)
{
    /* The check is in the debug builds (./dev stress, ./dev lockrank). */
    (void)raw_main;
}
#endif

static int count_parked(weft__waitreason r)
{
    int n = 0;
    for (G *gp = (G *)AO_load(&weft__allg); gp; gp = gp->allglink)
        n += AO_load(&gp->atomicstatus) == Gwaiting && gp->waitreason == r;
    return n;
}

/* ---- many sudogs at once ----------------------------------------------------------- */

#define SELG 200
#define SELC 100
static weft_chan *many[SELC];
static atomic_long many_done, many_ok;

static void many_selector(void *arg)
{
    (void)arg;
    weft_case cs[SELC];
    int vals[SELC];
    for (int i = 0; i < SELC; i++)
        cs[i] = (weft_case){ many[i], WEFT_RECV, &vals[i], false };
    int k = weft_select(cs, SELC, -1);
    if (k >= 0 && !cs[k].ok)
        atomic_fetch_add(&many_ok, 1);  /* woken by the close */
    atomic_fetch_add(&many_done, 1);
}

static void many_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    for (int round = 0; round < 3; round++) {
        atomic_store(&many_done, 0);
        atomic_store(&many_ok, 0);
        for (int i = 0; i < SELC; i++)
            many[i] = weft_chan_new(sizeof(int), 0);
        /* 20,000 sudogs queued at once: far beyond any P's cache. */
        for (int g = 0; g < SELG; g++)
            cr_assert_gt(weft_go(many_selector, NULL), 0);
        while (count_parked(waitReasonSelect) < SELG)
            weft_sleep(1000 * 1000);
        weft_chan_close(many[SELC / 2]);
        while (atomic_load(&many_done) < SELG)
            weft_sleep(1000 * 1000);
        cr_assert_eq(atomic_load(&many_ok), SELG, "every select woke from the close");
        for (int i = 0; i < SELC; i++)
            weft_chan_free(many[i]);    /* panics if a sudog were left queued */
    }
}

Test(park, sudogs_many_at_once_all_return, .timeout = 60)
{
    cr_assert_eq(weft_main(many_main, NULL), 0);
}

/* ---- waits cancelled when main returns ------------------------------------------ */

static weft_chan *cx_recv, *cx_send, *cx_sel1, *cx_sel2, *cx_timed;
static weft_mutex cx_mu = WEFT_MUTEX_INIT;
static weft_rwmutex cx_rw = WEFT_RWMUTEX_INIT;
static weft_wg cx_wg = WEFT_WG_INIT;
static weft_cond cx_cond = WEFT_COND_INIT;
static weft_mutex cx_condmu = WEFT_MUTEX_INIT;

static void cx_recver(void *a) { (void)a; int v; weft_chan_recv(cx_recv, &v); }
static void cx_sender(void *a) { (void)a; int v = 42; weft_chan_send(cx_send, &v); }
static void cx_selector(void *a)
{
    (void)a;
    int v = 5;
    weft_case cs[2] = { { cx_sel1, WEFT_RECV, &v, false }, { cx_sel2, WEFT_SEND, &v, false } };
    weft_select(cs, 2, -1);
}
static void cx_timedsel(void *a)
{
    (void)a;
    int v;
    weft_case cs[1] = { { cx_timed, WEFT_RECV, &v, false } };
    weft_select(cs, 1, 60 * SEC);
}
/* Holds the locks the others wait for, and never lets go. */
static void cx_holder(void *a)
{
    (void)a;
    weft_mutex_lock(&cx_mu);
    weft_rwmutex_lock(&cx_rw);
    weft_chan_recv(NULL, NULL);
}
static void cx_locker(void *a) { (void)a; weft_mutex_lock(&cx_mu); }
static void cx_reader(void *a) { (void)a; weft_rwmutex_rlock(&cx_rw); }
static void cx_waiter(void *a) { (void)a; weft_wg_wait(&cx_wg); }
static void cx_condwaiter(void *a)
{
    (void)a;
    weft_mutex_lock(&cx_condmu);
    weft_cond_wait(&cx_cond, &cx_condmu);
}

static void cx_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    cx_recv = weft_chan_new(sizeof(int), 0);
    cx_send = weft_chan_new(sizeof(int), 0);
    cx_sel1 = weft_chan_new(sizeof(int), 0);
    cx_sel2 = weft_chan_new(sizeof(int), 0);
    cx_timed = weft_chan_new(sizeof(int), 1);
    weft_wg_add(&cx_wg, 1);
    int64_t h = weft_go(cx_holder, NULL);
    parked_in(h, waitReasonChanReceiveNilChan);
    struct { void (*fn)(void *); weft__waitreason r; } ws[] = {
        { cx_recver, waitReasonChanReceive }, { cx_sender, waitReasonChanSend },
        { cx_selector, waitReasonSelect }, { cx_timedsel, waitReasonSelect },
        { cx_locker, waitReasonSyncMutexLock }, { cx_locker, waitReasonSyncMutexLock },
        { cx_reader, waitReasonSyncRWMutexRLock }, { cx_waiter, waitReasonSyncWaitGroupWait },
        { cx_waiter, waitReasonSyncWaitGroupWait }, { cx_condwaiter, waitReasonSyncCondWait },
    };
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        parked_in(weft_go(ws[i].fn, NULL), ws[i].r);
    /* main returns with all of them parked */
}

static atomic_int th_state;
static void *th_cond_waiter(void *arg)
{
    (void)arg;
    weft_mutex_lock(&cx_condmu);
    atomic_store(&th_state, 1);
    int r = weft_cond_timedwait(&cx_cond, &cx_condmu, 20 * SEC);
    weft_mutex_unlock(&cx_condmu);
    atomic_store(&th_state, r == 0 ? 2 : 3);
    return NULL;
}
static void *th_wg_waiter(void *arg)
{
    (void)arg;
    weft_wg_wait(&cx_wg);
    atomic_store(&th_state, 2);
    return NULL;
}
static void *th_chan_recver(void *arg)
{
    int v = 0;
    bool ok = weft_chan_recv(arg, &v);
    atomic_store(&th_state, ok && v == 99 ? 2 : 3);
    return NULL;
}
static void *th_contend(void *arg)
{
    long *n = arg;
    for (int i = 0; i < 20000; i++) {
        weft_mutex_lock(&cx_mu);
        (*n)++;
        weft_mutex_unlock(&cx_mu);
    }
    return NULL;
}

Test(park, waits_are_cancelled_when_main_returns, .timeout = 60)
{
    cr_assert_eq(weft_main(cx_main, NULL), 0);
    int v = 99;
    pthread_t t;

    /* Channels: the parked receiver, sender and selects are gone. */
    cr_assert_eq(weft_chan_trysend(cx_recv, &v), WEFT_WOULDBLOCK, "no receiver waits any more");
    cr_assert_eq(weft_chan_tryrecv(cx_send, &v), WEFT_WOULDBLOCK, "the parked send was cancelled");
    cr_assert_eq(weft_chan_trysend(cx_sel1, &v), WEFT_WOULDBLOCK);
    cr_assert_eq(weft_chan_tryrecv(cx_sel2, &v), WEFT_WOULDBLOCK);
    cr_assert_eq(weft_chan_trysend(cx_timed, &v), WEFT_OK, "a buffered channel still buffers");
    atomic_store(&th_state, 0);
    pthread_create(&t, NULL, th_chan_recver, cx_recv);
    usleep(20 * 1000);
    cr_assert_eq(weft_chan_send(cx_recv, &v), 0, "threads talk over it");
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&th_state), 2);
    weft_chan_close(cx_send);
    weft_chan_free(cx_recv);    /* would panic with a waiter queued */
    weft_chan_free(cx_send);
    weft_chan_free(cx_sel1);
    weft_chan_free(cx_sel2);
    weft_chan_free(cx_timed);

    /* A mutex the holder never released: unlock it for the dead holder,
     * then two threads contend on it (a waiter count left behind would
     * make an unlock skip a wake-up, and they would hang). */
    weft_mutex_unlock(&cx_mu);
    long n = 0;
    pthread_t t2;
    pthread_create(&t, NULL, th_contend, &n);
    pthread_create(&t2, NULL, th_contend, &n);
    pthread_join(t, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(n, 40000);
    cr_assert_eq(cx_mu.state, 0, "no waiter left counted");

    /* The RWMutex: the dead writer's lock released, the cancelled reader
     * forgotten. */
    weft_rwmutex_unlock(&cx_rw);
    cr_assert_eq(cx_rw.readercount, 0);
    weft_rwmutex_rlock(&cx_rw);
    weft_rwmutex_runlock(&cx_rw);
    weft_rwmutex_lock(&cx_rw);
    weft_rwmutex_unlock(&cx_rw);

    /* The wait group: its two waiters no longer count. */
    cr_assert_eq((uint32_t)cx_wg.state, 0);
    weft_wg_done(&cx_wg);
    weft_wg_add(&cx_wg, 1);
    atomic_store(&th_state, 0);
    pthread_create(&t, NULL, th_wg_waiter, NULL);
    usleep(20 * 1000);
    cr_assert_eq(atomic_load(&th_state), 0, "a reused wait group waits (no stale wake-up)");
    weft_wg_done(&cx_wg);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&th_state), 2);

    /* The cond: the cancelled waiter's ticket is skipped. */
    atomic_store(&th_state, 0);
    pthread_create(&t, NULL, th_cond_waiter, NULL);
    while (atomic_load(&th_state) == 0)
        usleep(1000);
    usleep(20 * 1000);
    weft_mutex_lock(&cx_condmu);
    weft_cond_signal(&cx_cond);
    weft_mutex_unlock(&cx_condmu);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&th_state), 2, "the signal reached the thread");
}

/* A goroutine woken but not yet run when main returns: its waker has freed
 * the channel it waited on, and shutdown must not touch it (a sanitizer
 * build reports the use after free; the normal build hung on the freed
 * lock's garbage in 1 of 20 skynet runs). */
static weft_chan *fr_c;
static void fr_recver(void *a)
{
    (void)a;
    int v;
    weft_chan_recv(fr_c, &v);
}

static void fr_main(void *arg)
{
    (void)arg;
    weft_maxprocs(1);
    fr_c = weft_chan_new(sizeof(int), 0);
    int64_t id = weft_go(fr_recver, NULL);
    parked_in(id, waitReasonChanReceive);
    int v = 1;
    weft_chan_send(fr_c, &v);       /* readies it; with one P it waits for us */
    weft__sudog *sg = findg(id)->w.waiting;
    cr_assert_not_null(sg, "woken, not yet run: its sudog is still its");
    cr_assert_eq(findg(id)->w.param, sg);
    weft_chan_free(fr_c);           /* nobody waits on it any more */
    memset(fr_c = malloc(256), 0xff, 256);  /* likely the same memory, garbage now */
}

Test(park, shutdown_leaves_a_woken_goroutines_freed_channel_alone, .timeout = 30)
{
    cr_assert_eq(weft_main(fr_main, NULL), 0);
    free(fr_c);
}
