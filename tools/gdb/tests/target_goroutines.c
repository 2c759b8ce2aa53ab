/*
 * target_goroutines — a weft program for gdb to look at (run.sh): 100
 * goroutines parked in known places through known call chains, one
 * running, and main waiting.  It prints "ready" once every goroutine is
 * parked and waits for ever (or until a signal ends it).
 *
 *   40  chain_a: top1 -> mid2 -> leaf3 -> weft_chan_recv   chan receive
 *   30  chain_b: nap_outer -> nap_inner -> weft_sleep       sleep
 *   20  chain_c: push_one -> weft_chan_send                chan send
 *    8  locker: take_lock -> weft_mutex_lock               sync.Mutex.Lock
 *    1  waiter: weft_wg_wait                               sync.WaitGroup.Wait
 *    1  spinner: spin_leaf, running on its own P
 *    1  main (goroutine 1): main_wait -> weft_chan_recv    chan receive
 *
 * Every call in a chain is kept out of tail position and out of line, so
 * the frames are on the stack as written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

#define NOINLINE __attribute__((noinline))

static weft_chan *never;        /* nobody sends: receivers park for ever */
static weft_chan *nobody;       /* nobody receives: senders park for ever */
static weft_chan *forever;      /* main's */
static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_wg wg = WEFT_WG_INIT;
static volatile long sink;
static long arrived;            /* goroutines about to park (atomic) */
static volatile int spinning;

/* Counts a goroutine that is about to park for good. */
static void arrive(void)
{
    __atomic_fetch_add(&arrived, 1, __ATOMIC_RELAXED);
}

NOINLINE static long leaf3(int i)
{
    int v = 0;
    sink += i;
    arrive();
    weft_chan_recv(never, &v);
    return v + 1;
}

NOINLINE static long mid2(int i)
{
    long r = leaf3(i + 1);
    sink += r;
    return r;
}

NOINLINE static long top1(int i)
{
    long r = mid2(i + 1);
    sink += r;
    return r;
}

static void chain_a(void *arg)
{
    sink += top1((int)(intptr_t)arg);
}

NOINLINE static void nap_inner(void)
{
    arrive();
    weft_sleep(3600LL * 1000000000LL);
    sink++;
}

NOINLINE static void nap_outer(void)
{
    nap_inner();
    sink++;
}

static void chain_b(void *arg)
{
    (void)arg;
    nap_outer();
}

NOINLINE static void push_one(int i)
{
    arrive();
    weft_chan_send(nobody, &i);
    sink++;
}

static void chain_c(void *arg)
{
    push_one((int)(intptr_t)arg);
}

NOINLINE static void take_lock(void)
{
    arrive();
    weft_mutex_lock(&mu);
    weft_mutex_unlock(&mu);
    sink++;
}

static void locker(void *arg)
{
    (void)arg;
    take_lock();
}

static void waiter(void *arg)
{
    (void)arg;
    arrive();
    weft_wg_wait(&wg);
    sink++;
}

NOINLINE static void spin_leaf(void)
{
    spinning = 1;
    for (;;)
        sink++;
}

static void spinner(void *arg)
{
    (void)arg;
    spin_leaf();
}

NOINLINE static void main_wait(void)
{
    int v;
    weft_chan_recv(forever, &v);
    sink += v;
}

static void spawn(void (*fn)(void *), int n, const char *name)
{
    for (int i = 0; i < n; i++) {
        weft_attr a = { .name = name };
        if (weft_go_attr(&a, fn, (void *)(intptr_t)i) < 0) {
            fprintf(stderr, "weft_go_attr failed\n");
            exit(1);
        }
    }
}

static void mainfn(void *arg)
{
    (void)arg;
    never = weft_chan_new(sizeof(int), 0);
    nobody = weft_chan_new(sizeof(int), 0);
    forever = weft_chan_new(sizeof(int), 0);
    weft_mutex_lock(&mu);           /* the lockers wait for ever */
    weft_wg_add(&wg, 1);            /* so does the waiter */
    spawn(chain_a, 40, "chain-a");
    spawn(chain_b, 30, "chain-b");
    spawn(chain_c, 20, "chain-c");
    spawn(locker, 8, "locker");
    spawn(waiter, 1, "waiter");
    spawn(spinner, 1, "spinner");
    /* Wait until all have reached their parking places, then a little
     * longer for the last to park. */
    while (!spinning || __atomic_load_n(&arrived, __ATOMIC_RELAXED) < 99)
        weft_sleep(1000000);
    weft_sleep(100 * 1000000);
    printf("ready %d\n", weft_num_goroutine());
    fflush(stdout);
    main_wait();
}

int main(void)
{
    weft_maxprocs(2);
    return weft_main(mainfn, NULL);
}
