/*
 * test_runq.c — the per-P run queue, as Go's TestSchedLocalQueue*,
 * exercised directly on Ps that no M owns (export_test.go style).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static P *newp(int id)
{
    P *pp = weft__pinit(id);
    cr_assert_not_null(pp);
    return pp;
}

static G *gs(int n)
{
    G *g = calloc((size_t)n, sizeof(G));
    cr_assert_not_null(g);
    return g;
}

Test(runq, local_queue_fifo_for_every_length)
{
    P *pp = newp(0);
    G *g = gs(RUNQ_SIZE);
    for (int i = 0; i < RUNQ_SIZE; i++) {
        cr_assert(weft__runqempty(pp));
        cr_assert_null(weft__runqget(pp, NULL));
        for (int j = 0; j < i; j++)
            weft__runqput(pp, &g[j], false);
        cr_assert_eq(weft__runqsize(pp), (uint32_t)i);
        for (int j = 0; j < i; j++) {
            G *got = weft__runqget(pp, NULL);
            cr_assert_eq(got, &g[j], "length %d: position %d out of order", i, j);
        }
        cr_assert(weft__runqempty(pp));
    }
    free(g);
    free(pp);
}

/* The stress build randomizes runnext and shuffles spills on purpose, so
 * the two order tests below only hold in normal builds. */
#ifdef WEFT_STRESS
#define SKIP_IF_STRESS() cr_skip_test("order is randomized in the stress build")
#else
#define SKIP_IF_STRESS() ((void)0)
#endif

Test(runq, runnext_runs_first_and_kicks_old_to_tail)
{
    SKIP_IF_STRESS();
    P *pp = newp(0);
    G *g = gs(3);
    bool inherit = false;
    weft__runqput(pp, &g[0], false);
    weft__runqput(pp, &g[1], true);
    weft__runqput(pp, &g[2], true);     /* g[1] goes to the tail */
    cr_assert_eq(weft__runqget(pp, &inherit), &g[2]);
    cr_assert(inherit, "runnext inherits the time slice");
    cr_assert_eq(weft__runqget(pp, &inherit), &g[0]);
    cr_assert(!inherit);
    cr_assert_eq(weft__runqget(pp, &inherit), &g[1]);
    cr_assert(weft__runqempty(pp));
    free(g);
    free(pp);
}

Test(runq, overflow_moves_half_to_global_queue)
{
    SKIP_IF_STRESS();
    P *pp = newp(0);
    AO_store(&weft__gomaxprocs, 1);
    G *g = gs(RUNQ_SIZE + 1);
    for (int i = 0; i <= RUNQ_SIZE; i++)
        weft__runqput(pp, &g[i], false);
    /* Half of the full ring plus the new G went to the global queue. */
    cr_assert_eq(weft__runqsize(pp), RUNQ_SIZE / 2);
    cr_assert_eq(AO_load(&sched.runqsize), RUNQ_SIZE / 2 + 1);
    /* Every G is in exactly one place, and order within each is kept. */
    char *seen = calloc(RUNQ_SIZE + 1, 1);
    G *prev = NULL;
    for (G *gp = sched.runqhead; gp; gp = gp->schedlink) {
        cr_assert(gp > prev, "global queue out of order");
        prev = gp;
        seen[gp - g]++;
    }
    G *gp;
    prev = NULL;
    while ((gp = weft__runqget(pp, NULL)) != NULL) {
        cr_assert(gp > prev, "local queue out of order");
        prev = gp;
        seen[gp - g]++;
    }
    for (int i = 0; i <= RUNQ_SIZE; i++)
        cr_assert_eq(seen[i], 1, "G %d seen %d times", i, seen[i]);
    free(seen);
    free(g);
    free(pp);
}

Test(runq, steal_takes_half)
{
    G *g = gs(RUNQ_SIZE);
    for (int i = 0; i < RUNQ_SIZE; i++) {
        P *p1 = newp(0), *p2 = newp(1);
        for (int j = 0; j < i; j++) {
            g[j].schedlink = NULL;
            weft__runqput(p1, &g[j], false);
        }
        G *stolen = weft__runqsteal(p2, p1, true);
        int s = 0;
        int *seen = calloc(RUNQ_SIZE, sizeof(int));
        if (stolen) {
            s++;
            seen[stolen - g]++;
            G *gp;
            while ((gp = weft__runqget(p2, NULL)) != NULL) {
                s++;
                seen[gp - g]++;
            }
        }
        G *gp;
        while ((gp = weft__runqget(p1, NULL)) != NULL)
            seen[gp - g]++;
        for (int j = 0; j < i; j++)
            cr_assert_eq(seen[j], 1, "len %d: G %d seen %d times", i, j, seen[j]);
        cr_assert(s == i / 2 || s == i / 2 + 1, "len %d: stole %d", i, s);
        free(seen);
        free(p1);
        free(p2);
    }
    free(g);
}

/* Several thieves steal from one owner that keeps putting and getting:
 * every G is taken exactly once, none is lost or duplicated. */
#define CONC_GS 200000
#define THIEVES 3

static P *victim;
static G *cg;
static AO_t taken[CONC_GS];
static AO_t done_putting;

static void take(G *gp)
{
    AO_t old = AO_fetch_and_add1(&taken[gp - cg]);
    if (old != 0)
        abort();    /* duplicate: the assertion below would also catch it */
}

static void *thief(void *arg)
{
    P *mine = arg;
    for (;;) {
        G *gp = weft__runqsteal(mine, victim, true);
        if (gp) {
            take(gp);
            while ((gp = weft__runqget(mine, NULL)) != NULL)
                take(gp);
        } else if (AO_load(&done_putting) && weft__runqempty(victim)) {
            return NULL;
        }
    }
}

Test(runq, concurrent_steal_loses_and_duplicates_nothing, .timeout = 60)
{
    AO_store(&weft__gomaxprocs, 1);
    victim = newp(0);
    cg = gs(CONC_GS);
    pthread_t t[THIEVES];
    P *ps[THIEVES];
    for (int i = 0; i < THIEVES; i++) {
        ps[i] = newp(i + 1);
        pthread_create(&t[i], NULL, thief, ps[i]);
    }
    for (int i = 0; i < CONC_GS; i++) {
        weft__runqput(victim, &cg[i], i % 3 == 0);
        if (i % 5 == 0) {
            G *gp = weft__runqget(victim, NULL);
            if (gp)
                take(gp);
        }
    }
    /* Overflow went to the global queue: drain it too. */
    AO_store(&done_putting, 1);
    G *gp;
    while ((gp = weft__runqget(victim, NULL)) != NULL)
        take(gp);
    for (int i = 0; i < THIEVES; i++)
        pthread_join(t[i], NULL);
    for (gp = sched.runqhead; gp; gp = gp->schedlink)
        take(gp);
    for (int i = 0; i < CONC_GS; i++)
        cr_assert_eq(AO_load(&taken[i]), 1, "G %d taken %lu times", i, (unsigned long)AO_load(&taken[i]));
}

/* runqempty must never report empty while a G moves from runnext to the
 * ring and back (Go's TestSchedLocalQueueEmpty): the owner keeps at least
 * one G queued throughout each window in which the checker looks. */
#define EMPTY_ITERS 100000
static AO_t phase;      /* 2k+1: window k open; 2k+2: checker finished window k */

static void *owner(void *arg)
{
    P *pp = arg;
    G a, b;
    for (AO_t k = 0; k < EMPTY_ITERS; k++) {
        weft__runqput(pp, &a, true);
        AO_store_release(&phase, 2 * k + 1);
        weft__runqput(pp, &b, true);   /* a is kicked from runnext to the ring */
        weft__runqget(pp, NULL);       /* takes b from runnext */
        weft__runqput(pp, &b, true);
        weft__runqget(pp, NULL);
        while (AO_load_acquire(&phase) != 2 * k + 2)
            ;
        weft__runqget(pp, NULL);       /* takes a: empty, outside the window */
    }
    return NULL;
}

Test(runq, runqempty_is_never_spuriously_true, .timeout = 60)
{
    P *pp = newp(0);
    pthread_t t;
    pthread_create(&t, NULL, owner, pp);
    for (AO_t k = 0; k < EMPTY_ITERS; k++) {
        while (AO_load_acquire(&phase) != 2 * k + 1)
            ;
        for (int i = 0; i < 8; i++)
            cr_assert(!weft__runqempty(pp), "spuriously empty in window %lu", (unsigned long)k);
        AO_store_release(&phase, 2 * k + 2);
    }
    pthread_join(t, NULL);
    cr_assert(weft__runqempty(pp));
}

Test(runq, random_order_visits_every_p_once)
{
    for (uint32_t procs = 1; procs <= 64; procs++) {
        weft__randorder o;
        weft__randorder_reset(&o, procs);
        cr_assert(o.ncoprimes >= 1);
        if (procs >= 3)
            cr_assert(o.ncoprimes >= 2, "procs %u: only one coprime", procs);
        for (uint32_t c = 0; c < o.ncoprimes; c++) {
            for (uint32_t start = 0; start < procs; start++) {
                char seen[64] = { 0 };
                uint32_t pos = start;
                for (uint32_t k = 0; k < procs; k++, pos = (pos + o.coprimes[c]) % procs)
                    seen[pos]++;
                for (uint32_t k = 0; k < procs; k++)
                    cr_assert_eq(seen[k], 1);
            }
        }
    }
}
