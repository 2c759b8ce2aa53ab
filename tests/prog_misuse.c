/*
 * prog_misuse.c — misuses the runtime in the way argv[1] names, for the
 * death tests in test_misuse.c: each parks or yields between
 * weft_syscall_enter and weft_syscall_exit, which must be a fatal error
 * naming the call, never a crash inside the runtime or a lost syscall
 * state.
 */
#include <stdio.h>
#include <string.h>

#include "weft.h"

static const char *mode;
static weft_mutex mu = WEFT_MUTEX_INIT;

static void holder(void *arg)
{
    (void)arg;
    weft_mutex_lock(&mu);
    weft_sleep(60LL * 1000 * 1000 * 1000);
}

static __attribute__((noinline)) void misuse_in_bracket(void)
{
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    int v = 0;
    if (strcmp(mode, "mutex") == 0) {
        weft_go(holder, NULL);
        while (weft_mutex_trylock(&mu))
            weft_mutex_unlock(&mu), weft_yield();    /* until the holder has it */
    }
    weft_syscall_enter();
    if (strcmp(mode, "yield") == 0)
        weft_yield();
    else if (strcmp(mode, "sleep") == 0)
        weft_sleep(1000000);
    else if (strcmp(mode, "recv") == 0)
        weft_chan_recv(c, &v);
    else if (strcmp(mode, "mutex") == 0)
        weft_mutex_lock(&mu);
    weft_syscall_exit();
    printf("survived %s\n", mode);
}

static void mainfn(void *arg)
{
    (void)arg;
    misuse_in_bracket();
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "";
    return weft_main(mainfn, NULL);
}
