/*
 * lock.h — the runtime's own locks and notes (lock.c), on futexes: the
 * one lower layer that both the scheduler core and the diagnostics use
 * (diag/ reaches it through diag/schedview.h).  Every lock has a rank
 * (lockrank.h).
 */
#ifndef WEFT_LOCK_H
#define WEFT_LOCK_H

#include <atomic_ops.h>
#include <stdbool.h>
#include <stdint.h>

/* A spin-wait hint to the CPU (and its sibling hyperthread). */
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__)
    __asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

#include "lockrank.h"

/* ---- low-level locks and notes (lock.c) -------------------------------- */

/* A futex mutex for the runtime's own short critical sections (Go's
 * lock_futex, with a fence-free unlock: see lock.c).  Zero is unlocked.
 * Every one has a rank, given where it is initialised; the order of the
 * ranks is in lockrank.h, and the WEFT_LOCKRANK build checks it. */
typedef struct {
    unsigned key;       /* atomic (AO_int_*), the futex word: 0 unlocked, 1 locked */
    unsigned sleepers;  /* atomic: threads asleep (or about to sleep) on key;
                         * the WEFT_LOCKRANK build keeps the rank in the top byte */
} weft__mutex;
void weft__lock(weft__mutex *l);
void weft__unlock(weft__mutex *l);
bool weft__trylock(weft__mutex *l);     /* for crash paths: never waits */

/* Labelling a lock with its rank (lockrank.h): WEFT__MUTEX_INIT(rank) for a
 * static lock, weft__lockinit at the initialisation of any other (before it
 * is shared), weft__lockrank_lazy where a lock has no initialisation call
 * (it labels it at its first use).  All three are nothing but a zero in the
 * normal build. */
#ifdef WEFT_LOCKRANK
#define WEFT__LOCKRANK_SHIFT 24
#define WEFT__SLEEPERS_MASK  ((1u << WEFT__LOCKRANK_SHIFT) - 1)
#define WEFT__MUTEX_INIT(rank) { .key = 0, .sleepers = (unsigned)(rank) << WEFT__LOCKRANK_SHIFT }
static inline void weft__lockinit(weft__mutex *l, weft__lockrank rank)
{
    /* plain store: the lock is not shared yet */
    l->sleepers = (unsigned)rank << WEFT__LOCKRANK_SHIFT;
}
weft__mutex *weft__lockrank_lazy(weft__mutex *l, weft__lockrank rank);
int weft__lockrank_held(int *ranks, int max);  /* tests: this thread's held ranks */
#else
#define WEFT__SLEEPERS_MASK  (~0u)
#define WEFT__MUTEX_INIT(rank) { 0 }
static inline void weft__lockinit(weft__mutex *l, weft__lockrank rank) { (void)l; (void)rank; }
static inline weft__mutex *weft__lockrank_lazy(weft__mutex *l, weft__lockrank rank) { (void)rank; return l; }
#endif
/* Tests only: the unlock protocol (set before any thread uses a lock) and
 * how often a locker has gone to sleep. */
extern bool weft__lock_asymfence;
extern AO_t weft__lock_sleeps;

/* A one-shot wake-up event an M sleeps on (Go's note).  noteclear before
 * reuse; exactly one notewakeup per sleep. */
typedef struct { AO_t key; } weft__note;
void weft__noteclear(weft__note *n);
void weft__notewakeup(weft__note *n);
void weft__notesleep(weft__note *n);
/* Sleeps at most ns; returns true if woken, false on timeout. */
bool weft__notetsleep(weft__note *n, int64_t ns);

#endif /* WEFT_LOCK_H */
