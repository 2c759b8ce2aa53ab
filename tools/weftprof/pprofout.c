/*
 * pprofout.c — the -o file, written by weft's profile.proto writer
 * (runtime/diag/pprof.h, the weft_pprof library: self-contained, no runtime
 * in it) with weftprof's own symbolizer: the addresses belong to the
 * target, not to weftprof, so the names come from the cache libunwind
 * filled while sampling (symbols.h).
 *
 * Sample types are samples/count and wall/nanoseconds (count × period):
 * every thread is sampled whether it runs or sleeps, so this is a wall-clock
 * profile, not a CPU one.  Each sample carries a "thread" label, the thread's
 * name, and on a weft program a "goroutine" label, the id of the goroutine
 * the thread was running (none while it ran the scheduler).  Mappings come from a snapshot of /proc/PID/maps (pprofout_snapshot)
 * taken while the target was alive.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pprof.h"
#include "report.h"

static const weft__pprof_vt sample_types[] = {
    { "samples", "count" },
    { "wall", "nanoseconds" },
};

static weft__pprof *new_profile(int hz)
{
    return weft__pprof_new(sample_types, 2, (weft__pprof_vt){ "wall", "nanoseconds" },
                           1000000000 / hz);
}

void *pprofout_snapshot(pid_t tid, void *old, int hz)
{
    weft__pprof *p = new_profile(hz);
    if (!p)
        return old;
    if (weft__pprof_add_proc_mappings(p, tid) < 0) {
        weft__pprof_free(p);
        return old;
    }
    if (old)
        weft__pprof_free(old);
    return p;
}

void pprofout_free(void *snap)
{
    if (snap)
        weft__pprof_free(snap);
}

typedef struct symarg {
    wp_symbols *s;
    int gen;
} symarg;

static bool symbolize(uintptr_t pc, bool isreturn, weft__pprof_sym *out, void *arg)
{
    symarg *a = arg;
    const wp_addr *e = symbols_find(a->s, isreturn ? pc - 1 : pc, a->gen);
    if (!e || e->func < 0)
        return false;
    out->func = symbols_name(a->s, e->func);
    out->file = NULL;
    out->line = 0;
    return true;
}

int pprofout_write(int fd, void *snap, wp_profile *p, wp_symbols *s,
                   const wp_report_info *info, int gen, int64_t *skipped)
{
    weft__pprof *pp = snap ? snap : new_profile(info->hz);  /* no snapshot: no mappings */
    if (!pp)
        return -ENOMEM;
    int64_t period = 1000000000 / info->hz;
    weft__pprof_set_time(pp, info->start_wall, (int64_t)(info->seconds * 1e9));
    *skipped = 0;
    int r = 0;
    for (uint32_t i = 0; i < p->nstacks && r == 0; i++) {
        wp_stack *st = p->stacks[i];
        if (st->gen != gen) {
            *skipped += st->count;
            continue;
        }
        int64_t v[2] = { st->count, st->count * period };
        char goid[24];
        snprintf(goid, sizeof goid, "%lld", (long long)st->goid);
        weft__pprof_label labels[2] = { { "thread", symbols_name(s, st->thread) }, { "goroutine", goid } };
        r = weft__pprof_add_labels(pp, st->pcs, st->depth, true, v, labels, st->goid > 0 ? 2 : 1);
    }
    symarg a = { s, gen };
    if (r == 0)
        r = weft__pprof_write(pp, fd, symbolize, &a);
    weft__pprof_free(pp);
    return r;
}
