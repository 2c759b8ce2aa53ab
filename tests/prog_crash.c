/*
 * prog_crash.c — dies in the way argv[1] names, for the death tests in
 * test_traceback.c (which also set SCHEDDEBUG):
 *
 *   panic     weft_panic from crash_panicker, with a goroutine parked on a
 *             channel and one spinning on the other P
 *   segv      a nil store in crash_segv
 *   fpe       an integer division by zero in crash_divide
 *   bus       a load from a mapped file page past its end in crash_bus
 *   ill       an undefined instruction (ud2 / udf) in crash_ill
 *   sigquit   SIGQUIT to itself, with goroutines parked and one spinning
 *   hog       crash_hog_loop spins 300 ms on the other P without a
 *             scheduling point, then the program ends normally
 *             (SCHEDDEBUG=hogwarn=N reports it)
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <weft.h>

/* Not inlined, not cloned (gcc's noclone; clang does not clone here). */
#if defined(__clang__)
#define NOINLINE_NOCLONE __attribute__((noinline))
#else
#define NOINLINE_NOCLONE __attribute__((noinline, noclone))
#endif

static weft_chan *never;
static atomic_int spinning;
static volatile int zero;

static __attribute__((noinline)) void crash_parked(void *arg)
{
    (void)arg;
    int v;
    weft_chan_recv(never, &v);
}

static __attribute__((noinline)) void crash_spin_forever(void *arg)
{
    (void)arg;
    atomic_store(&spinning, 1);
    for (;;)
        __asm__ volatile("" ::: "memory");
}

static void company(void)
{
    weft_maxprocs(2);
    weft_go(crash_parked, NULL);
    weft_go(crash_spin_forever, NULL);
    while (!atomic_load(&spinning))
        weft_sleep(1000 * 1000);
    weft_sleep(10 * 1000 * 1000);     /* let the parked one park */
}

static __attribute__((noinline)) void crash_panicker(void) { weft_panic("boom %d", 42); }

static int *volatile nullp;     /* volatile: the compiler cannot prove it NULL */

static __attribute__((noinline)) void crash_segv(void)
{
    *nullp = 1;
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) int crash_bus(void)
{
    FILE *f = tmpfile();
    if (!f)
        return -1;
    volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fileno(f), 0);   /* an empty file */
    if (p == MAP_FAILED)
        return -1;
    return p[0];    /* SIGBUS: the page lies past the end of the file */
}

static __attribute__((noinline)) void crash_ill(void)
{
    __builtin_trap();
}

static NOINLINE_NOCLONE int crash_divide(int a) { return a / zero; }

static atomic_int hog_stop;

static __attribute__((noinline)) void crash_hog_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&hog_stop))
        __asm__ volatile("" ::: "memory");    /* no call, no scheduling point */
}

static const char *mode;

static void mainfn(void *arg)
{
    (void)arg;
    never = weft_chan_new(sizeof(int), 0);
    if (strcmp(mode, "panic") == 0) {
        company();
        crash_panicker();
    } else if (strcmp(mode, "segv") == 0) {
        crash_segv();
    } else if (strcmp(mode, "bus") == 0) {
        printf("%d\n", crash_bus());
    } else if (strcmp(mode, "ill") == 0) {
        crash_ill();
    } else if (strcmp(mode, "fpe") == 0) {
        printf("%d\n", crash_divide(7));
    } else if (strcmp(mode, "sigquit") == 0) {
        company();
        kill(getpid(), SIGQUIT);
        weft_sleep(5LL * 1000 * 1000 * 1000);
    } else if (strcmp(mode, "hog") == 0) {
        weft_maxprocs(2);
        int64_t id = weft_go(crash_hog_loop, NULL);
        printf("hog=%lld\n", (long long)id);
        fflush(stdout);
        weft_sleep(300LL * 1000 * 1000);
        atomic_store(&hog_stop, 1);
    }
    weft_chan_free(never);
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "";
    return weft_main(mainfn, NULL);
}
