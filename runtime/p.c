/*
 * p.c — processors: creation and procresize (Go's GOMAXPROCS change).
 *
 * P structs are never freed while the runtime runs: allp is a fixed array
 * and a P beyond gomaxprocs is only marked Pdead.  Code that reads allp
 * without holding a P (sysmon, a spinning M's recheck, dumps) can therefore
 * never touch freed memory, only a stale P.
 */
#include <stdlib.h>
#include <string.h>

#include "race.h"

#define MAXPROCS_LIMIT WEFT_MAXPROCS_MAX

static P *allp_storage[MAXPROCS_LIMIT];
P **weft__allp = allp_storage;
AO_t weft__gomaxprocs;

P *weft__pinit(int32_t id)
{
    P *pp = aligned_alloc(CACHELINE, sizeof(P));
    if (!pp)
        return NULL;
    weft__race_untrack(pp, sizeof(P));   /* weft's own (race.h) */
    memset(pp, 0, sizeof *pp);
    pp->id = id;
    weft__lockinit(&pp->timerlock, LOCKRANK_TIMERS);
    AO_store(&pp->status, Pgcstop);
    return pp;
}

/* Empties a P that goes out of use: its Gs go to the global queue, its
 * caches to the global lists, its goroutine count to the global base. */
static void pdestroy(P *pp)
{
    weft__runqdrain_to_global(pp);
    weft__gfpurge(pp);
    weft__stackcache_flush(pp);
    weft__sudogcache_flush(pp);
    /* fetch_and_add: folds the per-P count into the base; readers may see
     * a transiently doubled or missing share, which gcount tolerates. */
    AO_fetch_and_add(&sched.ngoroutines_base, AO_load(&pp->ngoroutines));
    AO_store(&pp->ngoroutines, 0);
    pp->m = NULL;
    AO_store(&pp->status, Pdead);
}

/* Changes the number of Ps to nprocs.  The world is stopped (or not yet
 * started) and sched.lock is held.  The caller's P, if it has one, stays
 * its P when it survives, or becomes allp[0].  Ps without an owner are left
 * in status Pgcstop for starttheworld (or, at boot, the caller) to hand out.
 * Returns 0, or -ENOMEM if fewer Ps than asked could be created. */
int weft__procresize(int32_t nprocs)
{
    int err = 0;
    if (nprocs > MAXPROCS_LIMIT)
        nprocs = MAXPROCS_LIMIT;
    if (nprocs < 1)
        nprocs = 1;
    int32_t old = (int32_t)AO_load(&weft__gomaxprocs);
    for (int32_t i = old; i < nprocs; i++) {
        if (!allp_storage[i]) {
            P *pp = weft__pinit(i);
            if (!pp) {
                nprocs = i > 0 ? i : 1;
                err = -ENOMEM;
                break;
            }
            allp_storage[i] = pp;
        }
        AO_store(&allp_storage[i]->status, Pgcstop);
        allp_storage[i]->m = NULL;
    }
    if (!allp_storage[0])
        weft__throw("procresize: no P");
    for (int32_t i = nprocs; i < old; i++) {
        weft__movetimers(allp_storage[i], allp_storage[0]);
        pdestroy(allp_storage[i]);
    }

    G *gp = weft__getg();
    M *m = gp ? gp->m : NULL;
    if (unlikely(weft__tracing())) weft__trace_procresize(m, nprocs);
    if (m && m->p && m->p->id >= nprocs) {
        /* Our P is gone: continue on P0. */
        m->p->m = NULL;
        m->p = allp_storage[0];
        allp_storage[0]->m = m;
    }
    /* store-release: the new Ps are initialized before anyone iterates to them */
    AO_store_release(&weft__gomaxprocs, (AO_t)nprocs);
    return err;
}

void weft__pfreeall(void)
{
    for (int i = 0; i < MAXPROCS_LIMIT; i++) {
        if (allp_storage[i])
            weft__timersfree(allp_storage[i]);
        free(allp_storage[i]);
        allp_storage[i] = NULL;
    }
    AO_store(&weft__gomaxprocs, 0);
}
