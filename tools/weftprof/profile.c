/*
 * profile.c — the stack store (profile.h): a hash index over stacks, grown
 * at half full.  A long profile of a busy program holds thousands of
 * distinct stacks; each sample adds one lookup per thread.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"

void profile_init(wp_profile *p)
{
    memset(p, 0, sizeof *p);
}

void profile_fini(wp_profile *p)
{
    for (uint32_t i = 0; i < p->nstacks; i++)
        free(p->stacks[i]);
    free(p->stacks);
    free(p->idx);
    memset(p, 0, sizeof *p);
}

static uint32_t stack_hash(const uintptr_t *pcs, int depth, int thread, int64_t goid, int gen)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(uint32_t)thread ^ ((uint64_t)gen << 32);
    h = (h ^ (uint64_t)goid) * 1099511628211ULL;
    for (int i = 0; i < depth; i++) {
        h ^= pcs[i];
        h *= 1099511628211ULL;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ (h >> 32));
}

static bool same(const wp_stack *s, uint32_t hash, const uintptr_t *pcs, int depth, int thread,
                 int64_t goid, int gen)
{
    return s->hash == hash && s->depth == depth && s->thread == thread && s->goid == goid &&
           s->gen == gen &&
           memcmp(s->pcs, pcs, (size_t)depth * sizeof *pcs) == 0;
}

static int grow(wp_profile *p)
{
    if ((p->nstacks + 1) * 2 <= p->slots && p->nstacks < p->cap)
        return 0;
    if (p->nstacks == p->cap) {
        uint32_t nc = p->cap ? 2 * p->cap : 256;
        wp_stack **ns = realloc(p->stacks, nc * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        p->stacks = ns;
        p->cap = nc;
    }
    if ((p->nstacks + 1) * 2 > p->slots) {
        uint32_t nslots = p->slots ? 2 * p->slots : 1024;
        uint32_t *ni = calloc(nslots, sizeof *ni);
        if (!ni)
            return -ENOMEM;
        for (uint32_t i = 0; i < p->nstacks; i++) {
            uint32_t h = p->stacks[i]->hash & (nslots - 1);
            while (ni[h])
                h = (h + 1) & (nslots - 1);
            ni[h] = i + 1;
        }
        free(p->idx);
        p->idx = ni;
        p->slots = nslots;
    }
    return 0;
}

int profile_add(wp_profile *p, const uintptr_t *pcs, int depth, int thread, int64_t goid, int gen,
                int64_t weight)
{
    uint32_t hash = stack_hash(pcs, depth, thread, goid, gen);
    if (p->slots) {
        for (uint32_t h = hash & (p->slots - 1); p->idx[h]; h = (h + 1) & (p->slots - 1)) {
            wp_stack *s = p->stacks[p->idx[h] - 1];
            if (same(s, hash, pcs, depth, thread, goid, gen)) {
                s->count += weight;
                p->threadstacks++;
                p->total += weight;
                return 0;
            }
        }
    }
    if (grow(p) < 0)
        return -ENOMEM;
    wp_stack *s = malloc(sizeof *s + (size_t)depth * sizeof *pcs);
    if (!s)
        return -ENOMEM;
    p->threadstacks++;
    p->total += weight;
    s->hash = hash;
    s->gen = gen;
    s->thread = thread;
    s->goid = goid;
    s->depth = depth;
    s->count = weight;
    memcpy(s->pcs, pcs, (size_t)depth * sizeof *pcs);
    uint32_t i = p->nstacks++;
    p->stacks[i] = s;
    uint32_t h = hash & (p->slots - 1);
    while (p->idx[h])
        h = (h + 1) & (p->slots - 1);
    p->idx[h] = i + 1;
    return 1;
}
