/*
 * schedtrace.c — scheduler dumps in Go's runtime.schedtrace format
 * (docs/formats.md, SCHEDDEBUG and schedtrace), for
 * SCHEDDEBUG=schedtrace=N[,scheddetail=1] (written by sysmon) and
 * weft_schedtrace(fd, detailed); SCHEDDEBUG=hogwarn's report; and
 * SCHEDDEBUG itself, read once at start-up.
 *
 * Consistency, as in Go: the dump is taken under the scheduler lock
 * (weft__view_lock), which freezes the idle lists and counters it protects
 * (idleprocs, idlethreads, ...) but not the running Ps: per-P, per-M and
 * per-G fields are snapshots (diag/schedview.h), each word read once, so a
 * line is a true snapshot of each field at some instant during the dump,
 * never garbage.  P, M and G structs are never freed while the runtime
 * runs, so the walk cannot touch freed memory.  The text is built in
 * memory under the lock and written after it is released, each line whole,
 * so a slow reader of the fd can never stall the scheduler and lines are
 * never torn.
 */
#include <atomic_ops.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weft.h"

#include "nosigpipe.h"
#include "scheddebug.h"
#include "schedview.h"
#include "traceback.h"

/* *raw counts the Ms whose creation stack went out as bare addresses (not
 * symbolized yet). */
static void dump(weft__out *s, bool detailed, int *raw)
{
    weft__schedsnap sn;
    weft__view_sched(&sn);
    weft__outf(s, "SCHED %lldms: gomaxprocs=%u idleprocs=%u threads=%lld spinningthreads=%u "
                 "needspinning=%u idlethreads=%d runqueue=%u",
              (long long)(sn.uptime / 1000000), sn.gomaxprocs, sn.idleprocs, (long long)sn.threads,
              sn.spinning, sn.needspinning, sn.idlethreads, sn.runqueue);
    weft__pview pv;
    if (!detailed) {
        weft__outf(s, " [");
        for (uint32_t i = 0; weft__view_p(i, &pv); i++)
            weft__outf(s, i ? " %u" : "%u", pv.runqsize);
        weft__outf(s, "]\n");
        return;
    }
    weft__outf(s, " gcwaiting=%s nmidlelocked=%d stopwait=%d sysmonwait=%s\n",
              sn.gcwaiting ? "true" : "false", sn.nmidlelocked, sn.stopwait,
              sn.sysmonwait ? "true" : "false");
    for (uint32_t i = 0; weft__view_p(i, &pv); i++)
        weft__outf(s, "  P%d: status=%d schedtick=%u syscalltick=%u m=%lld runqsize=%u gfreecnt=%d timerslen=%d\n",
                  pv.id, pv.status, pv.schedtick, pv.syscalltick, (long long)pv.m, pv.runqsize,
                  pv.gfreecnt, pv.timerslen);
    for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m)) {
        weft__mview mv;
        weft__view_m(m, &mv);
        if (mv.exited)
            continue;
        weft__outf(s, "  M%lld: p=%d curg=%lld mallocing=0 throwing=0 preemptoff= locks=0 dying=0 "
                     "spinning=%s blocked=%s lockedg=%lld\n",
                  (long long)mv.id, mv.p, (long long)mv.curg, mv.spinning ? "true" : "false",
                  mv.blocked ? "true" : "false", (long long)mv.lockedg);
        /* load-acquire: pairs with the CAS that published the text */
        const char *ct = (const char *)AO_load_acquire((AO_t *)&weft__view_mdiag(m)->createtext);
        if (ct) {
            weft__out_write(s, ct, strlen(ct));
        } else if (mv.ncreatestack > 0) {
            /* not symbolized yet (a crash dump, or an M newer than the
             * cache): the bare addresses */
            (*raw)++;
            weft__outf(s, "    #");
            for (int i = 0; i < mv.ncreatestack; i++)
                weft__outf(s, " 0x%lx", (unsigned long)mv.createstack[i]);
            weft__outf(s, "\n");
        }
    }
    for (G *gp = weft__view_allg(NULL); gp; gp = weft__view_allg(gp)) {
        weft__gview g;
        weft__view_g(gp, &g);
        if (g.status == VGdead)
            continue;   /* free Gs waiting for reuse: not goroutines */
        bool onm = g.status == VGrunning || g.status == VGsyscall;
        weft__outf(s, "  G%lld: status=%d(%s) m=%lld lockedm=%lld\n", (long long)g.goid, g.status,
                  g.status == VGwaiting ? g.waitreason : g.statusname, onm ? (long long)g.mid : -1LL,
                  (long long)g.lockedm);
    }
}

/* Symbolizes each M's creation stack once ("    #\t0x..\tfunc+0x..\tfile:line"
 * lines) into its diag block, outside the view lock: Ms are never freed
 * while the runtime runs and the list is prepend-only, so the racy walk is
 * safe. */
static void cache_createtexts(void)
{
    for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m)) {
        weft__mview mv;
        weft__view_m(m, &mv);
        AO_t *slot = (AO_t *)&weft__view_mdiag(m)->createtext;
        /* load-acquire: pairs with the CAS below (another dumper's) */
        if (AO_load_acquire(slot) || mv.ncreatestack == 0)
            continue;
        char tmp[8192];
        weft__out o;
        weft__out_mem(&o, tmp, sizeof tmp - 1);
        weft__printstackrecord(&o, "    ", mv.createstack, mv.ncreatestack);
        tmp[o.n] = 0;
        char *t = strdup(tmp);
        /* CAS-full: publishes the text (release) to dumps; a racing
         * dumper's copy loses and is freed. */
        if (t && !AO_compare_and_swap_full(slot, 0, (AO_t)t))
            free(t);
    }
}

void weft__schedtrace_mfree(M *m)
{
    weft__mdiag *d = weft__view_mdiag(m);
    free(d->createtext);    /* shutdown: no dumper is left */
    d->createtext = NULL;
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
            ssize_t w = weft__write_nosigpipe(fd, b + off + done, len - done);
            if (w <= 0)
                return;
            done += (size_t)w;
        }
        off += len;
    }
}

void weft_schedtrace(int fd, bool detailed)
{
    if (!weft__view_running()) {
        static const char msg[] = "SCHED: the weft runtime is not running\n";
        ssize_t r = weft__write_nosigpipe(fd, msg, sizeof msg - 1);
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
        int raw = 0;
        weft__view_lock();
        dump(&o, detailed, &raw);
        weft__view_unlock();
        if (raw > 0 && tries < 7) {
            /* An M started (or published its creation stack) after the
             * cache was filled: symbolize it too and dump again, rather
             * than print bare addresses. */
            cache_createtexts();
            free(b);
            continue;
        }
        if (o.dropped == 0) {
            writelines(fd, b, o.n);
            free(b);
            return;
        }
        cap = (o.n + o.dropped) * 2;
        free(b);
    }
}

/* How long a crash dump waits for the scheduler lock before it dumps
 * without it. */
#define CRASH_LOCK_WAIT_NS (100 * 1000 * 1000)

void weft__schedtrace_crash(int fd)
{
    if (!weft__view_running())
        return;
    /* A crash may hold the lock itself: wait a little, then dump racily
     * (the dump reads each word once and never follows freed memory). */
    bool locked = false;
    int64_t deadline = weft__nanotime() + CRASH_LOCK_WAIT_NS;
    while (!(locked = weft__view_trylock()) && weft__nanotime() < deadline)
        sched_yield();
    weft__out o;
    weft__out_fd(&o, fd);
    int raw = 0;
    dump(&o, true, &raw);      /* no symbolizing in a crash: bare addresses */
    weft__out_flush(&o);
    if (locked)
        weft__view_unlock();
}

/* ---- hogwarn ----------------------------------------------------------------------- */

void weft__hogwarn(M *m, G *gp, int32_t pid, int64_t ns)
{
    weft__gview g;
    weft__view_g(gp, &g);
    uintptr_t pcs[64];
    int64_t capgoid = 0;
    int n = weft__sigcapture(m, pcs, 64, &capgoid, WEFT__CAPTURE_TIMEOUT_NS, false);
    weft__out o;
    weft__out_fd(&o, 2);
    weft__outf(&o, "weft: hogwarn: goroutine %lld has run for %lldms on P%d without reaching a scheduling point\n",
               (long long)g.goid, (long long)(ns / 1000000), pid);
    if (n > 0 && capgoid == g.goid) {
        weft__goroutineheader(&o, &g);
        weft__tbopts opt = { 0 };
        for (int i = 0; i < n; i++)
            weft__printframe(&o, pcs[i], i == 0, &opt);
    } else {
        weft__outf(&o, "goroutine %lld [running]:\n\t(it moved on before its stack could be captured)\n",
                   (long long)g.goid);
    }
    weft__out_flush(&o);
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
