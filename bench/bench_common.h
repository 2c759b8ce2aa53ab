/*
 * bench_common.h — the small pieces every C benchmark shares: a monotonic
 * clock, peak RSS, command-line parsing and the one output line.
 *
 * Every benchmark takes the same options: -p PROCS (number of Ps; 0 means
 * the runtime's default), -n N (iterations or problem size) and -r R
 * (repetitions, where the workload has them).  A bad value is reported by
 * name and ends the program with status 2.
 */
#ifndef WEFT_BENCH_COMMON_H
#define WEFT_BENCH_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The options of one benchmark; the caller fills in the defaults. */
struct bench_args {
    long procs;
    long n;
    long reps;
};

/* Nanoseconds on the monotonic clock. */
static inline int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Peak resident set size of this process in KiB (Linux reports KiB). */
static inline long bench_maxrss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss;
}

/* Minor page faults of this process so far (first touches of fresh
 * anonymous memory, mostly), or -1. */
static inline long bench_minflt(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_minflt;
}

/* The resident set size of this process now, in KiB (VmRSS of
 * /proc/self/status), or -1. */
static inline long bench_rss_kb(void)
{
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* Parses the value of option -opt as an integer in [lo, hi], or reports
 * the bad value and exits with status 2. */
static inline long bench_parse_long(const char *prog, int opt, const char *s,
                                    long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: bad value for -%c: '%s' (want an integer in [%ld, %ld])\n",
                prog, opt, s, lo, hi);
        exit(2);
    }
    return v;
}

/* Parses -p, -n and -r (only the letters listed in opts are accepted;
 * usage is printed after an unknown option).
 * n must lie in [n_lo, n_hi]; procs in [0, 1024]; reps in [1, 1e9]. */
static inline void bench_parse_args(int argc, char **argv, const char *opts,
                                    const char *usage, long n_lo, long n_hi,
                                    struct bench_args *a)
{
    const char *prog = argv[0];
    int c;
    while ((c = getopt(argc, argv, opts)) != -1) {
        switch (c) {
        case 'p': a->procs = bench_parse_long(prog, c, optarg, 0, 1024); break;
        case 'n': a->n = bench_parse_long(prog, c, optarg, n_lo, n_hi); break;
        case 'r': a->reps = bench_parse_long(prog, c, optarg, 1, 1000000000); break;
        default:
            fprintf(stderr, "usage: %s %s\n", prog, usage);
            exit(2);
        }
    }
    if (optind != argc) {
        fprintf(stderr, "%s: bad argument: '%s' (only options are taken)\n",
                prog, argv[optind]);
        exit(2);
    }
}

#endif
