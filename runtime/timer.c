/*
 * timer.c — per-P timer heaps, weft_sleep and timeouts.
 *
 * Each P keeps its timers in a binary min-heap under its own timerlock, so
 * arming a timer touches only the current P.  p->timer0when mirrors the
 * earliest deadline for lock-free peeks.  Timers run:
 *   - in findrunnable, for the M's own P, before it looks for work;
 *   - in the switch fast path, every 16th switch that finds the P has a
 *     timer, one clock read decides whether to go through findrunnable;
 *   - by thieves: stealWork runs the expired timers of the Ps it visits;
 *   - by an idle M: before parking, an M computes the earliest timer over
 *     all Ps and sleeps on its futex only until then (no fixed tick), then
 *     takes an idle P and runs the timers;
 *   - by sysmon, as a backstop, which wakes an M when an idle P's timer is
 *     due.
 * A million sleeping goroutines therefore cost no CPU: they are heap
 * entries, and the idle Ms sleep until the first of them is due.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include "park.h"
#include "race.h"

static void siftup(P *pp, int32_t i)
{
    weft__timer **h = pp->timers;
    weft__timer *t = h[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (h[parent]->when <= t->when)
            break;
        h[i] = h[parent];
        h[i]->idx = i;
        i = parent;
    }
    h[i] = t;
    t->idx = i;
}

static void siftdown(P *pp, int32_t i)
{
    weft__timer **h = pp->timers;
    int32_t n = pp->ntimers;
    weft__timer *t = h[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1]->when < h[c]->when)
            c++;
        if (h[c]->when >= t->when)
            break;
        h[i] = h[c];
        h[i]->idx = i;
        i = c;
    }
    h[i] = t;
    t->idx = i;
}

/* timerlock held: keeps timer0when in step with the heap. */
static void update0(P *pp)
{
    /* store: a hint for lock-free peeks; the heap under the lock is the truth */
    AO_store(&pp->timer0when, pp->ntimers ? (AO_t)pp->timers[0]->when : 0);
}

static int heappush(P *pp, weft__timer *t)
{
    if (pp->ntimers == pp->captimers) {
        int32_t nc = pp->captimers ? pp->captimers * 2 : 64;
        /* The P's ownership orders the heap's growths, out of TSan's
         * sight (race.h). */
        weft__race_ignore_begin();
        weft__timer **nh = realloc(pp->timers, (size_t)nc * sizeof *nh);
        weft__race_ignore_end();
        if (!nh)
            return -ENOMEM;
        weft__race_untrack(nh, (size_t)nc * sizeof *nh);    /* weft's own (race.h) */
        pp->timers = nh;
        pp->captimers = nc;
    }
    t->pp = pp;
    pp->timers[pp->ntimers++] = t;
    siftup(pp, pp->ntimers - 1);
    update0(pp);
    return 0;
}

static void heapremove(P *pp, int32_t i)
{
    weft__timer *t = pp->timers[i];
    int32_t last = --pp->ntimers;
    if (i != last) {
        pp->timers[i] = pp->timers[last];
        pp->timers[i]->idx = i;
        siftdown(pp, i);
        siftup(pp, pp->timers[i]->idx);
    }
    t->idx = -1;
    t->pp = NULL;
    update0(pp);
}

/* Adds t to the current M's P, or P0 when called without one. */
static int addtimer_locked_p(weft__timer *t, P **out)
{
    G *me = weft__getg();
    M *m = me ? me->m : NULL;
    P *pp = (m && m->p) ? m->p : weft__allp[0];
    weft__lock(&pp->timerlock);
    int err = heappush(pp, t);
    *out = pp;
    return err;
}

/* Callbacks in flight, striped by timer address.  runtimers counts a timer
 * here (under its P's lock, before taking it off the heap) while its
 * callback runs, and never touches the timer after the callback returns
 * (the callback may free it).  deltimer on a timer that is no longer queued
 * waits for the count of its stripe to drain, so after deltimer returns the
 * callback's arguments may die. */
#define RUNSTRIPES 64
static AO_t running[RUNSTRIPES];

static AO_t *stripe(weft__timer *t)
{
    return &running[((uintptr_t)t >> 4) % RUNSTRIPES];
}

int weft__addtimer(weft__timer *t)
{
    P *pp;
    int err = addtimer_locked_p(t, &pp);
    weft__unlock(&pp->timerlock);
    weft__wakep();      /* an idle M may be sleeping past the new deadline */
    return err;
}

bool weft__deltimer(weft__timer *t)
{
    for (;;) {
        /* load-acquire: pairs with runtimers' fetch_and_add before it
         * clears t->pp, so a NULL pp means the stripe count is visible. */
        P *pp = (P *)AO_load_acquire((AO_t *)&t->pp);
        if (!pp) {
            while (AO_load_acquire(stripe(t)) != 0)
                sched_yield();      /* a callback is running: it is short */
            return false;
        }
        weft__lock(&pp->timerlock);
        if (t->pp != pp) {      /* moved or fired meanwhile */
            weft__unlock(&pp->timerlock);
            continue;
        }
        heapremove(pp, t->idx);
        weft__unlock(&pp->timerlock);
        return true;
    }
}

void weft__runtimers(P *pp, int64_t now)
{
    weft__lock(&pp->timerlock);
    while (pp->ntimers > 0 && pp->timers[0]->when <= now) {
        weft__timer *t = pp->timers[0];
        /* Copy what we call: once removed, the timer's owner may reuse it. */
        void (*f)(G *, void *) = t->f;
        G *gp = t->gp;
        void *arg = t->arg;
        AO_t *st = stripe(t);
        /* fetch_and_add_full: counted before t->pp is cleared (deltimer) */
        AO_fetch_and_add1_full(st);
        heapremove(pp, 0);
        weft__unlock(&pp->timerlock);
        f(gp, arg);
        /* fetch_and_sub (release): the callback's accesses happen before a
         * waiting deltimer returns; t itself is not touched again. */
        AO_fetch_and_sub1_release(st);
        weft__lock(&pp->timerlock);
    }
    weft__unlock(&pp->timerlock);
}

int64_t weft__nexttimer(void)
{
    int64_t next = 0;
    uint32_t np = (uint32_t)AO_load_acquire(&weft__gomaxprocs);
    for (uint32_t i = 0; i < np; i++) {
        int64_t w = (int64_t)AO_load(&weft__allp[i]->timer0when);
        if (w != 0 && (next == 0 || w < next))
            next = w;
    }
    return next;
}

void weft__movetimers(P *from, P *to)
{
    /* Both heaps, in address order (lockrank.h: two locks of one rank). */
    weft__mutex *first = &from->timerlock, *second = &to->timerlock;
    if ((uintptr_t)first > (uintptr_t)second) {
        first = &to->timerlock;
        second = &from->timerlock;
    }
    weft__lock(first);
    weft__lock(second);
    while (from->ntimers > 0) {
        weft__timer *t = from->timers[from->ntimers - 1];
        heapremove(from, from->ntimers - 1);
        if (heappush(to, t) != 0)
            weft__throw("movetimers: out of memory");
    }
    weft__unlock(second);
    weft__unlock(first);
}

void weft__timersfree(P *pp)
{
    free(pp->timers);
    pp->timers = NULL;
    pp->ntimers = pp->captimers = 0;
    AO_store(&pp->timer0when, 0);
}

/* ---- sleep -------------------------------------------------------------------- */

static void sleepthread(int64_t ns)
{
    struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

void weft_sleep(int64_t ns)
{
    if (ns <= 0)
        return;
    G *gp = weft__getg();
    if (!gp || gp->issystem) {
        sleepthread(ns);
        return;
    }
    /* A wait on nothing but the waiter's own timer (park.c). */
    weft__waiter *w = weft__waiter_get(gp, NULL, waitReasonSleep);
    if (weft__park(w, NULL, NULL, waitReasonSleep, weft__deadline(ns)) < 0) {
        /* No memory for the timer heap: sleep the thread rather than fail. */
        weft_syscall_enter();
        sleepthread(ns);
        weft_syscall_exit();
    }
}
