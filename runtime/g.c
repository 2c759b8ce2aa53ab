/*
 * g.c — goroutines: creation (newproc), the free G cache (gfput/gfget),
 * the list of all Gs, goids and the public goroutine calls.
 *
 * A G is never freed while the runtime runs (as in Go: dumps walk allgs
 * without locks).  A dead G waits on its P's free list for the next
 * weft_go; its stack goes back to the P's cache of hot stacks at once, so
 * that the next goroutine to start, rather than the next one spawned,
 * reuses its pages (stack.c: hot and cold stacks).  A spawned goroutine
 * holds a cold stack and no frame until it first runs (weft__gstart), so
 * goroutines waiting in run queues touch no memory but their G.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "park.h"
#include "diag/scheddebug.h"
#include "diag/unwind.h"
#include "race.h"

static void allgadd(G *gp);

/* The goroutine profile being taken (see "goroutine profiles" below). */
static AO_t gprof_gen;              /* atomic, written with the world stopped: its
                                     * generation (even; 0 is no profile ever) */
static weft__gprof *gprof_cur;      /* STW: where its records go */

/* What newproc does beyond the common path, in one word so that the
 * common path tests one whatever is on: SPAWN_GPROF while a goroutine
 * profile is being taken (as sched.gprofiling, which the scheduler's own
 * paths test), SPAWN_ANCESTORS with SCHEDDEBUG=tracebackancestors,
 * SPAWN_COMPACT with SCHEDDEBUG=compactstacks=1.  newproc's flags join the
 * same test (NEWPROC_COMPACT is SPAWN_COMPACT).  So ancestry and
 * compaction off cost spawning nothing. */
enum { SPAWN_GPROF = 1, SPAWN_ANCESTORS = 2, SPAWN_COMPACT = NEWPROC_COMPACT };
_Static_assert(((SPAWN_GPROF | SPAWN_ANCESTORS) & NEWPROC_MAIN) == 0,
               "newproc's flags and the spawn flags share one word");
static AO_t spawnslow;              /* atomic: SPAWN_*; GPROF written with the world
                                     * stopped, ANCESTORS once before the first G */

AO_t weft__allg;
static weft__mutex allglock = WEFT__MUTEX_INIT(LOCKRANK_ALLG);

#define GFREE_BATCH 32

static void allgadd(G *gp)
{
    weft__lock(&allglock);
    gp->allglink = (G *)AO_load(&weft__allg);
    /* store-release: a racy reader that sees gp sees its fields */
    AO_store_release(&weft__allg, (AO_t)gp);
    weft__unlock(&allglock);
}

/* Puts a dead G on pp's free list (the global one if pp is NULL). */
void weft__gfput(P *pp, G *gp)
{
    if (gp->stack) {
        weft__stackput(pp, gp->stack);
        gp->stack = NULL;
    }
    gp->sp = NULL;
    gp->stacklo = gp->stackhi = 0;
    if (pp) {
        weft__waiter_drop(pp, &gp->w);  /* its spare sudog (park.h) */
        gp->schedlink = pp->gfree;
        pp->gfree = gp;
        pp->gfreecnt++;
        /* Owner-only counter; atomic store so that readers never tear. */
        AO_store(&pp->ngoroutines, AO_load(&pp->ngoroutines) - 1);
        if (pp->gfreecnt >= P_GFREE_MAX) {
            weft__lock(&sched.gflock);
            while (pp->gfreecnt > P_GFREE_MAX / 2) {
                G *g = pp->gfree;
                pp->gfree = g->schedlink;
                pp->gfreecnt--;
                g->schedlink = sched.gfree;
                sched.gfree = g;
                sched.ngfree++;
            }
            weft__unlock(&sched.gflock);
        }
        return;
    }
    AO_fetch_and_sub1(&sched.ngoroutines_base);
    weft__lock(&sched.gflock);
    gp->schedlink = sched.gfree;
    sched.gfree = gp;
    sched.ngfree++;
    weft__unlock(&sched.gflock);
}

/* Takes a dead G for reuse (it has no stack: the caller adds one). */
static G *gfget(P *pp)
{
    G *gp = NULL;
    if (pp) {
        if (!pp->gfree && sched.ngfree > 0) {
            weft__lock(&sched.gflock);
            while (pp->gfreecnt < GFREE_BATCH && sched.gfree) {
                G *g = sched.gfree;
                sched.gfree = g->schedlink;
                sched.ngfree--;
                g->schedlink = pp->gfree;
                pp->gfree = g;
                pp->gfreecnt++;
            }
            weft__unlock(&sched.gflock);
        }
        gp = pp->gfree;
        if (gp) {
            pp->gfree = gp->schedlink;
            pp->gfreecnt--;
        }
    } else if (sched.ngfree > 0) {
        weft__lock(&sched.gflock);
        gp = sched.gfree;
        if (gp) {
            sched.gfree = gp->schedlink;
            sched.ngfree--;
        }
        weft__unlock(&sched.gflock);
    }
    return gp;
}

/* Returns everything on pp's free lists to the global ones (P destroyed). */
void weft__gfpurge(P *pp)
{
    weft__lock(&sched.gflock);
    while (pp->gfree) {
        G *g = pp->gfree;
        pp->gfree = g->schedlink;
        pp->gfreecnt--;
        g->schedlink = sched.gfree;
        sched.gfree = g;
        sched.ngfree++;
    }
    weft__unlock(&sched.gflock);
}

/* SCHEDDEBUG=tracebackancestors=N (Go's saveAncestors): gp's creators are
 * me, at the stack that called weft_go (callerpc is its return address),
 * then me's own creators, up to N.  The stack is stored once for every
 * goroutine created from it (diag/stacktab.h): a goroutine copies at most
 * N three-word entries, never a stack.  A plain thread's goroutines have
 * none, as Go's goroutines created by goroutine 0 have none. */
static __attribute__((noinline)) void saveancestors(G *me, G *gp, uintptr_t callerpc)
{
    int max = weft__debug.tracebackancestors;
    gp->nancestors = 0;
    if (!me || me->issystem)
        return;
    if (!gp->ancestors) {
        gp->ancestors = malloc((size_t)max * sizeof *gp->ancestors);
        if (!gp->ancestors)
            return;
    }
    /* Our callers up to the weft_go call: skip the runtime's frames, so
     * the record starts where callerpc returns to (all of it if the walk
     * never meets callerpc: frames without frame records). */
    uintptr_t pcs[WEFT_ANCESTOR_FRAMES + 8];
    int n = weft__callers(0, me->stacklo, me->stackhi, pcs, WEFT_ANCESTOR_FRAMES + 8);
    int first = 0;
    while (first < n && pcs[first] != callerpc)
        first++;
    if (first == n)
        first = 0;
    if (n - first > WEFT_ANCESTOR_FRAMES)
        n = first + WEFT_ANCESTOR_FRAMES;
    gp->ancestors[0] = (weft__ancestor){
        .stk = weft__stacktab_intern(pcs + first, (uint32_t)(n - first)),
        .goid = me->goid,
        .gopc = me->ismain ? 0 : me->gopc,
    };
    int k = me->nancestors < max - 1 ? me->nancestors : max - 1;
    if (k > 0)
        memcpy(gp->ancestors + 1, me->ancestors, (size_t)k * sizeof *gp->ancestors);
    gp->nancestors = k + 1;
}

static int64_t newgoid(P *pp)
{
    if (pp) {
        if (pp->goidcache == pp->goidcacheend) {
            /* fetch_and_add: goids are unique across Ps; no ordering needed */
            pp->goidcache = (int64_t)AO_fetch_and_add(&sched.goidgen, 16) + 1;
            pp->goidcacheend = pp->goidcache + 16;
        }
        return pp->goidcache++;
    }
    return (int64_t)AO_fetch_and_add1(&sched.goidgen) + 1;
}

G *weft__newproc(void (*fn)(void *), void *arg, size_t stacksize, const char *name,
                 uintptr_t callerpc, unsigned flags, int *err)
{
    G *me = weft__getg();
    M *m = me ? me->m : NULL;
    P *pp = m ? m->p : NULL;

    G *gp = gfget(pp);
    bool fresh = false;
    if (!gp) {
        gp = calloc(1, sizeof *gp);
        if (!gp) {
            *err = -ENOMEM;
            return NULL;
        }
        fresh = true;
        weft__race_untrack(gp, sizeof *gp);     /* weft's own (race.h) */
    }
    /* The stack it will run on, or a cold one to trade for a hot one when
     * it first runs; its frame is built then too (weft__gstart). */
    gp->stack = weft__stackget(pp, stacksize);
    if (!gp->stack) {
        if (fresh) {
            free(gp);
        } else {
            /* Back on a free list; gfput decrements the count. */
            if (pp)
                AO_store(&pp->ngoroutines, AO_load(&pp->ngoroutines) + 1);
            else
                AO_fetch_and_add1(&sched.ngoroutines_base);
            weft__gfput(pp, gp);
        }
        *err = -ENOMEM;
        return NULL;
    }
    gp->sp = NULL;
    gp->fn = fn;
    gp->arg = arg;
    gp->gopc = callerpc;
    gp->parentgoid = (me && !me->issystem) ? me->goid : 0;
    gp->name = name;
    gp->goid = newgoid(pp);
    weft__race_newg(gp);        /* its fiber (race.h); its stack is made fresh in weft__gstart */
    gp->m = NULL;
    gp->lockedm = NULL;
    gp->lockedext = 0;
    gp->locals = NULL;
    gp->waitreason = waitReasonZero;
    gp->w.g = gp;
    gp->ismain = false;         /* ismain and compact: from flags, off the common path below */
    gp->issystem = false;
    gp->compact = false;
    AO_store(&gp->preempt, 0);
    /* A goroutine profile being taken wants the goroutines of the moment
     * it stopped the world, not this one: it counts as recorded.  Loads:
     * set with the world stopped (or before the first G), published by
     * its restart; a plain store, published with the status below. */
    unsigned slow = (unsigned)AO_load(&spawnslow) | flags;
    if (unlikely(slow)) {
        gp->ismain = (flags & NEWPROC_MAIN) != 0;
        gp->compact = (slow & SPAWN_COMPACT) != 0;
        /* load and store: every writer sets the same bit, before the
         * run-queue put below publishes gp (runtime.h) */
        if (gp->compact && !(AO_char_load(&weft__chanhooks) & CHANHOOK_COMPACT))
            AO_char_store(&weft__chanhooks, AO_char_load(&weft__chanhooks) | CHANHOOK_COMPACT);
        if (slow & SPAWN_GPROF)
            AO_store(&gp->profgen, AO_load(&gprof_gen));
        if (slow & SPAWN_ANCESTORS)
            saveancestors(me, gp, callerpc);
    }
    if (pp)
        AO_store(&pp->ngoroutines, AO_load(&pp->ngoroutines) + 1);
    else
        AO_fetch_and_add1(&sched.ngoroutines_base);
    if (unlikely(weft__tracing())) weft__trace_gocreate(pp, gp);
    /* store-release: the fields above are published with the status; the
     * run-queue put below publishes the G itself. */
    AO_store_release(&gp->atomicstatus, Grunnable);
    if (fresh)
        allgadd(gp);
    if (pp) {
        weft__runqput(pp, gp, true);
    } else {
        weft__lock(&sched.lock);
        weft__globrunqput(gp);
        weft__unlock(&sched.lock);
    }
    weft__wakep();
    return gp;
}

void weft__newproc_init(void)
{
    /* store: before the first goroutine, whose creation (a thread start
     * or the creator's lock) publishes it */
    if (weft__debug.tracebackancestors > 0)
        AO_store(&spawnslow, AO_load(&spawnslow) | SPAWN_ANCESTORS);
    if (weft__debug.compactstacks)
        AO_store(&spawnslow, AO_load(&spawnslow) | SPAWN_COMPACT);
}

void weft__gstart(P *pp, G *gp)
{
    /* Only a goroutine that has run before has a hot stack and stack
     * bounds: its stack was compacted when it parked.  (A fresh goroutine
     * usually holds a cold stack: the common first run tests one flag, as
     * it did before compaction.) */
    if (gp->stack->hot && unlikely(gp->stacklo != 0)) {
        weft__stackrestore(gp);
        return;
    }
    gp->stack = weft__stackwarmup(pp, gp->stack);
    gp->stacklo = gp->stack->lo;
    gp->stackhi = gp->stack->hi;
    weft__asan_fresh_stack(gp->stacklo, gp->stackhi);
    weft__race_stackstart(gp);  /* a stack without a past (race.h) */
    gp->sp = weft__ctx_init((void *)gp->stackhi, weft__gentry);
}

/* First code of every goroutine (arch/<cpu>/ctx.c builds the frame that enters it). */
void weft__gentry(void)
{
    /* The outermost frame of every goroutine: DWARF unwinders (gdb, perf
     * --call-graph dwarf, libunwind) stop here, rather than read the zero
     * weft__ctx_init left as our return address and show a bogus frame. */
#if defined(__x86_64__)
    __asm__ volatile(".cfi_undefined rip");
#elif defined(__aarch64__)
    __asm__ volatile(".cfi_undefined x30");
#endif
    G *gp = weft__getg();
    weft__asan_finish(NULL);
    weft__race_gostart(gp);
    weft__finish_switch(gp->m);
    gp->fn(gp->arg);
    weft__goexit0(gp);
}

static int64_t gcount(void)
{
    int64_t n = (int64_t)AO_load(&sched.ngoroutines_base);
    uint32_t np = (uint32_t)AO_load(&weft__gomaxprocs);
    for (uint32_t i = 0; i < np; i++)
        n += (int64_t)AO_load(&weft__allp[i]->ngoroutines);
    return n < 1 ? 1 : n;
}

/* ---- goroutine profiles ------------------------------------------------------
 * Go 1.19's way of taking a goroutine profile without stopping the world
 * for longer than it takes to say "now" (mprof.go's
 * goroutineProfileWithLabelsConcurrent; diag/schedview.h has the steps).
 * The world is stopped only to start a profile and to end it.  At the
 * start every goroutine alive is pending: its stack must be recorded as it
 * is, before the goroutine runs again.  Whoever gets to a pending G first
 * records it: the collector walking the Gs of the snapshot, or the
 * scheduler about to change its stack (weft__gprof_execute): gogo before
 * running it, weft__ready before it leaves its wait (so its header still
 * shows the wait), and a syscall's exit, since a G leaving a syscall runs
 * on without passing through gogo.
 *
 * Each G's profgen says which profile has its record: gen when taken,
 * gen | 1 while somebody takes it, anything else when pending.  A new
 * profile bumps the generation by 2, which makes every G pending at once
 * without touching any of them (Go clears a flag in every G after each
 * profile instead).  G states for a profile:
 *
 *   pending ──CAS (collector or scheduler)──▶ gen|1 ──record, store-release──▶ gen
 *   created during the profile (newproc) ─────────────────────────────────────▶ gen
 *
 * Only the winner of the CAS records; whoever finds gen | 1 waits for gen,
 * so a G cannot run while its stack is being read, and no G is recorded
 * twice.  A G dead at the start is skipped by the collector, and if it is
 * reused meanwhile newproc marks it recorded before its status leaves
 * Gdead.  Running a G always happens with a P held, and the end of the
 * profile stops the world, so no recording is still under way when the
 * collector reads the records. */

/* Records gp if the current profile still wants it; from the collector
 * (fromcollector: it may yield its P while another records gp) or the
 * scheduler (which must not switch: it yields the thread). */
static void gprof_tryrecord(G *gp, bool fromcollector)
{
    /* load: written with the world stopped; the restart published it, as
     * it did gprof_cur */
    AO_t gen = AO_load(&gprof_gen);
    for (;;) {
        /* load-acquire: pairs with the store-release of gen below, so a
         * scheduler that sees the record taken runs gp only after the
         * recorder's last read of its stack */
        AO_t s = AO_load_acquire(&gp->profgen);
        if (s == gen)
            return;
        if (s == (gen | 1)) {
            /* Somebody is reading gp's stack, for a few microseconds (Go
             * yields here too). */
            if (fromcollector)
                weft_yield();
            else
                sched_yield();
            continue;
        }
        /* CAS-full: one recorder per G; its reads of gp's stack stay after
         * it (and the G's status read by the collector before it) */
        if (AO_compare_and_swap_full(&gp->profgen, s, gen | 1)) {
            weft__gprof_save(gprof_cur, gp);
            /* store-release: pairs with the load-acquire above */
            AO_store_release(&gp->profgen, gen);
            return;
        }
    }
}

void weft__gprof_execute(G *gp)
{
    /* Only with a P held: the end of the profile waits for every P, not
     * for a thread without one (a plain thread, an M back from a blocking
     * poll), which therefore leaves gp to whoever runs it. */
    G *me = weft__getg();
    M *m = me ? me->m : NULL;
    if (m && m->p)
        gprof_tryrecord(gp, false);
}

int64_t weft__view_gcount(void) { return gcount(); }

G *weft__view_gprof_start(weft__gprof *p, G *me)
{
    /* The world is stopped: no G runs and none is created but by a plain
     * thread (Go has the same window with needm; such a G may be recorded
     * although it is newer than the stop). */
    /* plain loads and stores: the restart of the world (sched.lock)
     * publishes them to every M, as it does gprofiling */
    AO_t gen = AO_load(&gprof_gen) + 2;
    AO_store(&gprof_gen, gen);
    gprof_cur = p;
    if (me)
        AO_store(&me->profgen, gen);    /* the caller takes its own stack */
    /* stores: the restart of the world publishes them to every M (sched.lock) */
    AO_store(&sched.gprofiling, 1);
    AO_store(&spawnslow, AO_load(&spawnslow) | SPAWN_GPROF);
    /* load-acquire, as weft__view_allg */
    return (G *)AO_load_acquire(&weft__allg);
}

G *weft__view_gprof_visit(G *gp)
{
    /* The walk is a chain of cache misses (each G, then its stack): fetch
     * the next G while this one is read, and the top of its stack once
     * this one is done. */
    G *next = gp->allglink;
    if (next)
        for (size_t off = 0; off < sizeof *next; off += CACHELINE)
            __builtin_prefetch((const char *)next + off);
    /* load-acquire: pairs with newproc's store-release of the status, so
     * a G reused since the stop is seen with its profgen marked */
    AO_t st = AO_load_acquire(&gp->atomicstatus);
    if (st != Gdead && st != Gidle)
        gprof_tryrecord(gp, true);
    if (next)
        __builtin_prefetch(next->sp);
    return next;
}

void weft__view_gprof_end(void)
{
    /* Called with the world stopped (or with the runtime exiting: then no
     * M runs goroutines any more).  The next start of the world publishes
     * it. */
    AO_store(&sched.gprofiling, 0);
    AO_store(&spawnslow, AO_load(&spawnslow) & ~(AO_t)SPAWN_GPROF);
    gprof_cur = NULL;
}

/* ---- public API ------------------------------------------------------------ */

static int64_t go_attr(const weft_attr *a, void (*fn)(void *), void *arg, uintptr_t pc)
{
    if (!fn)
        return -EINVAL;
    size_t size = 0;
    const char *name = NULL;
    unsigned flags = 0;
    if (a) {
        size = a->stack_size;
        name = a->name;
        flags = a->compact ? NEWPROC_COMPACT : 0;  /* SCHEDDEBUG's: newproc_init */
    }
    if (size != 0 && (size < WEFT_STACK_MIN || size > WEFT_STACK_MAX))
        return -EINVAL;
    int err = weft__ensure_booted();
    if (err < 0)
        return err;
    if (size == 0)
        size = weft__stack_default;
    G *self = weft__getg();
    if (!self || self->issystem)
        AO_store(&sched.foreign, 1);    /* see checkdead */
    size = (size + 4095) & ~(size_t)4095;
    G *gp = weft__newproc(fn, arg, size, name, pc, flags, &err);
    if (!gp)
        return err;
    int64_t goid = gp->goid;
    /* weft_go is a scheduling point: a spawner that sysmon flagged (it ran
     * for 10 ms) lets its children run, as Go's preemption would. */
    weft__preemptpoint();
    return goid;
}

int64_t weft_go_attr(const weft_attr *a, void (*fn)(void *), void *arg)
{
    return go_attr(a, fn, arg, (uintptr_t)__builtin_return_address(0));
}

int64_t weft_go(void (*fn)(void *), void *arg)
{
    return go_attr(NULL, fn, arg, (uintptr_t)__builtin_return_address(0));
}

int64_t weft_id(void)
{
    G *gp = weft__getg();
    return (gp && !gp->issystem) ? gp->goid : 0;
}

int weft_num_goroutine(void)
{
    if (AO_load(&sched.booted) != 2)
        return 0;
    return (int)gcount();
}
