/*
 * stacktab.c — the table of stack records (stacktab.h).
 *
 * A fixed array of buckets, each a singly linked chain of records pushed
 * at its head by CAS.  Readers walk a chain with no lock: a record is
 * complete before the CAS that publishes it (store-release semantics of
 * the full CAS, paired with the load-acquire of the bucket head), and
 * neither records nor links change afterwards.  Two threads interning the
 * same new stack at once both build a record; the loser of the CAS looks
 * again, finds the winner's and frees its own, so a stack has one record.
 *
 * 16384 buckets: a program has a few hundred creation sites, each with a
 * handful of distinct stacks, so chains stay a record or two long.  The
 * tracer's stack table (trace.c) is not reused: its ids are per trace and
 * it takes the tracer's lock, where this one is for the life of the
 * process and must not serialize spawning goroutines.
 */
#include <atomic_ops.h>
#include <stdlib.h>
#include <string.h>

#include "stacktab.h"

#define NBUCKETS 16384

static AO_t buckets[NBUCKETS];     /* atomic: weft__stkrec * heads */
static AO_t nrecs;                 /* atomic: a statistic */

static uint32_t stackhash(const uintptr_t *pcs, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (uint32_t i = 0; i < n; i++) {
        h ^= (uint64_t)pcs[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return (uint32_t)h;
}

static const weft__stkrec *find(const weft__stkrec *r, const weft__stkrec *end, uint32_t hash,
                                const uintptr_t *pcs, uint32_t n)
{
    for (; r != end; r = r->next)
        if (r->hash == hash && r->n == n && memcmp(r->pcs, pcs, n * sizeof *pcs) == 0)
            return r;
    return NULL;
}

const weft__stkrec *weft__stacktab_intern(const uintptr_t *pcs, uint32_t n)
{
    uint32_t hash = stackhash(pcs, n);
    AO_t *b = &buckets[hash & (NBUCKETS - 1)];
    /* load-acquire: pairs with the CAS that published the head, so its
     * record and every record after it are seen whole */
    const weft__stkrec *head = (const weft__stkrec *)AO_load_acquire(b);
    const weft__stkrec *r = find(head, NULL, hash, pcs, n);
    if (r)
        return r;
    weft__stkrec *nr = malloc(sizeof *nr + n * sizeof *pcs);
    if (!nr)
        return NULL;
    nr->hash = hash;
    nr->n = n;
    memcpy(nr->pcs, pcs, n * sizeof *pcs);
    for (;;) {
        nr->next = (weft__stkrec *)head;
        /* CAS-full: publishes the record written above (pairs with the
         * load-acquire of the head, here and in other interns) */
        if (AO_compare_and_swap_full(b, (AO_t)head, (AO_t)nr)) {
            AO_fetch_and_add1(&nrecs);     /* a statistic: no ordering */
            return nr;
        }
        /* Someone pushed meanwhile, maybe this very stack: look at what
         * is new (load-acquire, as above) before trying again. */
        const weft__stkrec *old = head;
        head = (const weft__stkrec *)AO_load_acquire(b);
        r = find(head, old, hash, pcs, n);
        if (r) {
            free(nr);
            return r;
        }
    }
}

void weft__stacktab_freeall(void)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        weft__stkrec *r = (weft__stkrec *)AO_load(&buckets[i]);    /* nothing runs: no order */
        AO_store(&buckets[i], 0);                                   /* nothing runs: no order */
        while (r) {
            weft__stkrec *next = r->next;
            free(r);
            r = next;
        }
    }
}

uint64_t weft__stacktab_len(void)
{
    return (uint64_t)AO_load(&nrecs);  /* a statistic: no ordering */
}
