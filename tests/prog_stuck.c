/*
 * prog_stuck.c — goroutines stuck in known places, for test_stuck.c and
 * the README's "Why is it stuck?" (argv[1] picks what it prints; the
 * tests set SCHEDDEBUG):
 *
 *   dump2     a family of goroutines (main → stuck_spawner → stuck_worker →
 *             stuck_leaf, each leaf parked receiving on an empty buffered
 *             channel, stuck_sender parked sending on a full unbuffered one),
 *             then goroutine?debug=2 to stdout
 *   dump3     the same family, then the JSON dump (debug=3) to stdout
 *   sigquit   the same family, then SIGQUIT to itself
 *   blockwarn the same family, then sleeps 2.5 s and ends normally
 *             (SCHEDDEBUG=blockwarn=1 reports the waits, once each)
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <weft.h>

#define LEAVES 3

static weft_chan *jobs, *results;
static atomic_int parked;

/* No tail calls: the caller's frame must stay on every stack. */
static atomic_int sink;

static __attribute__((noinline)) void stuck_leaf(void *arg)
{
    (void)arg;
    int v;
    atomic_fetch_add(&parked, 1);
    weft_chan_recv(jobs, &v);
    atomic_fetch_add(&sink, v);
}

static __attribute__((noinline)) void stuck_sender(void *arg)
{
    (void)arg;
    int v = 1;
    atomic_fetch_add(&parked, 1);
    weft_chan_send(results, &v);
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void stuck_worker(void *arg)
{
    (void)arg;
    weft_go(stuck_leaf, NULL);
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void stuck_spawner(void *arg)
{
    (void)arg;
    for (int i = 0; i < LEAVES; i++)
        weft_go(stuck_worker, NULL);
    weft_go(stuck_sender, NULL);
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void family(void)
{
    jobs = weft_chan_new(sizeof(int), 4);
    results = weft_chan_new(sizeof(int), 0);
    weft_go(stuck_spawner, NULL);
    while (atomic_load(&parked) < LEAVES + 1)
        weft_sleep(1000 * 1000);
    weft_sleep(10 * 1000 * 1000);     /* let the last one park */
}

static __attribute__((noinline)) void stuck_main(void *arg)
{
    const char *mode = arg;
    family();
    if (strcmp(mode, "dump2") == 0) {
        weft_profile_write("goroutine", 1, 2);
    } else if (strcmp(mode, "dump3") == 0) {
        weft_profile_write("goroutine", 1, 3);
    } else if (strcmp(mode, "sigquit") == 0) {
        kill(getpid(), SIGQUIT);
        weft_sleep(1000 * 1000 * 1000);
    } else if (strcmp(mode, "blockwarn") == 0) {
        weft_sleep(2500 * 1000 * 1000LL);
    }
    atomic_fetch_add(&sink, 1);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: prog_stuck dump2|dump3|sigquit|blockwarn\n");
        return 1;
    }
    int r = weft_main(stuck_main, argv[1]);
    /* The goroutines parked on them were cancelled with the runtime: the
     * channels can go (valgrind_stuck checks that nothing else is left). */
    weft_chan_free(jobs);
    weft_chan_free(results);
    return r;
}
