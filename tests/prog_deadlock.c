/*
 * prog_deadlock.c — programs whose goroutines all end up asleep (or not),
 * for test_deadlock.c.  argv[1] picks the scenario.
 */
#include <stdio.h>
#include <string.h>
#include <weft.h>

static weft_wg wg = WEFT_WG_INIT;
static weft_mutex mu = WEFT_MUTEX_INIT;

static void blocked_on_mutex(void *arg)
{
    (void)arg;
    weft_mutex_lock(&mu);       /* main holds it and never unlocks */
}

static void sleeper(void *arg)
{
    (void)arg;
    weft_sleep(30 * 1000 * 1000);
    weft_wg_done(&wg);
}

static void quick(void *arg)
{
    (void)arg;
}

static void mainfn(void *arg)
{
    const char *mode = arg;
    if (strcmp(mode, "wg") == 0) {
        weft_mutex_lock(&mu);
        weft_go(blocked_on_mutex, NULL);
        weft_wg_add(&wg, 1);
        weft_wg_wait(&wg);      /* nobody calls done */
    } else if (strcmp(mode, "goexit") == 0) {
        weft_go(quick, NULL);
        weft_exit();
    } else if (strcmp(mode, "locked") == 0) {
        /* The last M to go idle is main's, locked to it: other Ms went
         * idle before (the spawns, the sleep), so only the locked M's
         * going idle can notice that nothing can run any more. */
        for (int i = 0; i < 8; i++)
            weft_go(quick, NULL);
        weft_sleep(20 * 1000 * 1000);
        weft_lock_thread();
        weft_chan *c = weft_chan_new(sizeof(int), 0);
        int v;
        weft_chan_recv(c, &v);  /* nobody sends */
    } else if (strcmp(mode, "sleeping") == 0) {
        /* Everyone asleep on timers is not a deadlock. */
        weft_wg_add(&wg, 1);
        weft_go(sleeper, NULL);
        weft_wg_wait(&wg);
        puts("sleeping: ok");
    }
}

int main(int argc, char **argv)
{
    return weft_main(mainfn, argc > 1 ? argv[1] : "wg");
}
