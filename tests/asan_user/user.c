/*
 * user.c — a program built with -fsanitize=address against the ordinary
 * libweft (run by run.sh).  "clean": goroutines that end with weft_exit
 * and goroutines whose stacks are reused must give no report and no
 * warning.  "overflow": a goroutine overruns a local array; ASan must
 * report it with that goroutine's frame.
 */
#include <stdio.h>
#include <string.h>

#include <weft.h>

static volatile int sink;

static __attribute__((noinline)) void deep(int n)
{
    char buf[512];
    memset(buf, n, sizeof buf);
    sink += buf[n % sizeof buf];
    if (n > 0)
        deep(n - 1);
}

static void exiter(void *arg)
{
    deep((int)(long)arg);
    weft_exit();        /* noreturn, off a goroutine stack */
}

static void returner(void *arg)
{
    deep((int)(long)arg);
}

static __attribute__((noinline)) void overflow_goroutine(void *arg)
{
    char small[16];
    int i = (int)(long)arg;
    small[i] = 1;       /* i = 16: one past the end */
    sink += small[0];
}

static const char *mode;

static void mainfn(void *arg)
{
    (void)arg;
    if (strcmp(mode, "overflow") == 0) {
        weft_go(overflow_goroutine, (void *)16L);
        weft_sleep(100 * 1000 * 1000);
        return;
    }
    weft_wg wg = WEFT_WG_INIT;
    (void)wg;
    for (int round = 0; round < 20; round++) {
        for (long i = 0; i < 200; i++)
            weft_go(i % 2 ? exiter : returner, (void *)(i % 40));
        weft_sleep(2 * 1000 * 1000);
    }
    puts("clean: done");
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "clean";
    return weft_main(mainfn, NULL);
}
