/*
 * traceback.c — goroutine stacks in Go's traceback format (SPEC §5,
 * go-formats.md §2):
 *
 *   goroutine 7 [chan receive, 3 minutes]:
 *   consumer(...)
 *   	/src/app.c:41 +0x2b
 *   main_fn(...)
 *   	/src/app.c:60 +0x51
 *   created by main_fn in goroutine 1
 *   	/src/app.c:57 +0x3c
 *
 * Stacks are walked by frame pointers, which weft and its users keep
 * (-fno-omit-frame-pointer): a frame record is {saved fp, return address}
 * on both x86-64 and AArch64.  A switched-out goroutine's chain starts in
 * the context weft__swapctx saved; one in a syscall at the frame that
 * called weft_syscall_enter; a running one at the signal context its M is
 * interrupted in.  Every frame pointer must lie inside the stack being
 * walked and climb it, so a walk of a stack that changes under it (dumps
 * do not stop the world) can return nonsense frames but never fault.
 *
 * As Go's level-1 traceback hides runtime.* frames, weft's internal frames
 * (its static helpers and weft__ functions) are hidden; the public weft_
 * calls a goroutine is blocked in (weft_chan_recv, weft_sleep, ...) are
 * shown, as Go shows runtime.Gosched.  A runtime bug (weft__throw) shows
 * everything.
 */
#include <string.h>

#include "symtab.h"
#include "traceback.h"
#include "unwind.h"

#define TB_INNER 50     /* Go's tracebackInnerFrames */
#define TB_OUTER 50     /* Go's tracebackOuterFrames */
#define TB_LIMIT 100000 /* frames walked at most */

/* ---- where a goroutine's stack starts ------------------------------------------ */

WEFT_NO_ASAN bool weft__gframe(G *gp, uintptr_t *pc, uintptr_t *fp, bool *fresh)
{
    *fresh = false;
    /* a racy snapshot (dumps do not stop the world): every read below is
     * bounds-checked, so a stale status costs a wrong frame, never a fault */
    AO_t st = AO_load(&gp->atomicstatus);
    if (st == Gsyscall) {
        *pc = gp->syscallpc;
        *fp = gp->syscallfp;
        return *pc != 0;
    }
    if (st != Grunnable && st != Gwaiting)
        return false;
    uintptr_t sp = (uintptr_t)gp->sp;
    if (sp < gp->stacklo || sp + 64 > gp->stackhi)
        return false;
    weft__ctx_frame((void *)sp, pc, fp);
    if (*fp == 0)
        *fresh = true;  /* weft__ctx_init's frame: it has never run */
    return true;
}

WEFT_NO_ASAN int weft__gstackrecord(G *gp, uintptr_t *pcs, int max)
{
    int n = 0;
    if (gp == weft__getg()) {
        weft__unwinder u;
        weft__unwind_init_self(&u, 1, gp->stacklo, gp->stackhi);    /* from our caller */
        n = weft__unwind_pcs(&u, pcs, max);
    } else {
        uintptr_t pc, fp;
        bool fresh;
        if (weft__gframe(gp, &pc, &fp, &fresh)) {
            if (fresh) {
                pcs[n++] = (uintptr_t)gp->fn + 1;   /* a "return address" inside fn */
            } else if (AO_load(&gp->atomicstatus) == Gsyscall) {
                n = weft__unwind(pc, fp, gp->stacklo, gp->stackhi, pcs, max);
            } else {
                /* Start above the switch itself: the scheduler switches
                 * from more than one place, and records of goroutines
                 * blocked the same way must compare equal. */
                weft__unwinder u;
                weft__unwind_init(&u, pc, fp, gp->stacklo, gp->stackhi);
                weft__unwind_next(&u);
                n = weft__unwind_pcs(&u, pcs, max);
            }
        }
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

static const char *gstatusstr(AO_t st)
{
    static const char *const names[] = { "idle", "runnable", "running", "syscall", "waiting",
                                         "moribund", "dead" };
    return st < sizeof names / sizeof names[0] ? names[st] : "???";
}

void weft__goroutineheader(weft__out *o, G *gp)
{
    AO_t st = AO_load(&gp->atomicstatus);
    const char *status = gstatusstr(st);
    uint8_t wr = gp->waitreason;
    if (st == Gwaiting && wr != waitReasonZero)
        status = weft__waitreason_str(wr);
    weft__outf(o, "goroutine %lld [%s", (long long)gp->goid, status);
    if (st == Gwaiting || st == Gsyscall) {
        int64_t since = gp->waitsince;
        int64_t now = (int64_t)AO_load(&weft__coarsetime);     /* a clock hint */
        if (since > 0 && now > since && (now - since) / 60000000000LL >= 1)
            weft__outf(o, ", %lld minutes", (long long)((now - since) / 60000000000LL));
    }
    if (gp->lockedm)
        weft__outf(o, ", locked to thread");
    weft__outf(o, "]:\n");
}

static void createdby(weft__out *o, G *gp, const weft__tbopts *opt)
{
    if (gp->ismain || !gp->gopc)
        return;
    weft__sym s;
    sym(gp->gopc - 1, &s, opt);
    weft__outf(o, "created by %s", s.func ? s.func : "?");
    if (gp->parentgoid)
        weft__outf(o, " in goroutine %lld", (long long)gp->parentgoid);
    weft__outf(o, "\n");
    if (s.file)
        weft__outf(o, "\t%s:%d", s.file, s.line);
    else
        weft__outf(o, "\t%s", s.module ? s.module : "?");
    if (s.func)
        weft__outf(o, " +0x%lx\n", (unsigned long)(gp->gopc - s.entry));
    else
        weft__outf(o, " pc=0x%lx\n", (unsigned long)gp->gopc);
}

/* ---- frames ------------------------------------------------------------------------- */

/* Prints frames [from, ...) of a chain, hiding runtime frames unless asked
 * (or unless nothing else would be printed), eliding the middle of very
 * deep stacks as Go does. */
void weft__traceback(weft__out *o, G *gp, const weft__unwinder *start, bool exact,
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
    if (gp)
        createdby(o, gp, opt);
}

WEFT_NO_ASAN void weft__traceback_self(weft__out *o, const weft__tbopts *opt)
{
    G *gp = weft__getg();
    bool user = gp && !gp->issystem;
    if (user)
        weft__goroutineheader(o, gp);
    else
        weft__outf(o, "runtime stack:\n");
    /* From the caller of our caller: skip us and the function asking.  A
     * plain thread (no G) has no known bounds: the walker guesses them. */
    weft__unwinder u;
    weft__unwind_init_self(&u, 2, gp ? gp->stacklo : 0, gp ? gp->stackhi : 0);
    weft__traceback(o, user ? gp : NULL, &u, false, opt);
}

void weft__tracebackothers(weft__out *o, G *me, bool capture, const weft__tbopts *opt)
{
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        /* load-acquire on the head pairs with allgadd's store-release; each
         * G's fields were written before it was published. */
        if (gp == me || gp->issystem)
            continue;
        AO_t st = AO_load(&gp->atomicstatus);
        if (st == Gdead || st == Gidle)
            continue;
        weft__outf(o, "\n");
        weft__goroutineheader(o, gp);
        uintptr_t pc, fp;
        bool fresh;
        if (weft__gframe(gp, &pc, &fp, &fresh)) {
            if (fresh) {
                weft__printframe(o, (uintptr_t)gp->fn, true, opt);
                createdby(o, gp, opt);
            } else {
                weft__unwinder u;
                weft__unwind_init(&u, pc, fp, gp->stacklo, gp->stackhi);
                weft__traceback(o, gp, &u, false, opt);
            }
            continue;
        }
        M *m = gp->m;
        uintptr_t pcs[64];
        int64_t goid = 0;
        int n = -1;
        if (capture && m && st == Grunning)
            n = weft__sigcapture(m, pcs, 64, &goid, 100 * 1000 * 1000, opt && opt->crash);
        if (n > 0 && goid == gp->goid) {
            for (int i = 0; i < n; i++)
                weft__printframe(o, pcs[i], i == 0, opt);
            createdby(o, gp, opt);
        } else {
            weft__outf(o, "\tgoroutine running on other thread; stack unavailable\n");
            createdby(o, gp, opt);
        }
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
