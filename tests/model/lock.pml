/*
 * lock.pml -- a SPIN model of weft's futex mutex (runtime/lock.c) under
 * x86-TSO, to check the memory-ordering argument of its unlock protocol:
 * a plain store of key = 0 followed by a plain load of sleepers, whose
 * missing store->load barrier is paid for by the (rare) sleeper with
 * membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED).
 *
 * ------------------------------------------------------------------------
 * Memory model (x86-TSO, Owens/Sarkar/Sewell)
 * ------------------------------------------------------------------------
 *  - mem[] is shared memory: KEY, SLEEPERS and DATA (a word the critical
 *    section increments, to check that the critical sections' plain stores
 *    are ordered before the release and seen by the next holder).
 *  - Each thread t has a private FIFO store buffer sb[t] (capacity SB).
 *    A plain store (STORE) appends (addr, value) to the tail of the buffer;
 *    it does not touch memory.
 *  - A plain load (LOAD) of addr returns the value of the NEWEST entry for
 *    addr in the thread's own buffer (store forwarding) if there is one,
 *    else the value in memory.  Other threads' buffers are invisible.
 *  - The process `drainer` removes the OLDEST entry of any non-empty buffer
 *    and writes it to memory, at nondeterministic times: this is the
 *    hardware draining the buffers in the background, in FIFO order (so
 *    stores become visible to others in program order: TSO's only
 *    relaxation is a later load passing an earlier store).
 *  - A locked read-modify-write (CAS, FETCH_ADD, FETCH_SUB: lock cmpxchg,
 *    lock xadd) first drains the thread's own buffer completely, then reads
 *    and writes memory as one indivisible step.  It is a full barrier.
 *  - mfence (MFENCE) drains the thread's own buffer completely.  (On the
 *    CPU the thread stalls until the buffer is empty; since the drain order
 *    is FIFO and the thread does nothing meanwhile, that is the same as
 *    writing the whole buffer out in one step.)
 *  - A compiler barrier or a store-release is nothing at the TSO level
 *    (on x86 every store is a release, AO_int_store_release is a mov), so
 *    the asymmetric unlock is exactly STORE then LOAD.
 * Every load and store of the protocol is an aligned 32-bit access, hence
 * single-copy atomic, so one step per access is exact.
 *
 * ------------------------------------------------------------------------
 * Kernel services
 * ------------------------------------------------------------------------
 *  - futex_wait(&key, 1): the kernel increments the hash bucket's waiter
 *    count, executes smp_mb() ("barrier (A)" in the ordering comment of
 *    kernel/futex/waitwake.c), then, under the hash-bucket lock, reads key
 *    and queues the thread if it is 1.  Modelled as: drain own buffer, then
 *    read key and queue, in one step (atomic w.r.t. futex_wake).  Spurious
 *    wake-ups and EINTR are modelled as futex_wait nondeterministically
 *    returning without sleeping: a thread that sleeps and is woken
 *    spuriously later is indistinguishable from one that returned at once
 *    and then was slow to run.  (A spurious wake cannot be modelled as a
 *    wake of a sleeping thread at any time: that would make every lost
 *    wake-up invisible.)
 *  - futex_wake(&key, 1): the kernel executes smp_mb() ("barrier (B)",
 *    futex_hb_waiters_pending()) before it looks for waiters, then wakes
 *    one queued thread, any one, if there is one.  Modelled as: drain own
 *    buffer, then wake any one queued thread, in one step.  Barrier (B) is
 *    the kernel's documented guarantee that a store to the futex word made
 *    before FUTEX_WAKE is visible to a waiter that is not yet queued; the
 *    asymmetric protocol DEPENDS on it: without (B) the unlocker that sees
 *    sleepers != 0 can wake nobody (the sleeper is between its membarrier
 *    and its futex_wait) while its key = 0 is still buffered, and the
 *    sleeper's futex_wait then reads key == 1 and sleeps for ever.
 *    -DWAKE_NO_MB removes (B) from the model to show exactly that.
 *    Why one step is exact: if the waker's barrier-then-waiters-read comes
 *    first in the (A)/(B) Dekker pair, the waiter reads key after the
 *    waker's store is in memory (model: wake step, then the wait step);
 *    otherwise the waker sees the waiter counted and takes the bucket lock,
 *    which orders its wake before or after the waiter's read-and-queue
 *    (model: either order of the two steps).
 *  - membarrier(PRIVATE_EXPEDITED), the asymmetric heavyfence(): the caller
 *    blocks until every other thread of the process has executed a full
 *    barrier.  Modelled (default) as one indivisible step that drains EVERY
 *    thread's buffer (the caller's own too: the syscall begins and ends
 *    with smp_mb()).  Why that abstraction is sound:
 *      * The kernel IPIs each CPU currently running one of our threads;
 *        that thread executes smp_mb() (a full barrier: its store buffer
 *        drains) in the IPI handler.  A thread that is NOT running has an
 *        empty store buffer already: being switched out is a full barrier
 *        (the scheduler's rq lock is a locked instruction, and membarrier
 *        requires a barrier between a user-space access and the update of
 *        rq->curr), and it makes no access until it is switched in again.
 *        So for every other thread t there is a moment T_t inside the call
 *        at which t's buffer is empty, and the caller returns after all.
 *      * The caller makes no user memory access during the call, so the
 *        only thing the call provides the protocol is: every store that t
 *        buffered before T_t is in memory when the caller resumes, and
 *        every load t makes after T_t sees the caller's pre-call stores
 *        (already in memory: the caller drained before and at the call).
 *      * The atomic step puts every T_t at one nondeterministically chosen
 *        instant T.  That can only over-approximate the guarantee where a
 *        thread whose real T_t came early stores something that is still
 *        buffered when the call returns; the model then has it either
 *        before T (drained: stronger) or after T (buffered: the same).
 *        The protocol's argument uses only the case split "the unlocker's
 *        key = 0 store was buffered before T_t (so it is in memory for the
 *        sleeper's trylock after the call) or after T_t (so the unlocker's
 *        load of sleepers, later still, sees the increment)", and the
 *        unlocker's store and load are one thread's consecutive accesses:
 *        with one T or with one T_t per thread the cases are the same.
 *    Not to rest on that argument alone, -DMB_SPLIT models membarrier
 *    exactly as the kernel gives it: the caller stays blocked while, for
 *    each thread in a nondeterministic order, a separate step drains that
 *    thread's buffer, with all other threads free to run (and to buffer
 *    new stores) between those steps.  run.sh verifies both.
 *
 * ------------------------------------------------------------------------
 * Variants (spin -D...)
 * ------------------------------------------------------------------------
 *   (default)       asymmetric mode: unlock = STORE key 0; LOAD sleepers;
 *                   the slow-path locker calls membarrier after its
 *                   fetch_add of sleepers.
 *   -DSYM           symmetric (fallback) mode: unlock = STORE key 0;
 *                   MFENCE; LOAD sleepers; heavyfence() is a no-op.
 *   -DNO_HEAVYFENCE asymmetric mode with heavyfence() removed: must FAIL
 *                   (lost wake-up: a thread asleep forever on a free lock,
 *                   reported by SPIN as an invalid end state).
 *   -DMB_SPLIT      membarrier as per-thread drains at independent moments
 *                   (see above) instead of one atomic step.
 *   -DWAKE_NO_MB    futex_wake without the kernel's barrier (B): the
 *                   asymmetric protocol must then FAIL (see above).
 *   -DNTHR=n        threads (2 or 3, default 3)
 *   -DITERS=n       lock/unlock rounds per thread (default 3)
 *
 * Not modelled (no effect on the argument): the weft__lock_sleeps statistic
 * (a lock xadd on another word, one more full barrier on the sleeper's
 * side), membarrier's MEMBARRIER_CMD_GLOBAL fallback (at least as strong),
 * weft__trylock (the fast-path CAS alone), the exact spin counts (any
 * number of trylocks is modelled), and a change of mode at run time (the
 * mode is fixed before main, and fixed here per model run).
 *
 * Properties checked:
 *   (1) mutual exclusion: assert(incs == 1) inside the critical section;
 *       and, at the end, DATA == NTHR*ITERS (no critical-section update
 *       lost: the release orders the section's plain stores before it).
 *   (2) no lost wake-up / deadlock: every thread reaches the end of its
 *       proctype.  A thread asleep in futex_wait with nobody left to wake
 *       it makes the system stop in a state where that thread is not at a
 *       valid end: SPIN's "invalid end state" error.
 */

#ifndef NTHR
#define NTHR 3
#endif
#ifndef ITERS
#define ITERS 3
#endif
#if NTHR < 2 || NTHR > 3
#error "NTHR must be 2 or 3"
#endif
#if defined(SYM) && defined(NO_HEAVYFENCE)
#error "NO_HEAVYFENCE is a variant of the asymmetric mode"
#endif

#define SB       2      /* store-buffer capacity: a thread has at most two
                           plain stores in flight (DATA, then KEY in unlock);
                           the next locked RMW drains them */
#define KEY      0
#define SLEEPERS 1
#define DATA     2
#define NADDR    3

typedef storebuf {
    byte addr[SB];
    byte val[SB];
    byte n              /* entries in use: [0] oldest .. [n-1] newest */
};

byte     mem[NADDR];    /* shared memory, all zero: the mutex is unlocked */
storebuf sb[NTHR];      /* per-thread store buffers */
bit      asleep[NTHR];  /* queued on key's futex */
byte     incs;          /* ghost: threads inside the critical section */
byte     finished;      /* ghost: threads done with all their rounds */

hidden byte h;          /* scratch index, only used inside d_steps */

/* ---------------------------------------------------------------------- */
/* Store-buffer primitives.  The d_step ones are single transitions.      */

/* Write the oldest entry of t's buffer to memory (t's buffer non-empty). */
#define DRAIN_ONE(t)                                        \
    mem[sb[t].addr[0]] = sb[t].val[0];                      \
    h = 1;                                                  \
    do                                                      \
    :: h < sb[t].n ->                                       \
        sb[t].addr[h-1] = sb[t].addr[h];                    \
        sb[t].val[h-1]  = sb[t].val[h];                     \
        h++                                                 \
    :: else -> break                                        \
    od;                                                     \
    sb[t].n--;                                              \
    sb[t].addr[sb[t].n] = 0;    /* canonical empty slots */ \
    sb[t].val[sb[t].n]  = 0;                                \
    h = 0

/* Write all of t's buffer to memory, oldest first. */
#define DRAIN_ALL(t)                                        \
    do                                                      \
    :: sb[t].n > 0 -> DRAIN_ONE(t)                          \
    :: else -> break                                        \
    od

/* Plain store: append to the tail of our buffer. */
inline STORE(a, v) {
    d_step {
        assert(sb[me].n < SB);
        sb[me].addr[sb[me].n] = a;
        sb[me].val[sb[me].n]  = v;
        sb[me].n++
    }
}

/* Plain load: newest own buffered store to a, else memory. */
inline LOAD(a, r) {
    d_step {
        r = mem[a];
        h = 0;
        do
        :: h < sb[me].n ->
            if
            :: sb[me].addr[h] == a -> r = sb[me].val[h]
            :: else
            fi;
            h++
        :: else -> break
        od;
        h = 0
    }
}

/* lock cmpxchg: drain own buffer, then compare-and-swap on memory. */
inline CAS(a, old, new, ok) {
    d_step {
        DRAIN_ALL(me);
        if
        :: mem[a] == old -> mem[a] = new; ok = 1
        :: else -> ok = 0
        fi
    }
}

/* lock xadd +1 / -1 */
inline FETCH_ADD1(a) { d_step { DRAIN_ALL(me); mem[a] = mem[a] + 1 } }
inline FETCH_SUB1(a) { d_step { assert(mem[a] > 0); DRAIN_ALL(me); mem[a] = mem[a] - 1 } }

inline MFENCE() { d_step { DRAIN_ALL(me) } }

/* ---------------------------------------------------------------------- */
/* membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)                           */

#ifndef MB_SPLIT
/* One step: every thread has passed a full barrier (see the top comment). */
inline MEMBARRIER() {
    d_step {
        DRAIN_ALL(0);
        DRAIN_ALL(1);
#if NTHR > 2
        DRAIN_ALL(2);
#endif
    }
}
#else
/* Exactly the kernel's guarantee: the caller is blocked until, for each
 * thread t, a moment T_t has come at which t executed a full barrier; the
 * T_t are independent (any order, others running in between). */
inline MEMBARRIER() {
    d_step { DRAIN_ALL(me); mbdone = 1 << me }     /* smp_mb() on entry */
    do
    :: d_step { !(mbdone & 1) -> DRAIN_ALL(0); mbdone = mbdone | 1 }
    :: d_step { !(mbdone & 2) -> DRAIN_ALL(1); mbdone = mbdone | 2 }
#if NTHR > 2
    :: d_step { !(mbdone & 4) -> DRAIN_ALL(2); mbdone = mbdone | 4 }
#endif
    :: mbdone == (1 << NTHR) - 1 -> mbdone = 0; break
    od
}
#endif

/* heavyfence(): membarrier in asymmetric mode, nothing in symmetric mode
 * (the unlocker fences itself), nothing in the broken variant. */
inline HEAVYFENCE() {
#if !defined(SYM) && !defined(NO_HEAVYFENCE)
    MEMBARRIER()
#else
    skip
#endif
}

/* ---------------------------------------------------------------------- */
/* futex                                                                  */

/* futex_wait(&key, 1, forever) */
inline FUTEX_WAIT() {
    if
    :: d_step {                 /* waiters++; smp_mb() (A); lock bucket; */
           DRAIN_ALL(me);       /* read key; queue if 1; unlock bucket   */
           if
           :: mem[KEY] == 1 -> asleep[me] = 1
           :: else               /* EAGAIN: returns at once */
           fi
       }
       !asleep[me]              /* sleep until a futex_wake picks us */
    :: skip                     /* spurious wake-up / EINTR */
    fi
}

/* futex_wake(&key, 1): smp_mb() (B), then wake any one queued thread. */
inline FUTEX_WAKE() {
    atomic {
#ifndef WAKE_NO_MB
        d_step { DRAIN_ALL(me) };
#endif
        if
        :: asleep[0] -> asleep[0] = 0
        :: asleep[1] -> asleep[1] = 0
#if NTHR > 2
        :: asleep[2] -> asleep[2] = 0
#endif
        :: else                 /* nobody queued */
        fi
    }
}

/* ---------------------------------------------------------------------- */
/* The mutex (runtime/lock.c)                                             */

/* trylock(): AO_int_load(&key) == 0 && AO_int_compare_and_swap_full(...) */
inline TRYLOCK(ok) {
    LOAD(KEY, v);
    if
    :: v == 0 -> v = 0; CAS(KEY, 0, 1, ok)
    :: else   -> v = 0; ok = 0
    fi
}

inline LOCK() {
    CAS(KEY, 0, 1, ok);                 /* speculative grab */
    if
    :: ok
    :: else ->
        /* The active and passive spins: ACTIVE_SPIN*ACTIVE_SPIN_CNT +
         * PASSIVE_SPIN trylocks.  Modelled as any number of trylocks
         * (0 included), which contains every bounded count; pause and
         * sched_yield have no memory effect. */
        do
        :: TRYLOCK(ok);
           if
           :: ok -> break
           :: else
           fi
        :: break
        od;
        if
        :: ok
        :: else ->
            /* Sleep. */
            FETCH_ADD1(SLEEPERS);
            HEAVYFENCE();
            do
            :: TRYLOCK(ok);
               if
               :: ok -> break
               :: else -> FUTEX_WAIT()
               fi
            od;
            FETCH_SUB1(SLEEPERS)
        fi
    fi;
    ok = 0
}

inline UNLOCK() {
    /* "unlock of unlocked lock" check: a plain load of key. */
    LOAD(KEY, v);
    assert(v == 1);
    /* (Our own buffer holds no store to KEY here: our last one, in the
     * previous unlock, was drained by this round's locked CAS.) */
    STORE(KEY, 0);
#ifdef SYM
    MFENCE();                           /* AO_int_store_full */
#endif
    /* asymmetric: compiler barrier only; the CPU may satisfy this load
     * while the store of key is still in our buffer. */
    LOAD(SLEEPERS, v);
    if
    :: v != 0 -> v = 0; FUTEX_WAKE()
    :: else
    fi
}

/* ---------------------------------------------------------------------- */
/* Processes                                                              */

/* NTHR threads, _pid 0..NTHR-1, each ITERS rounds of lock/CS/unlock. */
active [NTHR] proctype thread()
{
    byte me = _pid;
    byte it = 0;
    byte v;             /* loaded values; reset to 0 after use */
    bit  ok;
#ifdef MB_SPLIT
    byte mbdone;
#endif

    do
    :: it < ITERS ->
        LOCK();
        /* critical section: data++ with plain accesses */
        incs++;
        assert(incs == 1);              /* (1) mutual exclusion */
        LOAD(DATA, v);
        STORE(DATA, v + 1);
        v = 0;
        incs--;
        UNLOCK();
        it++
    :: else -> break
    od;
    finished++
}

/* The hardware draining store buffers in the background, oldest first. */
active proctype drainer()
{
end:
    do
    :: d_step { sb[0].n > 0 -> DRAIN_ONE(0) }
    :: d_step { sb[1].n > 0 -> DRAIN_ONE(1) }
#if NTHR > 2
    :: d_step { sb[2].n > 0 -> DRAIN_ONE(2) }
#endif
    od
}

/* When all threads are done and all buffers have drained: every critical
 * section's increment is in memory, the lock is free, nobody registered. */
active proctype final()
{
    finished == NTHR;
#if NTHR > 2
    (sb[0].n == 0 && sb[1].n == 0 && sb[2].n == 0);
#else
    (sb[0].n == 0 && sb[1].n == 0);
#endif
    assert(mem[DATA] == NTHR * ITERS);
    assert(mem[KEY] == 0);
    assert(mem[SLEEPERS] == 0)
}
