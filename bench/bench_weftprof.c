/*
 * bench_weftprof — what weftprof costs the process it profiles.
 *
 * A forked CPU-bound target (1 or 2 threads, each counting units of work
 * into shared memory) runs alternately unprofiled and under
 * `weftprof -p PID -hz 100`; the work done per second in each state, in the
 * same invocation, gives the slowdown (median of the rounds).  Then
 * `weftprof -hz 10000` against the same target shows how many samples per
 * second weftprof sustains on this machine (it samples back to back when it
 * cannot keep up), and how long each sample stops the target.
 *
 *   bench_weftprof [PATH_TO_WEFTPROF] [SECONDS_PER_ROUND]
 *
 * One line per measurement:
 *   name=weftprof_overhead threads=1 hz=100 base_ops_s=... prof_ops_s=... slowdown_pct=... samples_s=...
 *   name=weftprof_max threads=1 hz=10000 samples_s=... stop_us=...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WEFTPROF_PATH
#define WEFTPROF_PATH "weftprof"
#endif
#define ROUNDS 5

static volatile unsigned long *counters;  /* one per target thread, in shared memory */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- the target ------------------------------------------------------------ */

__attribute__((noinline)) static unsigned long work_unit(unsigned long x)
{
    for (int i = 0; i < 10000; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    return x;
}

static void *burner(void *arg)
{
    volatile unsigned long *c = arg;
    unsigned long x = (unsigned long)arg;
    for (;;) {
        x = work_unit(x);
        __atomic_store_n(c, *c + 1 + (x == 0), __ATOMIC_RELAXED);  /* (x == 0) keeps x live */
    }
    return NULL;
}

static pid_t start_target(int nthreads)
{
    pid_t pid = fork();
    if (pid == 0) {
        pthread_t t;
        for (int i = 1; i < nthreads; i++)
            pthread_create(&t, NULL, burner, (void *)&counters[i]);
        burner((void *)&counters[0]);
    }
    return pid;
}

static unsigned long total(int nthreads)
{
    unsigned long s = 0;
    for (int i = 0; i < nthreads; i++)
        s += __atomic_load_n(&counters[i], __ATOMIC_RELAXED);
    return s;
}

/* ---- weftprof -------------------------------------------------------------- */

static long tracer_of(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    long t = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "TracerPid:", 10) == 0)
            t = strtol(line + 10, NULL, 10);
    if (f)
        fclose(f);
    return t;
}

/* Starts weftprof on pid; its stderr goes to errfile. */
static pid_t start_weftprof(const char *wp, pid_t pid, int hz, double seconds, const char *errfile)
{
    char spid[32], shz[32], sd[32];
    snprintf(spid, sizeof spid, "%d", (int)pid);
    snprintf(shz, sizeof shz, "%d", hz);
    snprintf(sd, sizeof sd, "%.3f", seconds);
    pid_t w = fork();
    if (w == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen(errfile, "w", stderr))
            _exit(126);
        execl(wp, wp, "-p", spid, "-hz", shz, "-d", sd, (char *)NULL);
        _exit(127);
    }
    /* Wait until it holds the target (poll sparingly: this box has 2 CPUs). */
    for (int i = 0; i < 2000 && tracer_of(pid) != w; i++)
        sleep_s(0.001);
    return w;
}

/* "N samples in S s (R/s); target stopped U us per sample" from its summary. */
static void parse_summary(const char *errfile, double *rate, double *stop_us)
{
    char line[1024];
    *rate = *stop_us = 0;
    FILE *f = fopen(errfile, "re");
    while (f && fgets(line, sizeof line, f)) {
        char *p = strstr(line, " samples in ");
        if (!p)
            continue;
        char *q = strchr(p, '(');
        if (q)
            *rate = atof(q + 1);
        q = strstr(p, "target stopped ");
        if (q)
            *stop_us = atof(q + 15);
    }
    if (f)
        fclose(f);
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *wp = argc > 1 ? argv[1] : WEFTPROF_PATH;
    double secs = argc > 2 ? atof(argv[2]) : 1.0;
    if (access(wp, X_OK) != 0) {
        fprintf(stderr, "bench_weftprof: cannot run %s\n", wp);
        return 1;
    }
    counters = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counters == MAP_FAILED)
        return 1;
    char errfile[] = "/tmp/bench_weftprof.XXXXXX";
    int efd = mkstemp(errfile);
    if (efd < 0)
        return 1;
    close(efd);

    for (int nthreads = 1; nthreads <= 2; nthreads++) {
        memset((void *)counters, 0, 4096);
        pid_t target = start_target(nthreads);
        sleep_s(0.2);
        double base[ROUNDS], prof[ROUNDS], rates[ROUNDS], stops[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            /* unprofiled */
            unsigned long c0 = total(nthreads);
            double t0 = now();
            sleep_s(secs);
            base[r] = (double)(total(nthreads) - c0) / (now() - t0);
            /* profiled at 100 Hz: measured inside weftprof's -d window */
            pid_t w = start_weftprof(wp, target, 100, secs + 0.4, errfile);
            sleep_s(0.1);
            c0 = total(nthreads);
            t0 = now();
            sleep_s(secs);
            prof[r] = (double)(total(nthreads) - c0) / (now() - t0);
            waitpid(w, NULL, 0);
            parse_summary(errfile, &rates[r], &stops[r]);
        }
        double b = median(base, ROUNDS), p = median(prof, ROUNDS);
        printf("name=weftprof_overhead threads=%d hz=100 base_ops_s=%.0f prof_ops_s=%.0f "
               "slowdown_pct=%.2f samples_s=%.1f stop_us=%.0f\n",
               nthreads, b, p, 100.0 * (b - p) / b, median(rates, ROUNDS), median(stops, ROUNDS));
        fflush(stdout);

        /* as fast as it goes */
        for (int r = 0; r < 3; r++) {
            pid_t w = start_weftprof(wp, target, 10000, secs, errfile);
            waitpid(w, NULL, 0);
            parse_summary(errfile, &rates[r], &stops[r]);
        }
        printf("name=weftprof_max threads=%d hz=10000 samples_s=%.0f stop_us=%.0f\n", nthreads,
               median(rates, 3), median(stops, 3));
        fflush(stdout);
        kill(target, SIGKILL);
        waitpid(target, NULL, 0);
    }
    unlink(errfile);
    return 0;
}
