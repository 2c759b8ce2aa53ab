/*
 * profile.h — the samples weftprof has taken: each distinct stack (with the
 * thread name, goroutine and exec generation it was seen in) once, with a
 * count of the ticks it stands for.  A sample normally stands for one tick
 * of -hz; one that came late (the previous sample or the machine was slow)
 * stands for every tick that came due since the sample before, so the
 * counts add up to the time sampled at any rate.
 */
#ifndef WEFTPROF_PROFILE_H
#define WEFTPROF_PROFILE_H

#include <stdint.h>

typedef struct wp_stack {
    uint32_t hash;     /* of everything below, for the index */
    int gen;           /* exec generation (symbols.h) */
    int thread;        /* interned thread name (/proc/.../comm) */
    int64_t goid;      /* the goroutine the thread ran (goroutines.h), 0 if none */
    int depth;         /* entries in pcs */
    int64_t count;     /* ticks this stack stands for (the weights of its samples) */
    uintptr_t pcs[];   /* leaf first, as sampler_unwind gives them */
} wp_stack;

typedef struct wp_profile {
    wp_stack **stacks;      /* distinct stacks, in order of first sight */
    uint32_t nstacks, cap;
    uint32_t *idx;          /* open-addressing index: position + 1, 0 = empty */
    uint32_t slots;
    int64_t samples;        /* samples (stops of the whole process) taken */
    int64_t threadstacks;   /* thread stacks recorded over all samples */
    int64_t total;          /* their weight: the sum of every stack's count */
} wp_profile;

void profile_init(wp_profile *p);
void profile_fini(wp_profile *p);

/* Counts one stack of a thread running goroutine goid (0: none) for
 * weight ticks.  1 if it was new (its pcs are then worth symbolizing), 0
 * if it merged with an earlier one, -ENOMEM. */
int profile_add(wp_profile *p, const uintptr_t *pcs, int depth, int thread, int64_t goid, int gen,
                int64_t weight);

/* The lookup key of frame i of a stack (symbols.h): the exact pc for the
 * leaf, the call instruction for a return address. */
static inline uint64_t profile_key(const uintptr_t *pcs, int i)
{
    return i == 0 ? pcs[0] : pcs[i] - 1;
}

#endif
