/*
 * runq.c — the run queues: each P's lock-free ring plus runnext, and the
 * global queue under sched.lock (Go's runqput/runqget/runqgrab/runqsteal).
 *
 * The local ring is single-producer, multi-consumer:
 *
 *      runqhead                 runqtail
 *         |                        |
 *   ...  [G][G][G][G][G][G][G][G]  [ ][ ] ...     (indices mod RUNQ_SIZE)
 *         ^ consumers CAS head     ^ only the owner stores tail
 *
 * The owner puts at the tail and takes from the head; thieves take up to
 * half from the head.  Everybody who takes does so with a CAS on runqhead,
 * so a slot is consumed exactly once.  runnext holds one G that runs before
 * the ring (the G just readied or spawned, so a producer/consumer pair keeps
 * its cache and its time slice); it is taken with a CAS too.
 *
 * Head and tail are free-running counters (AO_t); only their difference
 * (at most RUNQ_SIZE) matters, so wrap-around is harmless.
 */
#include "runtime.h"

static uint32_t runqgrab(P *pp, G **batch, uint32_t batchHead, bool stealRunNextG);
static void globrunqputbatch(G *head, G *tail, int32_t n);

/* Moves half of the full local ring plus gp to the global queue.  Called by
 * the owner only, with h the head it loaded and t its tail. */
static bool runqputslow(P *pp, G *gp, AO_t h, AO_t t)
{
    G *batch[RUNQ_SIZE / 2 + 1];
    AO_t n = (t - h) / 2;
    if (n != RUNQ_SIZE / 2)
        weft__throw("runqputslow: queue is not full");
    for (AO_t i = 0; i < n; i++)
        batch[i] = (G *)AO_load(&pp->runq[(h + i) % RUNQ_SIZE]);
    /* CAS-release: commits the consumption of the slots we copied; pairs
     * with the load-acquire of runqhead by other consumers (they must not
     * take those slots again) and with the owner's next runqput. */
    if (!AO_compare_and_swap_release(&pp->runqhead, h, h + n))
        return false;
    batch[n] = gp;
#ifdef WEFT_STRESS
    /* Shuffle so that tests cannot depend on the order. */
    for (AO_t i = 1; i <= n; i++) {
        AO_t j = weft__fastrand() % (i + 1);
        G *tmp = batch[i]; batch[i] = batch[j]; batch[j] = tmp;
    }
#endif
    for (AO_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    batch[n]->schedlink = NULL;
    weft__lock(&sched.lock);
    globrunqputbatch(batch[0], batch[n], (int32_t)(n + 1));
    weft__unlock(&sched.lock);
    /* The running G produces work faster than this P consumes it (a spawn
     * loop): ask it to yield at its next scheduling point, so its children
     * run in cache-sized batches instead of piling up by the million.  Go
     * gets the same effect, later, from its 10 ms preemption. */
    G *me = weft__getg();
    if (me && !me->issystem)
        AO_store(&me->preempt, 1);
    return true;
}

/* Puts gp on pp's queue: in runnext if next (kicking the old runnext to the
 * tail), otherwise at the tail; a full ring spills half to the global queue.
 * Owner only. */
void weft__runqput(P *pp, G *gp, bool next)
{
#ifdef WEFT_STRESS
    if (next && (weft__fastrand() & 1))
        next = false;
#endif
    if (next) {
        AO_t old;
        /* CAS-full: publishes gp's state to whoever takes runnext (pairs
         * with the CAS in runqget/runqgrab that reads it). */
        do {
            old = AO_load(&pp->runnext);
        } while (!AO_compare_and_swap_full(&pp->runnext, old, (AO_t)gp));
        if (old == 0)
            return;
        gp = (G *)old;      /* kick the old runnext out to the regular queue */
    }
    for (;;) {
        /* load-acquire: synchronizes with consumers' CAS-release of head, so
         * the slots they freed are really free before we overwrite them. */
        AO_t h = AO_load_acquire(&pp->runqhead);
        AO_t t = AO_load(&pp->runqtail);   /* only we write it */
        if (t - h < RUNQ_SIZE) {
            AO_store(&pp->runq[t % RUNQ_SIZE], (AO_t)gp);
            /* store-release: makes the slot (and gp's state) visible to
             * consumers, who load-acquire runqtail before reading slots. */
            AO_store_release(&pp->runqtail, t + 1);
            return;
        }
        if (runqputslow(pp, gp, h, t))
            return;
        /* The queue is no longer full: a thief took some.  Retry. */
    }
}

/* Takes a G from pp: runnext first (inheriting the time slice), then the
 * head of the ring.  Owner only (it is the sole writer of runqtail). */
G *weft__runqget(P *pp, bool *inheritTime)
{
    AO_t next = AO_load(&pp->runnext);
    /* CAS-full: only one of us and the thieves gets runnext; pairs with the
     * CAS that published it. */
    if (next != 0 && AO_compare_and_swap_full(&pp->runnext, next, 0)) {
        if (inheritTime)
            *inheritTime = true;
        return (G *)next;
    }
    for (;;) {
        /* load-acquire: pairs with other consumers' CAS-release of head */
        AO_t h = AO_load_acquire(&pp->runqhead);
        AO_t t = AO_load(&pp->runqtail);   /* only we write it */
        if (t == h)
            return NULL;
        G *gp = (G *)AO_load(&pp->runq[h % RUNQ_SIZE]);
        /* CAS-release: commits the consumption; a thief that read the same
         * head fails its CAS and retries. */
        if (AO_compare_and_swap_release(&pp->runqhead, h, h + 1)) {
            if (inheritTime)
                *inheritTime = false;
            return gp;
        }
    }
}

bool weft__runqempty(P *pp)
{
    /* Go's runqempty: a consistent snapshot of head, tail and runnext.  The
     * owner may move runnext into the ring (tail++) and a thief may take it
     * (head++) between our reads; re-reading tail proves no such move slid
     * past us. */
    for (;;) {
        AO_t head = AO_load_acquire(&pp->runqhead);
        AO_t tail = AO_load_acquire(&pp->runqtail);
        AO_t next = AO_load_acquire(&pp->runnext);
        if (AO_load_acquire(&pp->runqtail) == tail)
            return head == tail && next == 0;
    }
}

uint32_t weft__runqsize(P *pp)
{
    AO_t h = AO_load_acquire(&pp->runqhead);
    AO_t t = AO_load_acquire(&pp->runqtail);
    AO_t n = t - h;
    return n > RUNQ_SIZE ? 0 : (uint32_t)n;   /* torn read: report nothing */
}

/* Grabs about half of pp's Gs into batch[batchHead ..] (a ring of
 * RUNQ_SIZE, normally the thief's own runq slots).  Returns how many.  May
 * be called by any thread. */
#define STEAL_RUNNEXT_WAIT_NS (40 * 1000)

static uint32_t runqgrab(P *pp, G **batch, uint32_t batchHead, bool stealRunNextG)
{
    for (;;) {
        /* load-acquire both: head pairs with other consumers' CAS, tail with
         * the owner's store-release that published the slots. */
        AO_t h = AO_load_acquire(&pp->runqhead);
        AO_t t = AO_load_acquire(&pp->runqtail);
        AO_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (stealRunNextG) {
                AO_t next = AO_load(&pp->runnext);
                if (next != 0) {
                    /* The owner has just readied this G and is probably
                     * about to block and run it itself; stealing it now
                     * would only bounce it between CPUs.  Go sleeps 3 µs
                     * here (50 µs or more with timer slack); we spin
                     * STEAL_RUNNEXT_WAIT_NS without a syscall.  The wait
                     * is a back-off as much as a courtesy: leaving early
                     * once the owner took the G measured worse (the thief
                     * comes straight back for the next one).  Measured on
                     * 2 CPUs against a 64-pause spin: chanbuf 61 -> 40 ns
                     * per item, pingpong 248 -> ~210 ns, skynet ~8%
                     * faster, fib unchanged; a real usleep(3) did as well
                     * on channels but cost fib 20%.
                     *
                     * After the wait, steal only if the owner has not
                     * switched Gs meanwhile.  A producer/consumer pair on
                     * one P puts the same G in runnext again every few
                     * µs, so the CAS below would succeed on a G that the
                     * owner ran and readied again (ABA) and split a pair
                     * that was doing fine; an owner that switches is
                     * draining its own runnext.  (Go has the same ABA.)
                     * Measured on 2 Ps: chanbuf 41 -> 27 ns per item,
                     * pingpong 181 -> 145 ns, fib and skynet unchanged.
                     * switchtick is read racily, as sysmon does: a torn
                     * or stale value only changes this one decision. */
                    if (AO_load(&pp->status) == Prunning) {
                        uint32_t sw = *(volatile uint32_t *)&pp->switchtick;
                        int64_t deadline = weft__nanotime() + STEAL_RUNNEXT_WAIT_NS;
                        while (weft__nanotime() < deadline)
                            weft__cpu_relax();
                        if (*(volatile uint32_t *)&pp->switchtick != sw)
                            return 0;
                    }
                    /* CAS-full: races with the owner's runqget */
                    if (!AO_compare_and_swap_full(&pp->runnext, next, 0))
                        continue;
                    batch[batchHead % RUNQ_SIZE] = (G *)next;
                    return 1;
                }
            }
            return 0;
        }
        if (n > RUNQ_SIZE / 2)
            continue;   /* h and t read inconsistently; retry */
        for (AO_t i = 0; i < n; i++)
            batch[(batchHead + i) % RUNQ_SIZE] = (G *)AO_load(&pp->runq[(h + i) % RUNQ_SIZE]);
        /* CAS-release: commits the grab; if it fails someone else consumed
         * some of those slots, and our copies are discarded. */
        if (AO_compare_and_swap_release(&pp->runqhead, h, h + n))
            return (uint32_t)n;
    }
}

/* Steals half of p2's Gs into pp's ring and returns one of them to run.
 * Called by pp's owner. */
G *weft__runqsteal(P *pp, P *p2, bool stealRunNextG)
{
    AO_t t = AO_load(&pp->runqtail);   /* only we write it */
    /* Writing into our own free slots is safe: nobody consumes beyond tail. */
    uint32_t n = runqgrab(p2, (G **)pp->runq, (uint32_t)t, stealRunNextG);
    if (n == 0)
        return NULL;
    n--;
    G *gp = (G *)AO_load(&pp->runq[(t + n) % RUNQ_SIZE]);
    if (n == 0)
        return gp;
    AO_t h = AO_load_acquire(&pp->runqhead);
    if (t - h + n >= RUNQ_SIZE)
        weft__throw("runqsteal: runq overflow");
    /* store-release: publishes the stolen slots to consumers of our ring */
    AO_store_release(&pp->runqtail, t + n);
    return gp;
}

/* Moves the Gs queued on pp (runnext too) to the global queue; returns how
 * many.  For sysmon, when pp's G has not reached a scheduling point for a
 * whole preemption slice: weft cannot preempt it as Go would, but the Gs
 * stranded behind it can run elsewhere — otherwise they wait for as long as
 * it runs while another P, kept busy by a yielding G, never looks for them.
 * Any thread may call it: it consumes the ring as a thief does (runqgrab's
 * CAS), so the owner's concurrent puts and gets stay safe. */
uint32_t weft__runqrescue(P *pp)
{
    G *batch[RUNQ_SIZE / 2];    /* a grab takes at most half the ring */
    uint32_t total = 0;
    /* Bounded: the owner may be spawning as fast as we move. */
    for (int round = 0; round < 4; round++) {
        uint32_t n = runqgrab(pp, batch, 0, true);
        if (n == 0)
            break;
        for (uint32_t i = 0; i + 1 < n; i++)
            batch[i]->schedlink = batch[i + 1];
        weft__lock(&sched.lock);
        globrunqputbatch(batch[0], batch[n - 1], (int32_t)n);
        weft__unlock(&sched.lock);
        total += n;
    }
    return total;
}

/* ---- the global run queue (sched.lock) ---------------------------------- */

void weft__globrunqput(G *gp)
{
    gp->schedlink = NULL;
    if (sched.runqtail)
        sched.runqtail->schedlink = gp;
    else
        sched.runqhead = gp;
    sched.runqtail = gp;
    /* store (under the lock): readers outside the lock use it as a hint only */
    AO_store(&sched.runqsize, AO_load(&sched.runqsize) + 1);
}

static void globrunqputhead(G *gp)
{
    gp->schedlink = sched.runqhead;
    sched.runqhead = gp;
    if (!sched.runqtail)
        sched.runqtail = gp;
    AO_store(&sched.runqsize, AO_load(&sched.runqsize) + 1);
}

static void globrunqputbatch(G *head, G *tail, int32_t n)
{
    tail->schedlink = NULL;
    if (sched.runqtail)
        sched.runqtail->schedlink = head;
    else
        sched.runqhead = head;
    sched.runqtail = tail;
    AO_store(&sched.runqsize, AO_load(&sched.runqsize) + (AO_t)n);
}

static G *globrunqpop(void)
{
    G *gp = sched.runqhead;
    if (!gp)
        return NULL;
    sched.runqhead = gp->schedlink;
    if (!sched.runqhead)
        sched.runqtail = NULL;
    AO_store(&sched.runqsize, AO_load(&sched.runqsize) - 1);
    return gp;
}

/* Takes a batch from the global queue: returns one G and puts the rest (a
 * fair share, at most half a ring and at most max if max > 0) on pp. */
G *weft__globrunqget(P *pp, int32_t max)
{
    int32_t size = (int32_t)AO_load(&sched.runqsize);
    if (size == 0)
        return NULL;
    int32_t nprocs = (int32_t)AO_load(&weft__gomaxprocs);
    int32_t n = size / nprocs + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    G *gp = globrunqpop();
    for (n--; n > 0; n--)
        weft__runqput(pp, globrunqpop(), false);
    return gp;
}

/* Moves everything queued on pp to the head of the global queue (procresize
 * destroying a P; the world is stopped). */
void weft__runqdrain_to_global(P *pp)
{
    for (;;) {
        AO_t h = AO_load(&pp->runqhead), t = AO_load(&pp->runqtail);
        if (h == t)
            break;
        AO_store(&pp->runqtail, t - 1);
        globrunqputhead((G *)AO_load(&pp->runq[(t - 1) % RUNQ_SIZE]));
    }
    AO_t next = AO_load(&pp->runnext);
    if (next) {
        AO_store(&pp->runnext, 0);
        globrunqputhead((G *)next);
    }
}

/* ---- random steal order (Go's randomOrder) ----------------------------- */

static uint32_t gcd(uint32_t a, uint32_t b)
{
    while (b) {
        uint32_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

void weft__randorder_reset(weft__randorder *o, uint32_t count)
{
    o->count = count;
    o->ncoprimes = 0;
    for (uint32_t i = 1; i <= count && o->ncoprimes < 64; i++)
        if (gcd(i, count) == 1)
            o->coprimes[o->ncoprimes++] = i;
}
