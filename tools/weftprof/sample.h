/*
 * sample.h — unwinding a stopped thread of the target with libunwind's
 * ptrace module (remote unwinding through PTRACE_PEEKDATA / PEEKUSER).
 */
#ifndef WEFTPROF_SAMPLE_H
#define WEFTPROF_SAMPLE_H

#include <libunwind.h>
#include <stdbool.h>
#include <stdint.h>

#include "tracer.h"

#define WP_MAXDEPTH 128  /* frames kept per stack; deeper stacks are cut at the root end */

typedef struct wp_range {
    uint64_t lo, hi;
} wp_range;

typedef struct wp_sampler {
    unw_addr_space_t as;  /* the target's address space, shared by all its threads */
    wp_range *exec;       /* its executable mappings, sorted; reread on a miss */
    int nexec, capexec;
    int64_t exec_read;    /* when they were last read (CLOCK_MONOTONIC ns), 0 = never */
} wp_sampler;

/* 0, or -1 if libunwind cannot make an address space. */
int sampler_init(wp_sampler *s);
void sampler_fini(wp_sampler *s);

/* The target exec'd: forget every cached unwind table. */
void sampler_flush(wp_sampler *s);

/* Says whether the frame at key (profile.h) is new, i.e. worth the extra
 * lookup of its function's bounds. */
typedef bool (*wp_isnew)(void *arg, uint64_t key);

/* Unwinds th (which must be in a ptrace-stop) into pcs, leaf first:
 * pcs[0] is the exact pc; every other entry is a return address, except
 * that the frame interrupted by a signal is stored as its pc + 1 so that,
 * like a return address, pc - 1 lies in its function.  For each frame whose
 * key isnew() says is new, starts[i] is the start of the function's unwind
 * entry (FDE) — where the function begins, named or not — else 0.
 * Returns the depth, 0 if not even the registers could be read. */
int sampler_unwind(wp_sampler *s, wp_thread *th, uintptr_t *pcs, uint64_t *starts, int max,
                   wp_isnew isnew, void *arg);

/* th is going away: frees its libunwind handle. */
void sampler_thread_gone(wp_sampler *s, wp_thread *th);

#endif
