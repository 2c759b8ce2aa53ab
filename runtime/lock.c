/*
 * lock.c — the runtime's own mutex and notes, on futexes (Go's lock_futex.go),
 * and the lock-rank checker of the WEFT_LOCKRANK build (Go's lockrank_on.go).
 *
 * These protect short critical sections inside the scheduler (sched.lock,
 * the free lists) and park whole Ms.  They block the OS thread, never a
 * goroutine, so they must not be held across a context switch (except by
 * a parking goroutine, whose successor on the same thread releases it).
 * The order in which they may be taken is in lockrank.h.
 */
#include "runtime.h"
#include "race.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef WEFT_LOCKRANK
#include <sys/mman.h>
#endif

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

/* Decided once, before main (so before any weft lock can be contended):
 * switching protocols while a lock has sleepers would lose a wake-up.
 * membarrier's registration survives fork and is dropped by exec. */
bool weft__lock_asymfence;
AO_t weft__lock_sleeps;     /* slow-path sleeper registrations (tests) */

__attribute__((constructor)) static void asymfence_init(void)
{
    /* Under helgrind and DRD the unlocker fences itself, in the branch
     * that also tells them about the unlock (weft__unlock). */
    if (weft__race_vgtool())
        return;
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

/* ---- lock ranks (the WEFT_LOCKRANK build; the design is in lockrank.h) ---- */

#ifdef WEFT_LOCKRANK

typedef struct {
    weft__mutex *l;
    int rank;
} heldlock;

/* The locks this OS thread holds, in acquisition order.  Room for the usual
 * few inline; a select over many channels moves the list to a mapping of
 * its own (mmap, not malloc: crash paths and signal handlers lock too),
 * unmapped when the thread exits.  Initial-exec, as the current G's TLS
 * (sched.c): a signal handler may read it. */
#define HELD_INLINE 16
static __thread struct {
    int n, cap;             /* held locks; room in h (0: h not set up yet) */
    heldlock *h;            /* inl, or the mapping */
    heldlock inl[HELD_INLINE];
} held __attribute__((tls_model("initial-exec")));

/* mayhold[r]: the ranks that may be held when r is acquired, the transitive
 * closure of lockrank.h's table (built before main, read-only after). */
static uint32_t mayhold[LOCKRANK_COUNT];
static pthread_key_t heldkey;   /* its destructor, heldfree, unmaps a grown list */

static int rankof(weft__mutex *l)
{
    /* load: the top byte is written once, before the lock is shared (or by
     * weft__lockrank_lazy's CAS, which this thread's own call performed or
     * observed); the count below it changes under us and is masked off. */
    return (int)(AO_int_load(&l->sleepers) >> WEFT__LOCKRANK_SHIFT);
}

static void printheld(void)
{
    weft__printf(2, "runtime: this thread holds %d lock%s:\n", held.n, held.n == 1 ? "" : "s");
    for (int i = 0; i < held.n; i++)
        weft__printf(2, "\t%s (rank %d) at %p\n", weft__lockrank_name(held.h[i].rank),
                     held.h[i].rank, (void *)held.h[i].l);
}

/* A lock nobody labelled (or whose rank byte is no rank): say where to fix it. */
static __attribute__((noreturn)) void norank(weft__mutex *l, int rank)
{
    weft__printf(2, "runtime: lock at %p has no rank (rank byte %d): label it where it is "
                    "initialised (lockrank.h)\n", (void *)l, rank);
    printheld();
    weft__throw("lock without a rank");
}

static bool ranked(int rank) { return rank > LOCKRANK_NONE && rank < LOCKRANK_COUNT; }

/* At thread exit (the key's destructor): unmaps a grown list. */
static void heldfree(void *unused)
{
    (void)unused;
    if (held.h && held.h != held.inl && held.n <= HELD_INLINE) {
        for (int i = 0; i < held.n; i++)
            held.inl[i] = held.h[i];
        munmap(held.h, (size_t)held.cap * sizeof(heldlock));
        held.h = held.inl;
        held.cap = HELD_INLINE;
    }
}

/* Priority 101, the first: a program's own constructors may already lock
 * (statically linked, they could otherwise run before this one). */
__attribute__((constructor(101))) static void lockrank_init(void)
{
    /* Every entry names a lower rank (or the rank itself: several at once),
     * so the ranks in enum order are a topological order of the table and
     * the closure is one pass upwards. */
    for (int r = 1; r < LOCKRANK_COUNT; r++) {
        uint32_t after = weft__lockrank_after(r);
        mayhold[r] = after;
        for (int b = 0; b < LOCKRANK_COUNT; b++) {
            if (!(after & ((uint32_t)1 << b)) || b == r)
                continue;
            if (b == LOCKRANK_NONE || b > r) {
                weft__printf(2, "runtime: lockrank.h: %s (rank %d) listed as held before %s (rank %d)\n",
                             weft__lockrank_name(b), b, weft__lockrank_name(r), r);
                weft__throw("lock rank table is not a partial order");
            }
            mayhold[r] |= mayhold[b];
        }
    }
    if (pthread_key_create(&heldkey, heldfree) != 0)
        weft__throw("lockrank: pthread_key_create failed");
}

static void heldpush(weft__mutex *l, int rank)
{
    if (held.cap == 0) {
        held.h = held.inl;
        held.cap = HELD_INLINE;
    }
    if (held.n == held.cap) {
        size_t cap = (size_t)held.cap * 2;
        heldlock *h = mmap(NULL, cap * sizeof *h, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (h == MAP_FAILED) {
            if (AO_load(&weft__panicking))
                return;     /* crash output goes on without the record */
            weft__throw("lockrank: out of memory for the held locks");
        }
        for (int i = 0; i < held.n; i++)
            h[i] = held.h[i];
        if (held.h != held.inl)
            munmap(held.h, (size_t)held.cap * sizeof *h);
        else
            pthread_setspecific(heldkey, &held);   /* any non-NULL value: heldfree runs */
        held.h = h;
        held.cap = (int)cap;
    }
    /* The slot before the count: a crash handler interrupting us between
     * the two overwrites only a slot nobody counts yet. */
    held.h[held.n] = (heldlock){ l, rank };
    AO_compiler_barrier();
    held.n++;
}

/* Before a blocking acquisition: may this thread wait for l now? */
static void lockrank_acquire(weft__mutex *l)
{
    if (AO_load(&weft__panicking))
        return;     /* crash output: record, never throw (see lockrank.h) */
    int rank = rankof(l);
    if (!ranked(rank))
        norank(l, rank);
    for (int i = held.n - 1; i >= 0; i--) {
        heldlock *h = &held.h[i];
        const char *why;
        if (h->l == l)
            why = " (the same lock: this thread would wait for itself)";
        else if (h->rank == rank && !(mayhold[rank] & ((uint32_t)1 << rank)))
            why = " (one lock of this rank at a time)";
        else if (h->rank == rank && (uintptr_t)h->l > (uintptr_t)l)
            why = " (locks of this rank are taken in increasing address order)";
        else if (h->rank != rank && !(mayhold[rank] & ((uint32_t)1 << h->rank)))
            why = "";
        else
            continue;
        weft__printf(2, "runtime: lock ordering problem: %s (rank %d) held while acquiring %s (rank %d)%s\n",
                     weft__lockrank_name(h->rank), h->rank, weft__lockrank_name(rank), rank, why);
        weft__printf(2, "runtime: acquiring %s (rank %d) at %p\n", weft__lockrank_name(rank), rank,
                     (void *)l);
        printheld();
        weft__throw("lock ordering problem");
    }
}

/* After any acquisition, blocking or try. */
static void lockrank_acquired(weft__mutex *l)
{
    int rank = rankof(l);
    if (!ranked(rank) && !AO_load(&weft__panicking))
        norank(l, rank);    /* (weft__lock's check saw it first; a trylock's is here) */
    heldpush(l, rank);
}

/* Before a release: this thread must hold l. */
static void lockrank_release(weft__mutex *l)
{
    for (int i = held.n - 1; i >= 0; i--) {
        if (held.h[i].l != l)
            continue;
        /* Releases need not be in reverse order: close the gap. */
        for (int k = i; k < held.n - 1; k++)
            held.h[k] = held.h[k + 1];
        AO_compiler_barrier();
        held.n--;
        return;
    }
    if (AO_load(&weft__panicking))
        return;
    int rank = rankof(l);
    weft__printf(2, "runtime: unlock of %s (rank %d) at %p, which this thread does not hold\n",
                 weft__lockrank_name(rank), rank, (void *)l);
    printheld();
    weft__throw("unlock of a lock not held");
}

weft__mutex *weft__lockrank_lazy(weft__mutex *l, weft__lockrank rank)
{
    unsigned s = AO_int_load(&l->sleepers);
    /* CAS: sleepers may be counting under us; the rank goes in once, and a
     * thread that lost the race reloads and finds it (no ordering needed:
     * the rank is read only by lockers, which run this first). */
    while ((s >> WEFT__LOCKRANK_SHIFT) == 0 &&
           !AO_int_compare_and_swap(&l->sleepers, s, s | (unsigned)rank << WEFT__LOCKRANK_SHIFT))
        s = AO_int_load(&l->sleepers);
    return l;
}

/* Tests: the ranks this thread holds, innermost last. */
int weft__lockrank_held(int *ranks, int max)
{
    int n = held.n < max ? held.n : max;
    for (int i = 0; i < n; i++)
        ranks[i] = held.h[i].rank;
    return held.n;
}

#else

static inline void lockrank_acquire(weft__mutex *l) { (void)l; }
static inline void lockrank_acquired(weft__mutex *l) { (void)l; }
static inline void lockrank_release(weft__mutex *l) { (void)l; }

#endif /* WEFT_LOCKRANK */

/* ---- the mutex ---------------------------------------------------------------- */

/* Out of line, as unlock_fenced: the fast paths of weft__lock and
 * weft__unlock stay leaves without a frame.  With a call inlined into
 * either, every call paid a prologue and an epilogue: callgrind counted
 * 6% more instructions in bench_pingpong. */
static __attribute__((noinline)) void lock_futex_slow(weft__mutex *l)
{
    for (int i = 0; i < ACTIVE_SPIN; i++) {
        for (int k = 0; k < ACTIVE_SPIN_CNT; k++) {
            if (trylock(l))
                return;
            weft__cpu_relax();
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

static inline void lock_futex(weft__mutex *l)
{
    /* Speculative grab.  CAS-full: acquire for the critical section. */
    if (likely(AO_int_compare_and_swap_full(&l->key, 0, 1)))
        return;
    lock_futex_slow(l);
}

void weft__lock(weft__mutex *l)
{
    lockrank_acquire(l);
    lock_futex(l);
    lockrank_acquired(l);
    if (unlikely(weft__vgswitch))
        weft__race_acquire_slow(l);     /* the unlocks before ours happen before (weft__unlock) */
}

bool weft__trylock(weft__mutex *l)
{
    /* CAS-full: acquire for the critical section, as weft__lock's fast path. */
    if (!AO_int_compare_and_swap_full(&l->key, 0, 1))
        return false;
    lockrank_acquired(l);   /* recorded, not order-checked: it never waits */
    if (unlikely(weft__vgswitch))
        weft__race_acquire_slow(l);
    return true;
}

/* The unlocker's full fence, where membarrier is unavailable and under
 * helgrind and DRD, which see no futex: for them the critical section
 * happens before the next holder's (weft__lock), as for a pthread mutex,
 * so that what a parking goroutine's unlockf reads on its stack on this
 * thread happens before the goroutine resumes on another (race.c).
 * asymfence_init sends them this way. */
static __attribute__((noinline)) void unlock_fenced(weft__mutex *l)
{
    if (unlikely(weft__vgswitch))
        weft__race_release_slow(l);
    /* store-full: the store, then a full fence before the load. */
    AO_int_store_full(&l->key, 0);
    if (unlikely((AO_int_load(&l->sleepers) & WEFT__SLEEPERS_MASK) != 0))
        weft__futexwake(&l->key, 1);
}

void weft__unlock(weft__mutex *l)
{
    /* load: only the holder writes key while it is 1 */
    if (unlikely(AO_int_load(&l->key) != 1))
        weft__throw("unlock of unlocked lock");
    lockrank_release(l);
    if (unlikely(!weft__lock_asymfence)) {
        unlock_fenced(l);
        return;
    }
    /* store-release: the critical section happens before the next
     * holder's CAS; then the sleepers load must not be hoisted above the
     * store by the compiler (the CPU may: heavyfence covers it). */
    AO_int_store_release(&l->key, 0);
    AO_compiler_barrier();
    /* (The mask drops the rank byte of the WEFT_LOCKRANK build.) */
    if (unlikely((AO_int_load(&l->sleepers) & WEFT__SLEEPERS_MASK) != 0))
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
