/*
 * traceback.c — goroutine stacks in Go's traceback format (docs/formats.md,
 * goroutine tracebacks and dumps):
 *
 *   goroutine 7 [chan receive, 3 minutes]:
 *   consumer(...)
 *   	/src/app.c:41 +0x2b
 *   main_fn(...)
 *   	/src/app.c:60 +0x51
 *   created by main_fn in goroutine 1
 *   	/src/app.c:57 +0x3c
 *
 * Goroutines are read as snapshots (diag/schedview.h) and their stacks
 * walked by diag/unwind.h: a switched-out goroutine's frames start in the
 * context weft__swapctx saved, one in a syscall at the frame that called
 * weft_syscall_enter, a running one at the signal context its M is
 * interrupted in (weft__sigcapture).  Every walk is bounded by the stack
 * it walks, so a stack that changes underneath (dumps do not stop the
 * world) can give nonsense frames but never a fault.
 *
 * As Go's level-1 traceback hides runtime.* frames, weft's internal frames
 * (its static helpers and weft__ functions) are hidden; the public weft_
 * calls a goroutine is blocked in (weft_chan_recv, weft_sleep, ...) are
 * shown, as Go shows runtime.Gosched.  A runtime bug (weft__throw) shows
 * everything.
 */
#include <string.h>

#include "schedview.h"
#include "symtab.h"
#include "traceback.h"
#include "unwind.h"

#define TB_INNER 50     /* Go's tracebackInnerFrames */
#define TB_OUTER 50     /* Go's tracebackOuterFrames */
#define TB_LIMIT 100000 /* frames walked at most */

/* ---- where a goroutine's stack starts ------------------------------------------ */

/* Starts u at g's frames if its snapshot has a walk (saved context or
 * syscall), bounded by its stack.  False if not (running, dead, or never
 * ran). */
static bool gwalk_init(const weft__gview *g, weft__unwinder *u)
{
    if (g->walk != VGwalk_saved && g->walk != VGwalk_syscall)
        return false;
    weft__unwind_init(u, g->pc, g->fp, g->stacklo, g->stackhi);
    return true;
}

int weft__gstackrecord(const weft__gview *g, uintptr_t *pcs, int max)
{
    int n = 0;
    weft__unwinder u;
    if (g->walk == VGwalk_fresh && max > 0) {
        pcs[n++] = g->pc + 1;   /* a "return address" inside its function */
    } else if (gwalk_init(g, &u)) {
        /* Start above the switch itself: the scheduler switches from more
         * than one place, and records of goroutines blocked the same way
         * must compare equal. */
        if (g->walk == VGwalk_saved)
            weft__unwind_next(&u);
        n = weft__unwind_pcs(&u, pcs, max);
    }
    if (n < max)
        pcs[n] = 0;
    return n;
}

/* ---- symbols ------------------------------------------------------------------------ */

static bool sym(uintptr_t pc, weft__sym *s, const weft__tbopts *opt)
{
    if (opt && opt->crash)
        return weft__symbolize_try(pc, s);
    return weft__symbolize(pc, s);
}

static bool prefixed(const char *s, const char *p) { return s && strncmp(s, p, strlen(p)) == 0; }

/* weft's own code other than its public API: hidden from tracebacks. */
static bool runtimeframe(const weft__sym *s)
{
    if (!s->func)
        return false;
    if (prefixed(s->func, "weft__"))
        return true;
    if (prefixed(s->func, "weft_"))
        return false;   /* the public API, as Go shows exported runtime calls */
    return prefixed(s->file, WEFT_RUNTIME_SRCDIR);
}

void weft__printframe(weft__out *o, uintptr_t pc, bool exact, const weft__tbopts *opt)
{
    weft__sym s;
    sym(exact ? pc : pc - 1, &s, opt);
    weft__outf(o, "%s(...)\n", s.func ? s.func : "?");
    if (s.file)
        weft__outf(o, "\t%s:%d", s.file, s.line);
    else
        weft__outf(o, "\t%s", s.module ? s.module : "?");
    if (s.func)
        weft__outf(o, " +0x%lx\n", (unsigned long)(pc - s.entry));
    else
        weft__outf(o, " pc=0x%lx\n", (unsigned long)pc);
}

/* ---- headers ------------------------------------------------------------------------ */

void weft__goroutineheader(weft__out *o, const weft__gview *g)
{
    const char *status = g->statusname;
    if (g->status == VGwaiting && g->waitreason[0])
        status = g->waitreason;
    weft__outf(o, "goroutine %lld [%s", (long long)g->goid, status);
    if (g->status == VGwaiting || g->status == VGsyscall) {
        int64_t since = g->waitsince, now = weft__view_coarsetime();
        if (since > 0 && now > since && (now - since) / 60000000000LL >= 1)
            weft__outf(o, ", %lld minutes", (long long)((now - since) / 60000000000LL));
    }
    if (g->locked)
        weft__outf(o, ", locked to thread");
    weft__outf(o, "]:\n");
}

static void createdby(weft__out *o, const weft__gview *g, const weft__tbopts *opt)
{
    if (g->ismain || !g->gopc)
        return;
    weft__sym s;
    sym(g->gopc - 1, &s, opt);
    weft__outf(o, "created by %s", s.func ? s.func : "?");
    if (g->parentgoid)
        weft__outf(o, " in goroutine %lld", (long long)g->parentgoid);
    weft__outf(o, "\n");
    if (s.file)
        weft__outf(o, "\t%s:%d", s.file, s.line);
    else
        weft__outf(o, "\t%s", s.module ? s.module : "?");
    if (s.func)
        weft__outf(o, " +0x%lx\n", (unsigned long)(g->gopc - s.entry));
    else
        weft__outf(o, " pc=0x%lx\n", (unsigned long)g->gopc);
}

/* ---- frames ------------------------------------------------------------------------- */

/* Prints frames [from, ...) of a chain, hiding runtime frames unless asked
 * (or unless nothing else would be printed), eliding the middle of very
 * deep stacks as Go does. */
void weft__traceback(weft__out *o, const weft__gview *g, const weft__unwinder *start, bool exact,
                     const weft__tbopts *opt)
{
    bool all = opt && opt->runtime_frames;
    /* First pass: are there user frames at all?  (Go prints every frame
     * when none would be shown.) */
    if (!all) {
        bool user = false;
        weft__unwinder u = *start;
        uintptr_t p = weft__unwind_next(&u);
        for (int i = 0; p && i < TB_LIMIT && !user; i++) {
            weft__sym s;
            sym(i == 0 && exact ? p : p - 1, &s, opt);
            if (!runtimeframe(&s))
                user = true;
            p = weft__unwind_next(&u);
        }
        all = !user;
    }
    uintptr_t tail[TB_OUTER];
    bool tailexact[TB_OUTER];
    int shown = 0, elided = 0;
    weft__unwinder u = *start;
    uintptr_t p = weft__unwind_next(&u);
    for (int i = 0; p && i < TB_LIMIT; i++, p = weft__unwind_next(&u)) {
        bool ex = i == 0 && exact;
        if (!all) {
            weft__sym s;
            sym(ex ? p : p - 1, &s, opt);
            if (runtimeframe(&s))
                continue;
        }
        if (shown < TB_INNER) {
            weft__printframe(o, p, ex, opt);
        } else {
            /* Keep the outermost frames in a ring; count what falls out. */
            int k = (shown - TB_INNER) % TB_OUTER;
            if (shown - TB_INNER >= TB_OUTER)
                elided++;
            tail[k] = p;
            tailexact[k] = ex;
        }
        shown++;
    }
    if (shown > TB_INNER) {
        int ntail = shown - TB_INNER - elided;
        if (elided)
            weft__outf(o, "...%d frames elided...\n", elided);
        int start = elided ? (shown - TB_INNER) % TB_OUTER : 0;
        for (int j = 0; j < ntail; j++) {
            int k = (start + j) % TB_OUTER;
            weft__printframe(o, tail[k], tailexact[k], opt);
        }
    }
    if (g)
        createdby(o, g, opt);
}

void weft__traceback_self(weft__out *o, const weft__tbopts *opt)
{
    weft__selfview self;
    weft__view_self(&self);
    weft__gview g;
    if (self.g) {
        weft__view_g(self.g, &g);
        weft__goroutineheader(o, &g);
    } else {
        weft__outf(o, "runtime stack:\n");
    }
    /* From the caller of our caller: skip us and the function asking.  A
     * plain thread has no known bounds (0, 0): the walker guesses them. */
    weft__unwinder u;
    weft__unwind_init_self(&u, 2, self.stacklo, self.stackhi);
    weft__traceback(o, self.g ? &g : NULL, &u, false, opt);
}

void weft__tracebackothers(weft__out *o, G *me, bool capture, const weft__tbopts *opt)
{
    for (G *gp = weft__view_allg(NULL); gp; gp = weft__view_allg(gp)) {
        if (gp == me)
            continue;
        weft__gview g;
        weft__view_g(gp, &g);
        if (g.status == VGdead || g.status == VGidle)
            continue;
        weft__outf(o, "\n");
        weft__goroutineheader(o, &g);
        weft__unwinder u;
        if (g.walk == VGwalk_fresh) {
            weft__printframe(o, g.pc, true, opt);
            createdby(o, &g, opt);
            continue;
        }
        if (gwalk_init(&g, &u)) {
            weft__traceback(o, &g, &u, false, opt);
            continue;
        }
        uintptr_t pcs[64];
        int64_t goid = 0;
        int n = -1;
        if (capture && g.m && g.status == VGrunning)
            n = weft__sigcapture(g.m, pcs, 64, &goid, WEFT__CAPTURE_TIMEOUT_NS, opt && opt->crash);
        if (n > 0 && goid == g.goid) {
            for (int i = 0; i < n; i++)
                weft__printframe(o, pcs[i], i == 0, opt);
        } else {
            weft__outf(o, "\tgoroutine running on other thread; stack unavailable\n");
        }
        createdby(o, &g, opt);
    }
}

/* ---- stack records ---------------------------------------------------------------- */

void weft__printstackrecord(weft__out *o, const char *prefix, const uintptr_t *pcs, int n)
{
    /* Hide leading runtime frames, unless that leaves nothing. */
    int first = 0;
    for (; first < n; first++) {
        weft__sym s;
        weft__symbolize(pcs[first] - 1, &s);
        if (!runtimeframe(&s) && !prefixed(s.func, "weft__gentry"))
            break;
    }
    if (first == n)
        first = 0;
    for (int i = first; i < n; i++) {
        weft__sym s;
        uintptr_t pc = pcs[i] - 1;     /* the call instruction, as Go's CallersFrames */
        if (!weft__symbolize(pc, &s) || !s.func) {
            weft__outf(o, "%s#\t0x%lx\n", prefix, (unsigned long)pc);
            continue;
        }
        if (prefixed(s.func, "weft__gentry"))
            continue;   /* Go hides runtime.goexit */
        weft__outf(o, "%s#\t0x%lx\t%s+0x%lx\t%s:%d\n", prefix, (unsigned long)pc, s.func,
                   (unsigned long)(pc - s.entry), s.file ? s.file : "?", s.line);
    }
}
