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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "scheddebug.h"

typedef struct {
    char *b;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *s, const char *fmt, ...)
{
    if (s->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(s->b + s->n, s->cap - s->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            s->oom = true;
            return;
        }
        if ((size_t)k < s->cap - s->n) {
            s->n += (size_t)k;
            return;
        }
        size_t nc = s->cap * 2 + (size_t)k + 256;
        char *nb = realloc(s->b, nc);
        if (!nb) {
            s->oom = true;
            return;
        }
        s->b = nb;
        s->cap = nc;
    }
}

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

static void dump(sbuf *s, bool detailed)
{
    int64_t now = weft__nanotime();
    uint32_t np = (uint32_t)AO_load_acquire(&weft__gomaxprocs);
    int64_t threads = sched.mnext - sched.nmexited + (sched.sysmon_started ? 1 : 0);
    sb_printf(s, "SCHED %lldms: gomaxprocs=%u idleprocs=%lu threads=%lld spinningthreads=%lu "
                 "needspinning=%lu idlethreads=%d runqueue=%lu",
              (long long)((now - sched.starttime) / 1000000), np,
              (unsigned long)AO_load(&sched.npidle), (long long)threads,
              (unsigned long)AO_load(&sched.nmspinning), (unsigned long)AO_load(&sched.needspinning),
              sched.nmidle, (unsigned long)AO_load(&sched.runqsize));
    if (!detailed) {
        sb_printf(s, " [");
        for (uint32_t i = 0; i < np; i++)
            sb_printf(s, i ? " %u" : "%u", weft__runqsize(weft__allp[i]));
        sb_printf(s, "]\n");
        return;
    }
    sb_printf(s, " gcwaiting=%s nmidlelocked=%d stopwait=%d sysmonwait=false\n",
              AO_load(&sched.gcwaiting) ? "true" : "false", sched.nmidlelocked, sched.stopwait);
    for (uint32_t i = 0; i < np; i++) {
        P *pp = weft__allp[i];
        M *m = pp->m;
        sb_printf(s, "  P%d: status=%lu schedtick=%u syscalltick=%lu m=%lld runqsize=%u gfreecnt=%d timerslen=%d\n",
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
        sb_printf(s, "  M%lld: p=%d curg=%lld mallocing=0 throwing=0 preemptoff= locks=0 dying=0 "
                     "spinning=%s blocked=%s lockedg=%lld\n",
                  (long long)m->id, pp ? pp->id : -1, cg ? (long long)cg->goid : -1LL,
                  m->spinning ? "true" : "false", AO_load(&m->blocked) ? "true" : "false",
                  lg ? (long long)lg->goid : -1LL);
    }
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        AO_t st = AO_load(&gp->atomicstatus);
        if (st == Gdead)
            continue;   /* free Gs waiting for reuse: not goroutines */
        M *m = gp->m;
        M *lm = gp->lockedm;
        const char *what = st == Gwaiting ? weft__waitreason_str(gp->waitreason) : gstatusname(st);
        sb_printf(s, "  G%lld: status=%lu(%s) m=%lld lockedm=%lld\n", (long long)gp->goid,
                  (unsigned long)st, what, st == Grunning || st == Gsyscall ? mid(m) : -1LL, mid(lm));
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
    sbuf s = { .b = malloc(4096), .n = 0, .cap = 4096, .oom = false };
    if (!s.b)
        return;
    weft__lock(&sched.lock);
    dump(&s, detailed);
    weft__unlock(&sched.lock);
    if (s.oom)
        sb_printf(&s, "SCHED: dump truncated: out of memory\n");
    writelines(fd, s.b, s.n);
    free(s.b);
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
