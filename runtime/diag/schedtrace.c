/*
 * schedtrace.c — scheduler dumps in Go's runtime.schedtrace format (SPEC
 * §4), for SCHEDDEBUG=schedtrace=N[,scheddetail=1] (written by sysmon) and
 * weft_schedtrace(fd, detailed).
 *
 * Consistency, as in Go: the dump is taken under sched.lock, which freezes
 * the idle lists and counters that sched.lock protects (idleprocs,
 * idlethreads, runqueue, ...) but not the running Ps: per-P and per-G
 * fields are read racily, each word atomically, so a line is a true
 * snapshot of each field at some instant during the dump, never garbage.
 * P, M and G structs are never freed while the runtime runs, so the walk
 * cannot touch freed memory.  The text is built in memory under the lock
 * and written after it is released, each line whole, so a slow reader of
 * the fd can never stall the scheduler and lines are never torn.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "scheddebug.h"
#include "traceback.h"

static const char *gstatusname(AO_t st)
{
    switch (st) {
    case Gidle: return "idle";
    case Grunnable: return "runnable";
    case Grunning: return "running";
    case Gsyscall: return "syscall";
    case Gwaiting: return "waiting";
    case Gdead: return "dead";
    default: return "???";
    }
}

static long long mid(M *m) { return m ? (long long)m->id : -1; }

static void dump(weft__out *s, bool detailed)
{
    int64_t now = weft__nanotime();
    uint32_t np = (uint32_t)AO_load_acquire(&weft__gomaxprocs);
    int64_t threads = sched.mnext - sched.nmexited + (sched.sysmon_started ? 1 : 0);
    weft__outf(s, "SCHED %lldms: gomaxprocs=%u idleprocs=%lu threads=%lld spinningthreads=%lu "
                 "needspinning=%lu idlethreads=%d runqueue=%lu",
              (long long)((now - sched.starttime) / 1000000), np,
              (unsigned long)AO_load(&sched.npidle), (long long)threads,
              (unsigned long)AO_load(&sched.nmspinning), (unsigned long)AO_load(&sched.needspinning),
              sched.nmidle, (unsigned long)AO_load(&sched.runqsize));
    if (!detailed) {
        weft__outf(s, " [");
        for (uint32_t i = 0; i < np; i++)
            weft__outf(s, i ? " %u" : "%u", weft__runqsize(weft__allp[i]));
        weft__outf(s, "]\n");
        return;
    }
    weft__outf(s, " gcwaiting=%s nmidlelocked=%d stopwait=%d sysmonwait=false\n",
              AO_load(&sched.gcwaiting) ? "true" : "false", sched.nmidlelocked, sched.stopwait);
    for (uint32_t i = 0; i < np; i++) {
        P *pp = weft__allp[i];
        M *m = pp->m;
        weft__outf(s, "  P%d: status=%lu schedtick=%u syscalltick=%lu m=%lld runqsize=%u gfreecnt=%d timerslen=%d\n",
                  pp->id, (unsigned long)AO_load(&pp->status), pp->schedtick,
                  (unsigned long)AO_load(&pp->syscalltick), mid(m), weft__runqsize(pp),
                  pp->gfreecnt, pp->ntimers);
    }
    for (M *m = sched.allm; m; m = m->alllink) {
        if (m->exited)
            continue;
        P *pp = m->p;
        G *cg = m->curg;
        G *lg = m->lockedg;
        weft__outf(s, "  M%lld: p=%d curg=%lld mallocing=0 throwing=0 preemptoff= locks=0 dying=0 "
                     "spinning=%s blocked=%s lockedg=%lld\n",
                  (long long)m->id, pp ? pp->id : -1, cg ? (long long)cg->goid : -1LL,
                  m->spinning ? "true" : "false", AO_load(&m->blocked) ? "true" : "false",
                  lg ? (long long)lg->goid : -1LL);
        /* load-acquire: pairs with the CAS that published the text */
        const char *ct = (const char *)AO_load_acquire((AO_t *)&m->createtext);
        if (ct) {
            weft__out_write(s, ct, strlen(ct));
        } else if (m->ncreatestack > 0) {
            /* not symbolized yet (a crash dump): the bare addresses */
            weft__outf(s, "    #");
            for (int i = 0; i < m->ncreatestack; i++)
                weft__outf(s, " 0x%lx", (unsigned long)m->createstack[i]);
            weft__outf(s, "\n");
        }
    }
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        AO_t st = AO_load(&gp->atomicstatus);
        if (st == Gdead)
            continue;   /* free Gs waiting for reuse: not goroutines */
        M *m = gp->m;
        M *lm = gp->lockedm;
        const char *what = st == Gwaiting ? weft__waitreason_str(gp->waitreason) : gstatusname(st);
        weft__outf(s, "  G%lld: status=%lu(%s) m=%lld lockedm=%lld\n", (long long)gp->goid,
                  (unsigned long)st, what, st == Grunning || st == Gsyscall ? mid(m) : -1LL, mid(lm));
    }
}

/* Symbolizes each M's creation stack once ("    #\t0x..\tfunc+0x..\tfile:line"
 * lines), outside sched.lock: Ms are never freed while the runtime runs and
 * allm is prepend-only, so the racy walk is safe. */
static void cache_createtexts(void)
{
    for (M *m = (M *)AO_load_acquire((AO_t *)&sched.allm); m; m = m->alllink) {
        if (AO_load_acquire((AO_t *)&m->createtext) || m->ncreatestack == 0)
            continue;
        char tmp[8192];
        weft__out o;
        weft__out_mem(&o, tmp, sizeof tmp - 1);
        weft__printstackrecord(&o, "    ", m->createstack, m->ncreatestack);
        tmp[o.n] = 0;
        char *t = strdup(tmp);
        /* CAS-full: publishes the text (release) to dumps; a racing
         * dumper's copy loses and is freed. */
        if (t && !AO_compare_and_swap_full((AO_t *)&m->createtext, 0, (AO_t)t))
            free(t);
    }
}

/* Writes buf to fd whole lines at a time. */
static void writelines(int fd, const char *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        const char *nl = memchr(b + off, '\n', n - off);
        size_t len = nl ? (size_t)(nl - (b + off)) + 1 : n - off;
        size_t done = 0;
        while (done < len) {
            ssize_t w = write(fd, b + off + done, len - done);
            if (w <= 0)
                return;
            done += (size_t)w;
        }
        off += len;
    }
}

void weft_schedtrace(int fd, bool detailed)
{
    if (AO_load_acquire(&sched.booted) != 2) {
        static const char msg[] = "SCHED: the weft runtime is not running\n";
        ssize_t r = write(fd, msg, sizeof msg - 1);
        (void)r;
        return;
    }
    if (detailed)
        cache_createtexts();
    /* Format into memory under the lock, write after it: a slow reader of
     * fd never holds up the scheduler.  Grow and retry if it did not fit. */
    size_t cap = 16384;
    for (int tries = 0; tries < 8; tries++) {
        char *b = malloc(cap);
        if (!b)
            return;
        weft__out o;
        weft__out_mem(&o, b, cap);
        weft__lock(&sched.lock);
        dump(&o, detailed);
        weft__unlock(&sched.lock);
        if (o.dropped == 0) {
            writelines(fd, b, o.n);
            free(b);
            return;
        }
        cap = (o.n + o.dropped) * 2;
        free(b);
    }
}

void weft__schedtrace_crash(int fd)
{
    if (AO_load_acquire(&sched.booted) != 2)
        return;
    /* A crash may hold sched.lock itself: wait a little, then dump racily
     * (the dump reads each word atomically and never follows freed memory). */
    bool locked = false;
    int64_t deadline = weft__nanotime() + 100 * 1000 * 1000;
    while (!(locked = weft__trylock(&sched.lock)) && weft__nanotime() < deadline)
        sched_yield();
    weft__out o;
    weft__out_fd(&o, fd);
    dump(&o, true);
    weft__out_flush(&o);
    if (locked)
        weft__unlock(&sched.lock);
}

/* ---- SCHEDDEBUG at start-up ------------------------------------------------------ */

static void warn_entry(const char *entry, size_t len, const char *why, void *arg)
{
    (void)arg;
    char e[128];
    size_t n = len < sizeof e - 4 ? len : sizeof e - 4;
    memcpy(e, entry, n);
    if (n < len)
        memcpy(e + n, "...", 4);
    else
        e[n] = 0;
    weft__printf(2, "weft: SCHEDDEBUG: ignoring \"%s\": %s\n", e, why);
}

void weft__scheddebug_init(void)
{
    static AO_t done;
    if (!AO_compare_and_swap_full(&done, 0, 1))   /* read once per process */
        return;
    weft__scheddebug_parse(getenv("SCHEDDEBUG"), &weft__debug, warn_entry, NULL);
}
