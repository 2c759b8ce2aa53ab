/*
 * profile.h — the samples weftprof has taken: each distinct stack (with the
 * thread name and exec generation it was seen in) once, with a count.
 */
#ifndef WEFTPROF_PROFILE_H
#define WEFTPROF_PROFILE_H

#include <stdint.h>

typedef struct wp_stack {
    uint32_t hash;     /* of everything below, for the index */
    int gen;           /* exec generation (symbols.h) */
    int thread;        /* interned thread name (/proc/.../comm) */
    int depth;         /* entries in pcs */
    int64_t count;     /* times this stack was sampled */
    uintptr_t pcs[];   /* leaf first, as sampler_unwind gives them */
} wp_stack;

typedef struct wp_profile {
    wp_stack **stacks;  /* distinct stacks, in order of first sight */
    uint32_t nstacks, cap;
    uint32_t *idx;      /* open-addressing index: position + 1, 0 = empty */
    uint32_t slots;
    int64_t samples;    /* samples (stops of the whole process) taken */
    int64_t total;      /* thread stacks recorded over all samples */
} wp_profile;

void profile_init(wp_profile *p);
void profile_fini(wp_profile *p);

/* Counts one stack.  1 if it was new (its pcs are then worth symbolizing),
 * 0 if it merged with an earlier one, -ENOMEM. */
int profile_add(wp_profile *p, const uintptr_t *pcs, int depth, int thread, int gen);

/* The lookup key of frame i of a stack (symbols.h): the exact pc for the
 * leaf, the call instruction for a return address. */
static inline uint64_t profile_key(const uintptr_t *pcs, int i)
{
    return i == 0 ? pcs[0] : pcs[i] - 1;
}

#endif
