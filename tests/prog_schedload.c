/*
 * prog_schedload.c — two Ps spawning and switching flat out for about two
 * seconds (run by test_schedtrace.c under SCHEDDEBUG=schedtrace=1,...).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <weft.h>

static atomic_long stop, done;
static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_chan *ch;

static void leaf(void *arg)
{
    (void)arg;
    weft_yield();
    weft_mutex_lock(&mu);
    weft_mutex_unlock(&mu);
    atomic_fetch_add(&done, 1);
}

static void spawner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        for (int i = 0; i < 100; i++)
            weft_go(leaf, NULL);
        weft_yield();
    }
}

static void pinger(void *arg)
{
    (void)arg;
    int v = 0;
    while (!atomic_load(&stop)) {
        weft_chan_send(ch, &v);
        weft_sleep(100 * 1000);
    }
}

static void mainfn(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    ch = weft_chan_new(sizeof(int), 4);
    weft_go(spawner, NULL);
    weft_go(spawner, NULL);
    weft_go(pinger, NULL);
    int64_t t0 = weft_nanotime();
    int v;
    while (weft_nanotime() - t0 < 2000LL * 1000 * 1000)
        weft_chan_recv(ch, &v);
    atomic_store(&stop, 1);
    printf("schedload: %ld goroutines ran\n", atomic_load(&done));
}

int main(void)
{
    return weft_main(mainfn, NULL);
}
