/*
 * cpuprof.c — the CPU profiler (Go's runtime/cpuprof.go and
 * pprof.StartCPUProfile; the file it writes: docs/formats.md, the CPU
 * profile).
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
 * when they start (weft__cpuprof_minit).  Each M's ring and timer live in
 * its diag block (diag/schedview.h: weft__mdiag); the set of Ms and the
 * timers are changed only under the scheduler lock (weft__view_lock).
 *
 * The kernel checks CPU-clock timers only at its scheduler tick
 * (CONFIG_HZ: 100 to 1000 Hz, 250 on the development machine), so a timer
 * faster than the tick expires several times between two signals:
 * unweighted, 1000 Hz recorded 22-24% of the CPU time used (500 Hz 46%,
 * 100 Hz 98%).  The signal's si_overrun says how many expirations it
 * stands for beyond the first, and each sample carries that weight
 * (1 + overrun) in both of its values, so the profile's total is the CPU
 * time used at any rate; above the tick the samples are fewer and
 * heavier, not lost.  (The overrun is read from the siginfo the kernel
 * hands the handler: no syscall, nothing that is not async-signal-safe.)
 *
 * The handler may interrupt anything, malloc and the scheduler's locks
 * included, so it only walks frame pointers within the stack it is on and
 * appends to its M's ring: a single-producer (that M's handler; SIGPROF is
 * blocked while it runs) single-consumer (the writer) array of fixed-size
 * records.  A full ring drops the sample and counts its weight; the count
 * becomes a sample of weft__cpuprof_lost, as Go's lostProfileEvent.  Rings
 * are allocated on the first profile and kept until the M is freed, so a
 * signal still in flight after a stop never writes freed memory.
 */
#include <atomic_ops.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "weft.h"

#include "nosigpipe.h"
#include "pprof.h"
#include "schedview.h"
#include "symtab.h"
#include "unwind.h"

#define PROF_MAXSTACK 64
#define PROF_SLOTS 256          /* per M: 2.5 s at 100 Hz, 25 ms at 10 kHz */
#define PROF_DRAIN_NS (10 * 1000 * 1000)

typedef struct {
    int64_t weight;             /* timer expirations the sample stands for (>= 1) */
    int32_t n;                  /* frames in pcs; pcs[0] is the interrupted pc */
    int64_t goid;               /* the goroutine it was running, 0 if none */
    uintptr_t pcs[PROF_MAXSTACK];
} profrec;

struct weft__profbuf {
    AO_t head;                  /* atomic: next record the writer reads */
    AO_t tail;                  /* atomic: next record the handler writes */
    AO_t overflow;              /* atomic: expirations dropped on a full ring */
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
    weft__note stopnote;        /* wakes the writer for its last drain */
    int64_t lost;               /* writer */
    int err;                    /* writer: first pprof_add error */
} prof;

/* Start and stop (a goroutine blocked here blocks its thread, as on any
 * runtime lock). */
static weft__mutex proflock = WEFT__MUTEX_INIT(LOCKRANK_CPUPROF);

/* The function lost samples are attributed to. */
__attribute__((noinline, used)) void weft__cpuprof_lost(void) { __asm__ volatile(""); }

/* ---- the signal side --------------------------------------------------------- */

void weft__cpuprof_signal(void *uctx, int64_t n)
{
    weft__mdiag *d = weft__view_mdiag_self();
    /* load-acquire: pairs with start's store-release of on after the rings
     * were allocated */
    if (!d || !AO_load_acquire(&prof.on))
        return;
    /* load-acquire: pairs with arm's store-release of the new ring */
    struct weft__profbuf *b = (struct weft__profbuf *)AO_load_acquire((AO_t *)&d->profbuf);
    if (!b)
        return;
    AO_t t = AO_load(&b->tail);         /* only we write it */
    /* load-acquire: the writer is done with the slot it released */
    if (t - AO_load_acquire(&b->head) >= PROF_SLOTS) {
        AO_fetch_and_add(&b->overflow, (AO_t)n);    /* a counter: no ordering needed */
        return;
    }
    profrec *r = &b->rec[t % PROF_SLOTS];
    r->weight = n;
    r->n = weft__sigstack(uctx, r->pcs, PROF_MAXSTACK, &r->goid);
    /* store-release: publishes the record to the writer's load-acquire */
    AO_store_release(&b->tail, t + 1);
}

/* ---- the writer ------------------------------------------------------------------ */

static void drain(void)
{
    static const char *const key = "goroutine";
    for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m)) {
        weft__mdiag *d = weft__view_mdiag(m);
        /* load-acquire: pairs with arm's store-release of the new ring */
        struct weft__profbuf *b = (struct weft__profbuf *)AO_load_acquire((AO_t *)&d->profbuf);
        if (!b)
            continue;
        AO_t h = AO_load(&b->head);                 /* only we write it */
        AO_t t = AO_load_acquire(&b->tail);         /* pairs with the handler's release */
        for (; h != t; h++) {
            profrec *r = &b->rec[h % PROF_SLOTS];
            int64_t v[2] = { r->weight, r->weight * prof.period };
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

/* Sleeps PROF_DRAIN_NS, or less if stop wakes it; true once stop has. */
static bool writer_sleep(void)
{
    return weft__notetsleep(&prof.stopnote, PROF_DRAIN_NS);
}

static void *writer(void *arg)
{
    (void)arg;
    while (!writer_sleep())
        drain();
    drain();
    return NULL;
}

/* ---- arming Ms ----------------------------------------------------------------------- */

/* View lock held, profiling on: gives m a ring (kept for its life) and
 * starts its timer. */
static void arm(M *m)
{
    weft__mview mv;
    weft__view_m(m, &mv);
    weft__mdiag *d = weft__view_mdiag(m);
    if (mv.exited || mv.procid == 0 || d->proftimer_armed)
        return;
    if (!d->profbuf) {
        struct weft__profbuf *b = calloc(1, sizeof *b);
        if (!b)
            return;     /* this M goes unprofiled rather than failing the rest */
        /* store-release: the handler sees an initialised ring */
        AO_store_release((AO_t *)&d->profbuf, (AO_t)b);
    } else {
        /* discard what a previous profile left: the writer is not running,
         * so we are the consumer; prof.on's store-release (start) orders
         * these before the handler's next look at the ring */
        AO_store(&d->profbuf->head, AO_load(&d->profbuf->tail));
        AO_store(&d->profbuf->overflow, 0);
    }
    if (weft__proftimer_start(m, prof.hz) == 0)
        d->proftimer_armed = true;
}

/* View lock held: every M's timer off (stop, or a failed start).  prof.on
 * is already 0: a signal still in flight finds it and records nothing. */
static void disarm_all(void)
{
    for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m)) {
        weft__mdiag *d = weft__view_mdiag(m);
        if (d->proftimer_armed) {
            weft__proftimer_stop(m);
            d->proftimer_armed = false;
        }
    }
}

void weft__cpuprof_minit(M *m)
{
    /* a hint; the decision is taken again under the view lock, which start
     * and stop hold while they flip prof.on */
    if (!AO_load_acquire(&prof.on))
        return;
    weft__view_lock();
    if (AO_load(&prof.on))
        arm(m);
    weft__view_unlock();
}

void weft__cpuprof_mfree(M *m)
{
    weft__mdiag *d = weft__view_mdiag(m);
    if (d->proftimer_armed)
        weft__proftimer_stop(m);
    d->proftimer_armed = false;
    free(d->profbuf);
    d->profbuf = NULL;
}

/* ---- start / stop ------------------------------------------------------------------ */

int weft_cpuprofile_start(int fd, int hz)
{
    if (hz < 1 || hz > 10000)
        return -EINVAL;
    if (weft__fd_writable(fd) < 0)
        return -EBADF;
    /* The object table SIGPROF's walks search, built now: the handler
     * cannot (dl_iterate_phdr, malloc). */
    weft__unwind_prepare();
    weft__lock(&proflock);
    int err = 0;
    if (AO_load(&prof.on)) {        /* proflock: only start/stop change it */
        err = -EBUSY;
        goto out;
    }
    if (!weft__view_running() || weft__view_exiting()) {
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
    weft__noteclear(&prof.stopnote);    /* no writer yet */
    weft__view_lock();
    /* store-release (under the view lock, as every write of it): pairs
     * with the handler's load-acquire; each ring is published by arm's
     * own store-release, and no M's timer runs before arm started it */
    AO_store_release(&prof.on, 1);
    for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m))
        arm(m);
    weft__view_unlock();
    int r = pthread_create(&prof.writer, NULL, writer, NULL);
    if (r == 0)
        pthread_setname_np(prof.writer, "weft-profwrite");
    if (r != 0) {
        weft__view_lock();
        AO_store(&prof.on, 0);      /* under the view lock, as every write of it */
        disarm_all();
        weft__view_unlock();
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
    weft__view_lock();
    AO_store(&prof.on, 0);          /* under the view lock, as every write of it */
    disarm_all();
    weft__view_unlock();
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
        err = weft__pprof_write(prof.p, prof.fd, weft__symtab_pprof, NULL);
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
