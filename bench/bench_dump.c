/*
 * bench_dump.c — what a dump of every goroutine costs the program that is
 * dumped: the main goroutine parks n goroutines (default 100,000; each a
 * few frames deep, in a channel receive), starts a ticker goroutine that
 * sleeps 1 ms in a loop and keeps its worst lateness, watches the ticker
 * alone for 300 ms (the baseline), then takes one dump and reports how
 * long it took and the ticker's worst lateness meanwhile.  A late tick is
 * a pause: while the world is stopped nothing runs, the ticker included.
 *
 * The dump is weft_profile_write("goroutine", fd, 2) (Go's goroutine
 * ?debug=2) into a memfd by default; -d 3 (JSON), -d 1 or -d 0 takes the
 * other forms, -s weft_stack(buf, 64 MiB, true).  The dump must name every
 * parked goroutine: the program checks the count of "goroutine " headers
 * (debug=2 and -s), of goroutine objects (debug=3) or the profile's total
 * (debug=1) and exits with status 1 when it is wrong.
 *
 * When the runtime keeps the timings of its last dump (weft__dumpstats,
 * stackprof.c) the line also says how they split: collect_ms (stopping
 * the world and recording every stack), format_ms (symbolizing and
 * writing) and stw_max_ms (the longest stop).
 *
 * Options: -p PROCS (0 = runtime default), -n GOROUTINES, -d DEBUG (3, 2,
 * 1 or 0), -s (weft_stack instead of a profile), -o FILE (keep the dump
 * there too).
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "bench_common.h"
#include "weft.h"

/* The runtime's record of its last dump (stackprof.c); weak, so that this
 * program also measures builds that do not keep one. */
struct weft__dumpstats {
    int64_t collect_ns, format_ns, stw_max_ns;
};
extern struct weft__dumpstats weft__dumpstats __attribute__((weak));

static long nprocs_opt, ngor = 100000, debuglvl = 2;
static bool use_stack;
static const char *keep;
static weft_chan *never;
static weft_wg ready = WEFT_WG_INIT;
/* When the baseline and the dump began and ended (INT64_MAX: not yet). */
static atomic_llong base_t0 = INT64_MAX, dump_t0 = INT64_MAX, dump_t1 = INT64_MAX;
static atomic_llong worst_base, worst_dump;    /* the ticker's worst lateness, ns */
static atomic_int stop_ticker;
static atomic_int ticker_done;
static int64_t dump_ns, dump_bytes;
static int headers, procs_used;
static int failed;

static __attribute__((noinline)) void park3(int d)
{
    if (d > 0) {
        park3(d - 1);
        __asm__ volatile("" ::: "memory");  /* not a tail call: keep the frame */
        return;
    }
    weft_wg_done(&ready);
    weft_chan_recv(never, NULL);
}

static void parked(void *arg) { (void)arg; park3(3); }

static void max_store(atomic_llong *a, int64_t v)
{
    if (v > atomic_load(a))
        atomic_store(a, v);
}

static void ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticker)) {
        int64_t t0 = weft_nanotime();
        weft_sleep(1000 * 1000);
        int64_t t1 = weft_nanotime(), late = t1 - t0 - 1000 * 1000;
        /* A tick that overlaps the dump is the dump's, even one that
         * spans all of it (the world stopped throughout). */
        if (t1 >= atomic_load(&dump_t0) && t0 <= atomic_load(&dump_t1))
            max_store(&worst_dump, late);
        else if (t0 >= atomic_load(&base_t0) && t1 < atomic_load(&dump_t0))
            max_store(&worst_base, late);
    }
    atomic_store(&ticker_done, 1);
}

static int count(const char *s, size_t n, const char *what)
{
    int k = 0;
    size_t l = strlen(what);
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), what, l)) != NULL; p += l)
        k++;
    return k;
}

static void bench_main(void *arg)
{
    (void)arg;
    if (nprocs_opt > 0)
        weft_maxprocs((int)nprocs_opt);
    procs_used = weft_maxprocs(0);
    never = weft_chan_new(0, 0);
    weft_wg_add(&ready, (int)ngor);
    for (long i = 0; i < ngor; i++)
        if (weft_go(parked, NULL) < 0) {
            fprintf(stderr, "bench_dump: weft_go failed at %ld\n", i);
            failed = 1;
            return;
        }
    weft_wg_wait(&ready);
    weft_go(ticker, NULL);
    weft_sleep(50 * 1000 * 1000);
    atomic_store(&base_t0, weft_nanotime());
    weft_sleep(300 * 1000 * 1000);

    int fd = keep ? open(keep, O_RDWR | O_CREAT | O_TRUNC, 0644) : memfd_create("dump", 0);
    static char *buf;
    size_t cap = 64u << 20;
    if (use_stack && !(buf = malloc(cap))) {
        failed = 1;
        return;
    }
    int64_t t0 = weft_nanotime();
    atomic_store(&dump_t0, t0);
    int r = use_stack ? weft_stack(buf, cap, true) : weft_profile_write("goroutine", fd, (int)debuglvl);
    int64_t t1 = weft_nanotime();
    atomic_store(&dump_t1, t1);
    dump_ns = t1 - t0;
    weft_sleep(5 * 1000 * 1000);    /* the tick under way when it ended */
    atomic_store(&stop_ticker, 1);
    if (r < 0) {
        fprintf(stderr, "bench_dump: the dump failed: %d\n", r);
        failed = 1;
    }
    /* The answer: every goroutine is there (the parked ones, the ticker
     * and main; debug=0 is gzipped and only checked for size). */
    long want = ngor + 2;
    if (use_stack) {
        dump_bytes = r;
        if (keep && write(fd, buf, (size_t)r) != r)
            failed = 1;
        headers = count(buf, (size_t)r, "\ngoroutine ") + 1;
    } else {
        struct stat st;
        fstat(fd, &st);
        dump_bytes = st.st_size;
        char *m = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
        if (m != MAP_FAILED && debuglvl == 2)
            headers = count(m, (size_t)st.st_size, "\ngoroutine ") + 1;
        else if (m != MAP_FAILED && debuglvl == 3)
            headers = count(m, (size_t)st.st_size, "\n{\"goid\":") + 1;  /* one per line, the first after "[" */
        else if (m != MAP_FAILED && debuglvl == 1)
            headers = (int)strtol(m + strlen("goroutine profile: total "), NULL, 10);
        else
            headers = (int)want;
        if (m != MAP_FAILED)
            munmap(m, (size_t)st.st_size);
    }
    if (headers != want) {
        fprintf(stderr, "bench_dump: wrong answer: the dump has %d goroutines, want %ld\n", headers, want);
        failed = 1;
    }
    close(fd);
    free(buf);
    while (!atomic_load(&ticker_done))
        weft_sleep(1000 * 1000);
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "p:n:d:so:")) != -1) {
        switch (c) {
        case 'p': nprocs_opt = bench_parse_long(argv[0], c, optarg, 0, 1024); break;
        case 'n': ngor = bench_parse_long(argv[0], c, optarg, 1, 10000000); break;
        case 'd': debuglvl = bench_parse_long(argv[0], c, optarg, 0, 3); break;
        case 's': use_stack = true; break;
        case 'o': keep = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-p PROCS] [-n GOROUTINES] [-d DEBUG] [-s] [-o FILE]\n", argv[0]);
            return 2;
        }
    }
    int rc = weft_main(bench_main, NULL);
    if (rc != 0 || failed)
        return 1;
    printf("name=dump impl=weft procs=%d n=%ld mode=%s total_ms=%.1f ticker_worst_ms=%.1f "
           "baseline_worst_ms=%.1f bytes=%lld",
           procs_used, ngor, use_stack ? "stack" : debuglvl == 3 ? "debug3" : debuglvl == 2 ? "debug2" : debuglvl == 1 ? "debug1" : "debug0",
           (double)dump_ns / 1e6, (double)atomic_load(&worst_dump) / 1e6,
           (double)atomic_load(&worst_base) / 1e6, (long long)dump_bytes);
    if (&weft__dumpstats)
        printf(" collect_ms=%.1f format_ms=%.1f stw_max_ms=%.2f", (double)weft__dumpstats.collect_ns / 1e6,
               (double)weft__dumpstats.format_ns / 1e6, (double)weft__dumpstats.stw_max_ns / 1e6);
    printf(" maxrss_kb=%ld\n", bench_maxrss_kb());
    return 0;
}
