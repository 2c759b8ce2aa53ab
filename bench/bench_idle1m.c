/*
 * bench_idle1m.c — what a parked goroutine costs in memory: the main
 * goroutine starts n goroutines (default 1,000,000) that each check in on a
 * wait group and then park receiving from one shared channel.  Once all
 * have checked in it reads the resident set size (/proc/self/status) and
 * reports (RSS with all parked - RSS before the first spawn) / n, and the
 * minor page faults (getrusage) the spawns and parks took, per goroutine.  Then it
 * closes the channel, which wakes them all, and waits until every one has
 * counted itself out; the count must be n.  The Go peer does the same.
 *
 * RSS is what the kernel reports as resident: the touched pages of the
 * stacks, the G records, the allocator's heap.  Page tables are not part
 * of it (VmPTE); the line reports them separately as pte_bytes_per_g.
 *
 * Options: -p PROCS (0 = runtime default), -n GOROUTINES (default
 * 1,000,000), -c: spawn them with weft_attr.compact, so that each parked
 * goroutine's stack is copied out and its pages given back (README,
 * "stacks at scale"); the line is then name=idle1m_compact.
 */
#include <stdatomic.h>
#include <string.h>

#include "bench_common.h"
#include "weft.h"

static struct bench_args args = { .procs = 0, .n = 1000000, .reps = 1 };
static weft_chan *release;
static weft_wg ready = WEFT_WG_INIT, finished = WEFT_WG_INIT;
static atomic_long woken;
static int procs_used;
static long rss_before_kb, rss_parked_kb, pte_before_kb, pte_parked_kb;
static int parked_seen;             /* weft_num_goroutine() with all parked */
static long minflt_before, minflt_parked;
static int64_t spawn_ns, release_ns;
static int64_t setup_error;
static bool compact;                /* -c */

/* The resident set and page-table size of this process in KiB, from
 * /proc/self/status (VmRSS, VmPTE); -1 if unreadable. */
static void read_status(long *rss_kb, long *pte_kb)
{
    *rss_kb = *pte_kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmPTE:", 6) == 0)
            *pte_kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
}

static void parked(void *arg)
{
    (void)arg;
    weft_wg_done(&ready);
    weft_chan_recv(release, NULL);      /* parks until main closes it */
    atomic_fetch_add_explicit(&woken, 1, memory_order_relaxed);
    weft_wg_done(&finished);
}

static void bench_main(void *arg)
{
    (void)arg;
    if (args.procs > 0)
        weft_maxprocs((int)args.procs);
    procs_used = weft_maxprocs(0);
    release = weft_chan_new(0, 0);
    if (!release) {
        setup_error = -ENOMEM;
        return;
    }
    read_status(&rss_before_kb, &pte_before_kb);

    minflt_before = bench_minflt();
    int64_t t0 = bench_now_ns();
    weft_wg_add(&ready, (int)args.n);
    weft_wg_add(&finished, (int)args.n);
    for (long i = 0; i < args.n; i++) {
        weft_attr a = { .compact = compact };
        int64_t id = weft_go_attr(&a, parked, NULL);
        if (id < 0) {
            /* The ones already started stay parked; the end of main ends
             * them. */
            setup_error = id;
            return;
        }
    }
    weft_wg_wait(&ready);
    spawn_ns = bench_now_ns() - t0;
    /* Between its weft_wg_done and its park a goroutine runs a few
     * instructions; give the last ones a moment to get there. */
    weft_sleep(10 * 1000 * 1000);
    parked_seen = weft_num_goroutine();
    read_status(&rss_parked_kb, &pte_parked_kb);
    minflt_parked = bench_minflt();

    t0 = bench_now_ns();
    weft_chan_close(release);
    weft_wg_wait(&finished);
    release_ns = bench_now_ns() - t0;
}

int main(int argc, char **argv)
{
    /* -c is ours; the common options go to bench_parse_args. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-c") == 0)
            compact = true;
        else
            argv[kept++] = argv[i];
    }
    argc = kept;
    argv[argc] = NULL;
    bench_parse_args(argc, argv, "p:n:", "[-c] [-p PROCS] [-n GOROUTINES]",
                     1, 100000000, &args);
    int rc = weft_main(bench_main, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_idle1m: weft_main failed: %d\n", rc);
        return 1;
    }
    if (setup_error != 0) {
        fprintf(stderr, "bench_idle1m: setup failed: %lld\n", (long long)setup_error);
        return 1;
    }
    if (rss_before_kb < 0 || rss_parked_kb < 0) {
        fprintf(stderr, "bench_idle1m: cannot read VmRSS from /proc/self/status\n");
        return 1;
    }
    long got = atomic_load(&woken);
    if (got != args.n || parked_seen < args.n) {
        fprintf(stderr, "bench_idle1m: wrong answer: %d goroutines existed while parked "
                "and %ld woke up and finished, want %ld\n", parked_seen, got, args.n);
        return 1;
    }
    double per_g = (double)(rss_parked_kb - rss_before_kb) * 1024.0 / (double)args.n;
    double pte_per_g = (pte_before_kb < 0 || pte_parked_kb < 0) ? -1.0
        : (double)(pte_parked_kb - pte_before_kb) * 1024.0 / (double)args.n;
    printf("name=%s impl=weft procs=%d bytes_per_g=%.0f maxrss_kb=%ld pte_bytes_per_g=%.0f "
           "spawn_ms=%.1f release_ms=%.1f faults_per_g=%.2f\n",
           compact ? "idle1m_compact" : "idle1m", procs_used, per_g, bench_maxrss_kb(), pte_per_g,
           (double)spawn_ns / 1e6, (double)release_ns / 1e6,
           (double)(minflt_parked - minflt_before) / (double)args.n);
    return 0;
}
