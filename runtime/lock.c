/*
 * lock.c — the runtime's own mutex and notes, on futexes (Go's lock_futex.go).
 *
 * These protect short critical sections inside the scheduler (sched.lock,
 * the free lists) and park whole Ms.  They block the OS thread, never a
 * goroutine, so they must not be held across a context switch.
 */
#include "runtime.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * The mutex is two words: key (0 unlocked, 1 locked) and sleepers (how many
 * threads sleep, or are about to sleep, on key's futex).  Taking it is a CAS
 * on key, as in Go; releasing it is a plain store-release of 0 followed by
 * a load of sleepers, a wake-up only if that is non-zero.  Go's unlock is an
 * exchange, a locked instruction: a channel operation takes and releases a
 * lock, so an uncontended ping-pong round trip paid four of them for the
 * releases alone (13% of its time, measured).
 *
 * The store-then-load in unlock, against the sleeper's increment-then-load
 * of key, is Dekker's pattern: each side needs a full barrier between its
 * store and its load, or both can miss the other (the unlocker reads
 * sleepers == 0 while its store of key still sits in its store buffer, and
 * the sleeper sees key == 1 and sleeps forever).  The barrier is
 * asymmetric: the rare sleeper pays for both sides with membarrier(2)
 * (PRIVATE_EXPEDITED: every thread of ours running on a CPU executes a full
 * barrier before it returns, and one that is not running passes one when it
 * is switched in), so the frequent unlocker needs only a compiler barrier.
 * Where membarrier is unavailable, unlock uses a full fence instead.
 *
 * One heavy barrier per sleeper registration is enough: once sleepers != 0
 * is visible to every CPU, every later unlock sees it and wakes.  That wake
 * relies on the full barrier the kernel executes in futex_wake before it
 * looks for waiters ("barrier (B)" in kernel/futex/waitwake.c): it pushes
 * our key = 0 out of the store buffer, so a sleeper that has not reached
 * futex_wait yet finds the lock free instead of sleeping on a stale 1.
 *
 * tests/model/lock.pml checks all of this under x86-TSO with SPIN: both
 * protocols verify (mutual exclusion, no lost wake-up); without the
 * membarrier, or with a futex_wake that lacked barrier (B), it finds the
 * lost wake-up.
 */
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

/* Decided once, before main (so before any weft lock can be contended):
 * switching protocols while a lock has sleepers would lose a wake-up.
 * membarrier's registration survives fork and is dropped by exec. */
bool weft__lock_asymfence;
AO_t weft__lock_sleeps;     /* slow-path sleeper registrations (tests) */

__attribute__((constructor)) static void asymfence_init(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED))
        return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
        weft__lock_asymfence = true;
}

/* The sleeper's side of the barrier: after it, every thread's earlier
 * stores (an unlock's key = 0) are visible to us, and our earlier stores
 * (sleepers + 1) to every later load of theirs. */
static void heavyfence(void)
{
    if (!weft__lock_asymfence)
        return;     /* the unlocker fences itself */
    /* Registered at start-up (and inherited by fork), so this cannot fail
     * short of a kernel bug; going on without it could lose a wake-up. */
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0)
        weft__throw("lock: membarrier failed");
}

static inline bool trylock(weft__mutex *l)
{
    /* load first: a read-only spin shares the line instead of stealing it;
     * CAS-full: acquire for the critical section. */
    return AO_int_load(&l->key) == 0 && AO_int_compare_and_swap_full(&l->key, 0, 1);
}

void weft__lock(weft__mutex *l)
{
    /* Speculative grab.  CAS-full: acquire for the critical section. */
    if (likely(AO_int_compare_and_swap_full(&l->key, 0, 1)))
        return;
    for (int i = 0; i < ACTIVE_SPIN; i++) {
        for (int k = 0; k < ACTIVE_SPIN_CNT; k++) {
            if (trylock(l))
                return;
            cpu_relax();
        }
    }
    for (int i = 0; i < PASSIVE_SPIN; i++) {
        if (trylock(l))
            return;
        sched_yield();
    }
    /* Sleep.  fetch-and-add-full: our registration is a full barrier on
     * our side; heavyfence makes the unlockers' side one too. */
    AO_int_fetch_and_add1_full(&l->sleepers);
    AO_fetch_and_add1(&weft__lock_sleeps);     /* a statistic: no ordering */
    heavyfence();
    while (!trylock(l))
        weft__futexwait(&l->key, 1, -1);   /* returns at once if key != 1 */
    /* fetch-and-sub: a count, ordered before our unlock by the lock */
    AO_int_fetch_and_sub1(&l->sleepers);
}

bool weft__trylock(weft__mutex *l)
{
    /* CAS-full: acquire for the critical section, as weft__lock's fast path. */
    return AO_int_compare_and_swap_full(&l->key, 0, 1);
}

void weft__unlock(weft__mutex *l)
{
    /* load: only the holder writes key while it is 1 */
    if (unlikely(AO_int_load(&l->key) != 1))
        weft__throw("unlock of unlocked lock");
    if (likely(weft__lock_asymfence)) {
        /* store-release: the critical section happens before the next
         * holder's CAS; then the sleepers load must not be hoisted above
         * the store by the compiler (the CPU may: heavyfence covers it). */
        AO_int_store_release(&l->key, 0);
        AO_compiler_barrier();
    } else {
        /* store-full: the store, then a full fence before the load. */
        AO_int_store_full(&l->key, 0);
    }
    if (unlikely(AO_int_load(&l->sleepers) != 0))
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
    int64_t deadline = weft__deadline(ns);
    while (AO_load_acquire(&n->key) == 0) {
        int64_t left = deadline - weft__nanotime();
        if (left <= 0)
            return AO_load_acquire(&n->key) != 0;
        weft__futexwait(&n->key, 0, left);
    }
    return true;
}
