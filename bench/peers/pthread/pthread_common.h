/*
 * pthread_common.h — what every plain-pthreads peer shares: bench_common.h
 * (clock, peak RSS, option parsing, the output line's conventions) and the
 * meaning of -p, which for a pthreads program is the number of CPUs its
 * threads may run on.
 *
 * pt_use_cpus(prog, procs) restricts the calling thread to the first
 * `procs` CPUs of the affinity mask it started with (sched_setaffinity);
 * threads it creates afterwards inherit that mask, so calling it first
 * thing in main() pins the whole program.  procs = 0 leaves the mask alone.
 * It returns the number of CPUs in the mask, the value the program prints as
 * procs=; asking for more CPUs than the program may use is a bad -p (exit 2).
 */
#ifndef WEFT_PTHREAD_COMMON_H
#define WEFT_PTHREAD_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* sched_setaffinity, CPU_SET */
#endif
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "bench_common.h"

static inline int pt_use_cpus(const char *prog, long procs)
{
    cpu_set_t have, want;
    CPU_ZERO(&have);
    if (sched_getaffinity(0, sizeof have, &have) != 0) {
        fprintf(stderr, "%s: sched_getaffinity: %s\n", prog, strerror(errno));
        exit(1);
    }
    int avail = CPU_COUNT(&have);
    if (procs == 0)
        return avail;
    if (procs > avail) {
        fprintf(stderr, "%s: bad value for -p: '%ld' (only %d CPUs are available)\n",
                prog, procs, avail);
        exit(2);
    }
    CPU_ZERO(&want);
    int taken = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE && taken < procs; cpu++) {
        if (CPU_ISSET(cpu, &have)) {
            CPU_SET(cpu, &want);
            taken++;
        }
    }
    if (sched_setaffinity(0, sizeof want, &want) != 0) {
        fprintf(stderr, "%s: sched_setaffinity: %s\n", prog, strerror(errno));
        exit(1);
    }
    return taken;
}

/* Ends the program with a message when a pthread call returned an error. */
static inline void pt_check(const char *prog, const char *what, int err)
{
    if (err != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
        exit(1);
    }
}

#endif
