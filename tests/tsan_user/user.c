/*
 * user.c — a program built with -fsanitize=thread against the ordinary
 * libweft (run by run.sh).
 *
 * "clean": every weft synchronisation orders plain (non-atomic) accesses
 * of goroutines on several Ms — unbuffered and buffered channels, close,
 * select, mutex, rwmutex, cond, wait group, once, weft_go, sleeps and
 * timeouts, the main goroutine's end before weft_main returns — and
 * goroutines reuse each other's stacks; ThreadSanitizer (and helgrind
 * and DRD, tests/valgrind_race) must report nothing.
 * "race": two goroutines increment a plain int with nothing between them;
 * it must be reported, with both goroutines' frames.
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

#define ROUNDS 200

static weft_wg wg = WEFT_WG_INIT;

/* ---- channels ---- */

static int handoff;                 /* written before a send, read after the receive */

static void chan_peer(void *arg)
{
    weft_chan *c = arg;
    for (int i = 0; i < ROUNDS; i++) {
        int v;
        weft_chan_recv(c, &v);
        handoff += v;               /* the sender's write happens before */
        weft_chan_send(c, &v);      /* ... and ours before its next read */
    }
    weft_wg_done(&wg);
}

static void test_unbuffered(void)
{
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    weft_wg_add(&wg, 1);
    weft_go(chan_peer, c);
    for (int i = 0; i < ROUNDS; i++) {
        handoff += 1;
        weft_chan_send(c, &i);
        int v;
        weft_chan_recv(c, &v);
    }
    weft_wg_wait(&wg);
    weft_chan_free(c);
}

struct item { int payload[4]; };
static struct item *items[ROUNDS];

static void buf_consumer(void *arg)
{
    weft_chan *c = arg;
    struct item *it;
    int sum = 0;
    while (weft_chan_recv(c, &it))
        sum += it->payload[3];      /* written by the producer before its send */
    items[0]->payload[0] = sum;     /* after the close: the producer's writes are done */
    weft_wg_done(&wg);
}

static struct item pool[ROUNDS];

static void test_buffered_close(void)
{
    weft_chan *c = weft_chan_new(sizeof(struct item *), 8);
    weft_wg_add(&wg, 1);
    weft_go(buf_consumer, c);
    for (int i = 0; i < ROUNDS; i++) {
        items[i] = &pool[i];
        memset(items[i], 0, sizeof *items[i]);
        items[i]->payload[3] = i;
        weft_chan_send(c, &items[i]);
    }
    weft_chan_close(c);
    weft_wg_wait(&wg);
    printf("buffered: %d\n", items[0]->payload[0]);
    weft_chan_free(c);
}

/* ---- select ---- */

static int selected;

static void sel_sender(void *arg)
{
    weft_chan *c = arg;
    selected = 42;
    int v = 1;
    weft_chan_send(c, &v);
}

static void test_select(void)
{
    weft_chan *a = weft_chan_new(sizeof(int), 0), *b = weft_chan_new(sizeof(int), 0);
    int v = 0;
    weft_case cases[2] = { { .ch = a, .dir = WEFT_RECV, .elem = &v },
                           { .ch = b, .dir = WEFT_RECV, .elem = &v } };
    for (int i = 0; i < ROUNDS / 4; i++) {
        weft_go(sel_sender, i % 2 ? a : b);
        if (weft_select(cases, 2, -1) < 0)
            puts("select failed");
        selected++;
    }
    weft_chan_free(a);
    weft_chan_free(b);
}

/* ---- mutex, rwmutex, cond, once ---- */

static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_rwmutex rw = WEFT_RWMUTEX_INIT;
static weft_cond cond = WEFT_COND_INIT;
static weft_once once = WEFT_ONCE_INIT;
static long counter, rwcounter, ready, onceval;

static void init_once(void) { onceval = 7; }

static void locker(void *arg)
{
    (void)arg;
    weft_once_do(&once, init_once);
    long o = onceval;               /* init_once's write happens before */
    for (int i = 0; i < ROUNDS; i++) {
        weft_mutex_lock(&mu);
        counter += o;
        weft_mutex_unlock(&mu);
        if (i % 8 == 0) {
            weft_rwmutex_lock(&rw);
            rwcounter++;
            weft_rwmutex_unlock(&rw);
        } else {
            weft_rwmutex_rlock(&rw);
            long r = rwcounter;
            weft_rwmutex_runlock(&rw);
            (void)r;
        }
        if (i % 32 == 0)
            weft_yield();
    }
    weft_mutex_lock(&mu);
    ready++;
    weft_cond_broadcast(&cond);
    weft_mutex_unlock(&mu);
    weft_wg_done(&wg);
}

static void test_locks(void)
{
    enum { N = 8 };
    weft_wg_add(&wg, N);
    for (int i = 0; i < N; i++)
        weft_go(locker, NULL);
    weft_mutex_lock(&mu);
    while (ready < N)
        weft_cond_wait(&cond, &mu);
    weft_mutex_unlock(&mu);
    weft_wg_wait(&wg);
    printf("locks: %ld %ld\n", counter, rwcounter);
}

/* ---- wait group, spawn, stack reuse ---- */

static long results[64];

static __attribute__((noinline)) long deep(int n)
{
    volatile char buf[256];         /* escapes to memset: instrumented stack */
    memset((char *)buf, n, sizeof buf);
    return buf[n % sizeof buf] + (n > 0 ? deep(n - 1) : 0);
}

static void worker(void *arg)
{
    long i = (long)arg;
    results[i] = deep((int)(i % 16)) + i;   /* each its own slot */
    weft_wg_done(&wg);
}

static void test_spawn_wg(void)
{
    for (int round = 0; round < 10; round++) {
        weft_wg_add(&wg, 64);
        for (long i = 0; i < 64; i++)
            weft_go(worker, (void *)i);
        weft_wg_wait(&wg);
        long sum = 0;
        for (int i = 0; i < 64; i++)
            sum += results[i];      /* every worker's write happens before */
        if (round == 9)
            printf("spawn: %ld\n", sum);
    }
}

/* ---- sleep and timers ---- */

static long napped[8];
static int late;                    /* written before a send that follows a sleep */

static void sleeper(void *arg)
{
    long i = (long)arg;
    napped[i] = i;                  /* before the sleep, on one M ... */
    weft_sleep(200000 * (i % 3));
    napped[i] += 1;                 /* ... after it, perhaps on another: its own past */
    weft_wg_done(&wg);
}

static void late_sender(void *arg)
{
    weft_sleep(3000000);            /* longer than the receiver's first timeout */
    late = 42;
    weft_chan_send(arg, &late);
}

static void test_sleep(void)
{
    weft_wg_add(&wg, 8);
    for (long i = 0; i < 8; i++)
        weft_go(sleeper, (void *)i);
    /* A select that times out, then one the sleeping sender wakes. */
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    weft_go(late_sender, c);
    int v = 0, timeouts = 0;
    weft_case cs[1] = { { .ch = c, .dir = WEFT_RECV, .elem = &v } };
    while (weft_select(cs, 1, 1000000) < 0)
        timeouts++;
    /* A timed cond wait that times out. */
    weft_mutex_lock(&mu);
    int tw = weft_cond_timedwait(&cond, &mu, 100000);
    weft_mutex_unlock(&mu);
    weft_wg_wait(&wg);
    long sum = 0;
    for (int i = 0; i < 8; i++)
        sum += napped[i];           /* every sleeper's write happens before */
    printf("sleep: %ld %d %d %d\n", sum, late, timeouts > 0, tw != 0);
    weft_chan_free(c);
}

static long final;

static void clean_main(void *arg)
{
    (void)arg;
    test_unbuffered();
    test_buffered_close();
    test_select();
    test_locks();
    test_spawn_wg();
    test_sleep();
    final = 1;                      /* read after weft_main returns */
}

/* ---- the race ---- */

/* A cache line apart: TSan tracks 8 bytes with a few slots, which the
 * spins' loads next to racy would take from racy's writes. */
static int racy __attribute__((aligned(64)));
static int arrived __attribute__((aligned(64)));    /* atomic */
static int finished __attribute__((aligned(64)));   /* atomic */

static __attribute__((noinline)) void race_goroutine(void *arg)
{
    (void)arg;
    /* Each on a thread of its own, for tools that see threads, not
     * goroutines (helgrind, DRD); TSan finds it either way. */
    weft_lock_thread();
    /* Both loops start once both goroutines are here (yielding our P in
     * case the other waits for it), and neither goroutine calls weft
     * again before both loops are done (spins on atomics, which order
     * nothing between the loops): for helgrind and DRD, which see weft's
     * locks, a lock handed over between the end of one loop and the start
     * of the other would order the two, however valgrind, which runs one
     * thread at a time, schedules them. */
    __atomic_fetch_add(&arrived, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&arrived, __ATOMIC_SEQ_CST) < 2)
        weft_yield();
    for (int i = 0; i < 1000; i++) {
        racy++;
        /* Only makes each increment a load and a store; orders nothing
         * between threads. */
        __asm__ volatile("" ::: "memory");
    }
    __atomic_fetch_add(&finished, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) < 2)
        sched_yield();
    weft_wg_done(&wg);
}

static void race_main(void *arg)
{
    (void)arg;
    weft_wg_add(&wg, 2);
    weft_go(race_goroutine, NULL);
    weft_go(race_goroutine, NULL);
    weft_wg_wait(&wg);
    printf("racy: %d\n", racy);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    if (strcmp(mode, "race") == 0)
        return weft_main(race_main, NULL);
    int r = weft_main(clean_main, NULL);
    printf("clean: done %ld\n", final);
    return r;
}
