/*
 * stacktab.h — stacks stored once (stacktab.c): a table of immutable
 * stack records keyed by their frames, as Go's mprof buckets, so that
 * the ten thousand goroutines one loop creates share one record of the
 * loop's stack.  The creation stacks of SCHEDDEBUG=tracebackancestors
 * live here.
 *
 * A record is never freed while the runtime runs and never changes once
 * published: a dump that found one (in a goroutine, without any lock, even
 * in a crash) may read it for as long as the runtime lives.  The table grows with the number
 * of distinct stacks, not with the number of goroutines.
 */
#ifndef WEFT_DIAG_STACKTAB_H
#define WEFT_DIAG_STACKTAB_H

#include <stdint.h>

typedef struct weft__stkrec {
    struct weft__stkrec *next;  /* const after publication: next in its bucket */
    uint32_t hash;              /* const */
    uint32_t n;                 /* const: frames in pcs */
    uintptr_t pcs[];            /* const: return addresses, innermost first */
} weft__stkrec;

/* The record of the n frames pcs, made if it is new; NULL if there was no
 * memory for it.  Lock-free (one CAS to publish a new record), safe from
 * any thread but not in a signal handler (it may allocate). */
const weft__stkrec *weft__stacktab_intern(const uintptr_t *pcs, uint32_t n);

/* Frees every record: only when nothing can hold one any more (the end
 * of the runtime, once every G is freed). */
void weft__stacktab_freeall(void);

/* Records made so far (tests: how much sharing happened). */
uint64_t weft__stacktab_len(void);

#endif
