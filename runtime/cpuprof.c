/*
 * cpuprof.c — the CPU profiler (SPEC §5; Go's runtime/cpuprof.go and
 * pprof.StartCPUProfile).
 *
 *   every M ──timer on its own CPU clock──▶ SIGPROF on that very thread
 *      handler: walk the interrupted frames ──▶ the M's ring (no locks)
 *   writer thread, every 10 ms: drain every ring ──▶ profile (pprof.c)
 *   stop: disarm, final drain, gzipped profile.proto ──▶ fd
 *
 * Each M gets a POSIX timer on its thread's CPU-time clock
 * (pthread_getcpuclockid; os/linux.c) that delivers SIGPROF to that thread
 * (SIGEV_THREAD_ID), as Go does since 1.18: process-wide setitimer
 * delivers to whichever thread the kernel picks, often a sleeping one, and
 * under-counts beyond one busy CPU.  Ms created while profiling are armed
 * when they start (weft__cpuprof_minit).
 *
 * The handler may interrupt anything, malloc and the scheduler's locks
 * included, so it only walks frame pointers within the stack it is on and
 * appends to its M's ring: a single-producer (that M's handler; SIGPROF is
 * blocked while it runs) single-consumer (the writer) array of fixed-size
 * records.  A full ring drops the sample and counts it; the count becomes
 * a sample of weft__cpuprof_lost, as Go's lostProfileEvent.  Rings are
 * allocated on the first profile and kept until the M is freed, so a
 * signal still in flight after a stop never writes freed memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pprof.h"
#include "traceback.h"

#define PROF_MAXSTACK 64
#define PROF_SLOTS 256          /* per M: 2.5 s at 100 Hz, 25 ms at 10 kHz */
#define PROF_DRAIN_NS (10 * 1000 * 1000)

typedef struct {
    int32_t n;                  /* frames in pcs; pcs[0] is the interrupted pc */
    int64_t goid;               /* the goroutine it was running, 0 if none */
    uintptr_t pcs[PROF_MAXSTACK];
} profrec;

struct weft__profbuf {
    AO_t head;                  /* atomic: next record the writer reads */
    AO_t tail;                  /* atomic: next record the handler writes */
    AO_t overflow;              /* atomic: samples dropped on a full ring */
    profrec rec[PROF_SLOTS];
};

static struct {
    AO_t on;                    /* atomic: handlers record while 1 */
    int fd;                     /* proflock */
    int hz;                     /* proflock */
    int64_t period;             /* ns per sample */
    int64_t startwall, startmono;
    weft__pprof *p;             /* writer thread (proflock after join) */
    pthread_t writer;
    weft__note stopnote;        /* wakes the writer for the last drain */
    int64_t lost;               /* writer */
    int err;                    /* writer: first pprof_add error */
} prof;

static weft__mutex proflock = WEFT__MUTEX_INIT(LOCKRANK_CPUPROF);    /* start / stop */

/* The function lost samples are attributed to. */
__attribute__((noinline, used)) void weft__cpuprof_lost(void) { __asm__ volatile(""); }

/* ---- the signal side --------------------------------------------------------- */

void weft__cpuprof_signal(void *uctx)
{
    G *gp = weft__getg();
    M *m = gp ? gp->m : NULL;
    /* load-acquire: pairs with start's store-release of on after the rings
     * were allocated */
    if (!m || !AO_load_acquire(&prof.on))
        return;
    weft__profbuf *b = (weft__profbuf *)AO_load_acquire((AO_t *)&m->profbuf);
    if (!b)
        return;
    AO_t t = AO_load(&b->tail);         /* only we write it */
    /* load-acquire: the writer is done with the slot it released */
    if (t - AO_load_acquire(&b->head) >= PROF_SLOTS) {
        AO_fetch_and_add1(&b->overflow);    /* a counter: no ordering needed */
        return;
    }
    profrec *r = &b->rec[t % PROF_SLOTS];
    r->n = weft__sigstack(uctx, r->pcs, PROF_MAXSTACK, &r->goid);
    /* store-release: publishes the record to the writer's load-acquire */
    AO_store_release(&b->tail, t + 1);
}

/* ---- the writer ------------------------------------------------------------------ */

static void drain(void)
{
    static const char *const key = "goroutine";
    for (M *m = (M *)AO_load_acquire((AO_t *)&sched.allm); m; m = m->alllink) {
        weft__profbuf *b = (weft__profbuf *)AO_load_acquire((AO_t *)&m->profbuf);
        if (!b)
            continue;
        AO_t h = AO_load(&b->head);                 /* only we write it */
        AO_t t = AO_load_acquire(&b->tail);         /* pairs with the handler's release */
        for (; h != t; h++) {
            profrec *r = &b->rec[h % PROF_SLOTS];
            int64_t v[2] = { 1, prof.period };
            char goid[24];
            if (r->goid > 0)
                snprintf(goid, sizeof goid, "%lld", (long long)r->goid);
            if (r->n > 0) {
                int e = weft__pprof_add(prof.p, r->pcs, r->n, true, v, r->goid > 0 ? key : NULL,
                                        r->goid > 0 ? goid : NULL);
                if (e && !prof.err)
                    prof.err = e;
            }
        }
        /* store-release: the handler may reuse the slots (pairs with its
         * load-acquire of head) */
        AO_store_release(&b->head, h);
        /* a counter: no ordering needed; subtracting what we read (not
         * storing 0) keeps the handler's increments made meanwhile */
        AO_t lost = AO_load(&b->overflow);
        if (lost) {
            prof.lost += (int64_t)lost;
            AO_fetch_and_add(&b->overflow, (AO_t)0 - lost);
        }
    }
}

static void *writer(void *arg)
{
    (void)arg;
    while (!weft__notetsleep(&prof.stopnote, PROF_DRAIN_NS))
        drain();
    drain();
    return NULL;
}

/* ---- arming Ms ----------------------------------------------------------------------- */

/* sched.lock held, profiling on: gives m a ring (kept for its life) and
 * starts its timer. */
static void arm(M *m)
{
    if (m->exited || m->procid == 0 || m->proftimer_armed)
        return;
    if (!m->profbuf) {
        weft__profbuf *b = calloc(1, sizeof *b);
        if (!b)
            return;     /* this M goes unprofiled rather than failing the rest */
        /* store-release: the handler sees an initialised ring */
        AO_store_release((AO_t *)&m->profbuf, (AO_t)b);
    } else {
        /* discard what a previous profile left: the writer is not running,
         * so we are the consumer; prof.on's store-release (start) orders
         * these before the handler's next look at the ring */
        AO_store(&m->profbuf->head, AO_load(&m->profbuf->tail));
        AO_store(&m->profbuf->overflow, 0);
    }
    if (weft__proftimer_start(m, prof.hz) == 0)
        m->proftimer_armed = true;
}

/* sched.lock held: every M's timer off (stop, or a failed start).  prof.on
 * is already 0: a signal still in flight finds it and records nothing. */
static void disarm_all(void)
{
    for (M *m = sched.allm; m; m = m->alllink) {
        if (m->proftimer_armed) {
            weft__proftimer_stop(m);
            m->proftimer_armed = false;
        }
    }
}

void weft__cpuprof_minit(M *m)
{
    /* a hint; the decision is taken again under sched.lock, which start
     * and stop hold while they flip prof.on */
    if (!AO_load_acquire(&prof.on))
        return;
    weft__lock(&sched.lock);
    if (AO_load(&prof.on))
        arm(m);
    weft__unlock(&sched.lock);
}

void weft__cpuprof_mfree(M *m)
{
    if (m->proftimer_armed)
        weft__proftimer_stop(m);
    m->proftimer_armed = false;
    free(m->profbuf);
    m->profbuf = NULL;
}

/* ---- start / stop ------------------------------------------------------------------ */

int weft_cpuprofile_start(int fd, int hz)
{
    if (hz < 1 || hz > 10000)
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    weft__lock(&proflock);
    int err = 0;
    if (AO_load(&prof.on)) {        /* proflock: only start/stop change it */
        err = -EBUSY;
        goto out;
    }
    if (AO_load_acquire(&sched.booted) != 2 || AO_load(&sched.exiting)) {
        err = -ESRCH;
        goto out;
    }
    static const weft__pprof_vt types[] = { { "samples", "count" }, { "cpu", "nanoseconds" } };
    prof.period = 1000000000LL / hz;
    prof.p = weft__pprof_new(types, 2, types[1], prof.period);
    if (!prof.p) {
        err = -ENOMEM;
        goto out;
    }
    weft__sigprof_install();
    prof.fd = fd;
    prof.hz = hz;
    prof.lost = 0;
    prof.err = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    prof.startwall = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    prof.startmono = weft__nanotime();
    weft__noteclear(&prof.stopnote);
    weft__lock(&sched.lock);
    AO_store_release(&prof.on, 1);
    for (M *m = sched.allm; m; m = m->alllink)
        arm(m);
    weft__unlock(&sched.lock);
    int r = pthread_create(&prof.writer, NULL, writer, NULL);
    if (r != 0) {
        weft__lock(&sched.lock);
        AO_store(&prof.on, 0);      /* under sched.lock, as every write of it */
        disarm_all();
        weft__unlock(&sched.lock);
        weft__pprof_free(prof.p);
        prof.p = NULL;
        err = -r;
    }
out:
    weft__unlock(&proflock);
    return err;
}

int weft_cpuprofile_stop(void)
{
    weft__lock(&proflock);
    if (!AO_load(&prof.on)) {       /* proflock: only start/stop change it */
        weft__unlock(&proflock);
        return -EINVAL;
    }
    weft__lock(&sched.lock);
    AO_store(&prof.on, 0);          /* under sched.lock, as every write of it */
    disarm_all();
    weft__unlock(&sched.lock);
    weft__notewakeup(&prof.stopnote);
    pthread_join(prof.writer, NULL);
    int err = prof.err;
    if (prof.lost > 0 && !err) {
        uintptr_t pc = (uintptr_t)weft__cpuprof_lost;
        int64_t v[2] = { prof.lost, prof.lost * prof.period };
        err = weft__pprof_add(prof.p, &pc, 1, true, v, NULL, NULL);
    }
    weft__pprof_set_time(prof.p, prof.startwall, weft__nanotime() - prof.startmono);
    if (!err)
        err = weft__pprof_add_proc_mappings(prof.p, 0);
    if (!err)
        err = weft__pprof_write(prof.p, prof.fd, weft__pprof_self_symbolizer, NULL);
    weft__pprof_free(prof.p);
    prof.p = NULL;
    weft__unlock(&proflock);
    return err;
}

void weft__cpuprof_shutdown(void)
{
    if (AO_load(&prof.on))          /* a hint: stop rechecks under proflock */
        weft_cpuprofile_stop();
}
