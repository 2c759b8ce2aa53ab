/*
 * lock.c — the runtime's own mutex and notes, on futexes (Go's lock_futex.go).
 *
 * These protect short critical sections inside the scheduler (sched.lock,
 * the free lists) and park whole Ms.  They block the OS thread, never a
 * goroutine, so they must not be held across a context switch.
 */
#include "runtime.h"

enum { MUTEX_UNLOCKED = 0, MUTEX_LOCKED = 1, MUTEX_SLEEPING = 2 };
#define ACTIVE_SPIN     4
#define ACTIVE_SPIN_CNT 30
#define PASSIVE_SPIN    1

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
    __asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

void weft__lock(weft__mutex *l)
{
    /* Speculative grab.  CAS-full: acquire for the critical section. */
    if (AO_compare_and_swap_full(&l->key, MUTEX_UNLOCKED, MUTEX_LOCKED))
        return;
    /* wait is the state we leave behind when we take the lock: once we have
     * slept, others may be sleeping too, so we must wake one on unlock. */
    AO_t wait = MUTEX_LOCKED;
    for (;;) {
        for (int i = 0; i < ACTIVE_SPIN; i++) {
            for (int k = 0; k < ACTIVE_SPIN_CNT; k++) {
                /* load-acquire: cheap read-only spin before trying the CAS */
                if (AO_load_acquire(&l->key) == MUTEX_UNLOCKED &&
                    AO_compare_and_swap_full(&l->key, MUTEX_UNLOCKED, wait))
                    return;
                cpu_relax();
            }
        }
        for (int i = 0; i < PASSIVE_SPIN; i++) {
            if (AO_load_acquire(&l->key) == MUTEX_UNLOCKED &&
                AO_compare_and_swap_full(&l->key, MUTEX_UNLOCKED, wait))
                return;
            sched_yield();
        }
        /* Sleep.  fetch_and_add can't express "exchange"; a CAS loop does:
         * mark the mutex as having sleepers, then sleep if it was held. */
        AO_t v;
        do {
            v = AO_load_acquire(&l->key);
        } while (!AO_compare_and_swap_full(&l->key, v, MUTEX_SLEEPING));
        if (v == MUTEX_UNLOCKED)
            return;             /* we took it, marked as "sleepers may exist" */
        wait = MUTEX_SLEEPING;
        weft__futexwait(&l->key, MUTEX_SLEEPING, -1);
    }
}

bool weft__trylock(weft__mutex *l)
{
    /* CAS-full: acquire for the critical section, as weft__lock's fast path. */
    return AO_compare_and_swap_full(&l->key, MUTEX_UNLOCKED, MUTEX_LOCKED);
}

void weft__unlock(weft__mutex *l)
{
    /* An exchange, built from fetch-CAS (libatomic_ops has no exchange):
     * guess the uncontended state first, so that the common case is one
     * locked instruction on a line we already own, not a load that shares
     * it and a CAS that must take it back (measured: 23% of a 2-P channel
     * benchmark was this loop).  Full barrier: release for the critical
     * section. */
    AO_t v = MUTEX_LOCKED, old;
    while ((old = AO_fetch_compare_and_swap_full(&l->key, v, MUTEX_UNLOCKED)) != v)
        v = old;
    if (unlikely(v == MUTEX_UNLOCKED))
        weft__throw("unlock of unlocked lock");
    if (v == MUTEX_SLEEPING)
        weft__futexwake(&l->key, 1);
}

void weft__noteclear(weft__note *n)
{
    /* store-release: orders the clear before the next sleep's publication */
    AO_store_release(&n->key, 0);
}

void weft__notewakeup(weft__note *n)
{
    /* CAS-full as exchange: publishes everything written before the wakeup
     * (e.g. m->nextp) to the sleeper, which reads key with acquire. */
    AO_t old;
    do {
        old = AO_load(&n->key);
    } while (!AO_compare_and_swap_full(&n->key, old, 1));
    if (old != 0) {
        if (AO_load(&sched.exiting))
            return;     /* shutdown wakes everyone, possibly twice */
        weft__throw("notewakeup - double wakeup");
    }
    weft__futexwake(&n->key, 1);
}

void weft__notesleep(weft__note *n)
{
    /* load-acquire pairs with notewakeup's CAS-full. */
    while (AO_load_acquire(&n->key) == 0)
        weft__futexwait(&n->key, 0, -1);
}

bool weft__notetsleep(weft__note *n, int64_t ns)
{
    if (ns < 0) {
        weft__notesleep(n);
        return true;
    }
    int64_t deadline = weft__nanotime() + ns;
    while (AO_load_acquire(&n->key) == 0) {
        int64_t left = deadline - weft__nanotime();
        if (left <= 0)
            return AO_load_acquire(&n->key) != 0;
        weft__futexwait(&n->key, 0, left);
    }
    return true;
}
