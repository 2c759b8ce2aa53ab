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
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "schedview.h"
#include "symtab.h"
#include "traceback.h"
#include "unwind.h"

#define TB_INNER 50     /* Go's tracebackInnerFrames */
#define TB_OUTER 50     /* Go's tracebackOuterFrames */
#define TB_LIMIT 100000 /* frames walked at most */
/* The place of the frames a record did not keep (never a return address:
 * no call instruction ends at address 0). */
#define TB_PCGAP 1
_Static_assert(TB_RECHEAD >= 2 * TB_INNER && TB_RECTAIL >= TB_OUTER + 2,
               "a record keeps more frames than a traceback prints, hidden ones included");

/* ---- where a goroutine's stack starts ------------------------------------------ */

/* Starts u at g's frames if its snapshot has a walk (saved context or
 * syscall), bounded by its stack.  False if not (running, dead, or never
 * ran). */
bool weft__gwalk_init(const weft__gview *g, weft__unwinder *u)
{
    if (g->walk == VGwalk_saved)
        weft__unwind_init_ctx(u, g->sp, g->stacklo, g->stackhi, g->copy);
    else if (g->walk == VGwalk_syscall)
        weft__unwind_init_regs(u, g->pc, g->sp, g->fp, g->stacklo, g->stackhi);
    else
        return false;
    return true;
}

int weft__gstackrecord(const weft__gview *g, uintptr_t *pcs, int max)
{
    int n = 0;
    weft__unwinder u;
    if (g->walk == VGwalk_fresh && max > 0) {
        pcs[n++] = g->pc + 1;   /* a "return address" inside its function */
    } else if (weft__gwalk_init(g, &u)) {
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

/* An open-addressing table of looked-up pcs, grown at half full.  pc 0 is
 * never looked up through it (it marks a free slot). */
typedef struct symslot {
    uintptr_t pc;
    bool ok;
    weft__sym s;
} symslot;

struct weft__symcache {
    symslot *slots;
    size_t cap, n;          /* cap: a power of two */
};

weft__symcache *weft__symcache_new(void)
{
    weft__symcache *c = calloc(1, sizeof *c);
    if (c) {
        c->cap = 1024;
        c->slots = calloc(c->cap, sizeof *c->slots);
        if (!c->slots) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

void weft__symcache_free(weft__symcache *c)
{
    if (c)
        free(c->slots);
    free(c);
}

static symslot *probe(symslot *slots, size_t cap, uintptr_t pc)
{
    size_t i = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
    while (slots[i].pc && slots[i].pc != pc)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static bool cachedsym(weft__symcache *c, uintptr_t pc, weft__sym *out)
{
    symslot *e = probe(c->slots, c->cap, pc);
    if (e->pc) {
        *out = e->s;
        return e->ok;
    }
    bool ok = weft__symbolize(pc, out);
    if (2 * (c->n + 1) > c->cap) {
        symslot *ns = calloc(2 * c->cap, sizeof *ns);
        if (!ns)
            return ok;      /* full: go on without remembering */
        for (size_t i = 0; i < c->cap; i++)
            if (c->slots[i].pc)
                *probe(ns, 2 * c->cap, c->slots[i].pc) = c->slots[i];
        free(c->slots);
        c->slots = ns;
        c->cap *= 2;
        e = probe(c->slots, c->cap, pc);
    }
    *e = (symslot){ .pc = pc, .ok = ok, .s = *out };
    c->n++;
    return ok;
}

static bool sym(uintptr_t pc, weft__sym *s, const weft__tbopts *opt)
{
    if (pc == 0) {
        memset(s, 0, sizeof *s);
        return false;
    }
    if (opt && opt->crash)
        return weft__symbolize_try(pc, s);
    if (opt && opt->cache)
        return cachedsym(opt->cache, pc, s);
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
    if (pc == TB_PCGAP) {
        weft__outf(o, "?(...)\n\t?\n");     /* a frame a record did not keep */
        return;
    }
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

/* Where the frames of a traceback come from: a live walk, or a record's
 * kept frames with TB_PCGAP standing in for each frame it did not keep. */
typedef struct frames {
    weft__unwinder u;       /* the walk, when pcs is NULL */
    const uintptr_t *pcs;   /* the record's frames */
    uint32_t i, n, nhead, gap;
} frames;

/* "created by f in goroutine N" (no "in" part when parentgoid is 0) and
 * where, for a goroutine created at gopc. */
static void createdby1(weft__out *o, uintptr_t gopc, int64_t parentgoid, const weft__tbopts *opt)
{
    weft__sym s;
    sym(gopc - 1, &s, opt);
    weft__outf(o, "created by %s", s.func ? s.func : "?");
    if (parentgoid)
        weft__outf(o, " in goroutine %lld", (long long)parentgoid);
    weft__outf(o, "\n");
    if (s.file)
        weft__outf(o, "\t%s:%d", s.file, s.line);
    else
        weft__outf(o, "\t%s", s.module ? s.module : "?");
    if (s.func)
        weft__outf(o, " +0x%lx\n", (unsigned long)(gopc - s.entry));
    else
        weft__outf(o, " pc=0x%lx\n", (unsigned long)gopc);
}

static void printframes(weft__out *o, const frames *start, bool exact, const weft__tbopts *opt);

/* One ancestor in Go's layout (printAncestorTraceback): its goroutine,
 * the stack that created the goroutine after it, "...additional frames
 * elided..." if that stack was cut at 50 frames, and where the ancestor
 * was created itself (without "in goroutine": the next ancestor says). */
static void printancestor(weft__out *o, const weft__ancestor *a, const weft__tbopts *opt)
{
    weft__outf(o, "[originating from goroutine %lld]:\n", (long long)a->goid);
    if (a->stk) {
        frames f = { .pcs = a->stk->pcs, .n = a->stk->n, .nhead = a->stk->n };
        printframes(o, &f, false, opt);
        if (a->stk->n >= WEFT_ANCESTOR_FRAMES)
            weft__outf(o, "...additional frames elided...\n");
    } else {
        weft__outf(o, "...additional frames elided...\n");
    }
    if (a->gopc)
        createdby1(o, a->gopc, 0, opt);
}

/* "created by", then the ancestors SCHEDDEBUG=tracebackancestors kept. */
static void createdby(weft__out *o, const weft__gview *g, const weft__tbopts *opt)
{
    if (g->ismain || !g->gopc)
        return;
    createdby1(o, g->gopc, g->parentgoid, opt);
    for (int i = 0; i < g->nancestors; i++) {
        weft__ancestor a = g->ancestors[i];    /* a copy: racy readers see one entry */
        printancestor(o, &a, opt);
    }
}

/* ---- frames ------------------------------------------------------------------------- */


static uintptr_t nextframe(frames *f)
{
    if (!f->pcs)
        return weft__unwind_next(&f->u);
    if (f->i == f->nhead && f->gap > 0) {
        f->gap--;
        return TB_PCGAP;
    }
    return f->i < f->n ? f->pcs[f->i++] : 0;
}

/* Whether any of the frames from start is the user's, not the runtime's;
 * a frame a record did not keep (TB_PCGAP) counts as the user's when
 * gaps is set (the text traceback prints it; the JSON one leaves it out). */
static bool hasuserframe(const frames *start, bool exact, const weft__tbopts *opt, bool gaps)
{
    frames f = *start;
    uintptr_t p = nextframe(&f);
    for (int i = 0; p && i < TB_LIMIT; i++, p = nextframe(&f)) {
        if (p == TB_PCGAP) {
            if (gaps)
                return true;
            continue;
        }
        weft__sym s;
        sym(i == 0 && exact ? p : p - 1, &s, opt);
        if (!runtimeframe(&s))
            return true;
    }
    return false;
}

/* Prints the frames, hiding runtime frames unless asked (or unless nothing
 * else would be printed), eliding the middle of very deep stacks as Go
 * does. */
static void printframes(weft__out *o, const frames *start, bool exact, const weft__tbopts *opt)
{
    /* Go prints every frame when none would be shown. */
    bool all = (opt && opt->runtime_frames) || !hasuserframe(start, exact, opt, true);
    uintptr_t tail[TB_OUTER];
    bool tailexact[TB_OUTER];
    int shown = 0, elided = 0;
    frames f = *start;
    uintptr_t p = nextframe(&f);
    for (int i = 0; p && i < TB_LIMIT; i++, p = nextframe(&f)) {
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
}

void weft__traceback(weft__out *o, const weft__gview *g, const weft__unwinder *start, bool exact,
                     const weft__tbopts *opt)
{
    frames f = { .u = *start };
    printframes(o, &f, exact, opt);
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

void weft__tracebackg(weft__out *o, G *gp, bool capture, const weft__tbopts *opt)
{
    weft__gview g;
    weft__view_g(gp, &g);
    weft__goroutineheader(o, &g);
    weft__unwinder u;
    if (g.walk == VGwalk_fresh) {
        weft__printframe(o, g.pc, true, opt);
        createdby(o, &g, opt);
        return;
    }
    if (weft__gwalk_init(&g, &u)) {
        weft__traceback(o, &g, &u, false, opt);
        return;
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

void weft__tracebackothers(weft__out *o, G *me, bool capture, const weft__tbopts *opt)
{
    for (G *gp = weft__view_allg(NULL); gp; gp = weft__view_allg(gp)) {
        if (gp == me)
            continue;
        if (o->fd < 0 && o->dropped)
            break;      /* caller memory full: the rest would only be counted */
        weft__gview g;
        weft__view_g(gp, &g);
        if (g.status == VGdead || g.status == VGidle)
            continue;
        weft__outf(o, "\n");
        weft__tracebackg(o, gp, capture, opt);
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

/* ---- goroutine records ------------------------------------------------------------ */

int weft__gprof_init(weft__gprof *p, uint32_t cap, uint32_t head, uint32_t tail)
{
    memset(p, 0, sizeof *p);
    p->cap = cap ? cap : 1;
    p->head = head;
    p->tail = tail;
    /* Every record will be written: have the kernel fill the pages in at
     * once (a fault per page costs several times as much, and the records
     * are written while the world runs but the collector holds its P). */
    p->recsmapped = (size_t)p->cap * sizeof *p->recs;
    p->recs = mmap(NULL, p->recsmapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p->recs == MAP_FAILED) {
        p->recs = NULL;
        return -ENOMEM;
    }
    /* Room for every record at its deepest, reserved but not committed:
     * records take it in turn from the start, so a typical stack of a few
     * frames commits a few words of it.  Where the kernel will not
     * reserve that much (strict overcommit), less: deep records that find
     * no room left then go without their frames. */
    for (size_t per = head + tail; per > 0; per = per > 8 ? per / 2 : 0) {
        size_t bytes = (size_t)p->cap * per * sizeof(uintptr_t);
        void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) {
            p->pcs = m;
            p->pcscap = (size_t)p->cap * per;
            p->pcsmapped = bytes;
#ifdef MADV_POPULATE_WRITE
            /* the part a typical stack uses, filled in as the records are */
            size_t typical = (size_t)p->cap * 8 * sizeof(uintptr_t);
            madvise(m, typical < bytes ? typical : bytes, MADV_POPULATE_WRITE);
#endif
            return 0;
        }
    }
    munmap(p->recs, p->recsmapped);
    p->recs = NULL;
    return -ENOMEM;
}

void weft__gprof_free(weft__gprof *p)
{
    if (p->recs)
        munmap(p->recs, p->recsmapped);
    if (p->pcs)
        munmap(p->pcs, p->pcsmapped);
    memset(p, 0, sizeof *p);
}

/* Frames a record's first walk keeps on the stack. */
#define SAVE_FEW 16

/* Copies bytes (whole words) of a record's extras into the frames' arena;
 * false if no room was left. */
static bool arena_put(weft__gprof *p, const void *src, size_t bytes, uint32_t *off)
{
    size_t words = bytes / sizeof(uintptr_t);
    AO_t at = AO_fetch_and_add(&p->npcs, words);    /* as nrecs in weft__gprof_save */
    if (at + words > p->pcscap)
        return false;
    memcpy(p->pcs + at, src, bytes);
    *off = (uint32_t)at;
    return true;
}

/* Called by the collector or by the scheduler about to run gp (g.c): no
 * lock, no allocation, a few hundred bytes of stack. */
void weft__gprof_save(weft__gprof *p, G *gp)
{
    /* fetch_and_add: a slot of our own.  No ordering: the end of the
     * profile stops the world, which publishes every record to the
     * reader. */
    AO_t i = AO_fetch_and_add1(&p->nrecs);
    if (i >= p->cap)
        return;     /* more goroutines than the stopped world counted (a plain thread spawned) */
    weft__gview g;
    weft__view_g(gp, &g);
    weft__grec *r = &p->recs[i];
    *r = (weft__grec){
        .goid = g.goid, .parentgoid = g.parentgoid, .waitsince = g.waitsince, .gopc = g.gopc,
        .statusname = g.statusname, .waitreason = g.waitreason, .status = (int8_t)g.status,
        .walk = (uint8_t)g.walk, .ismain = g.ismain, .locked = g.locked,
        .lockedm = g.lockedm,
    };
    if (g.name) {
        char name[TB_RECNAME] = { 0 };
        strncpy(name, g.name, sizeof name - 1);
        r->hasname = arena_put(p, name, sizeof name, &r->nameoff);
    }
    /* What it waits on, as words of the frames' arena. */
    weft__waitobj wo[TB_RECWAITS];
    int nw = weft__view_gwaits(gp, wo, TB_RECWAITS);
    uint32_t nkeep = nw < TB_RECWAITS ? (uint32_t)nw : TB_RECWAITS;
    if (nw > 0 && arena_put(p, wo, nkeep * sizeof *wo, &r->waitoff)) {
        r->nwait = (uint16_t)nkeep;
        r->nwaitall = (uint16_t)(nw < UINT16_MAX ? nw : UINT16_MAX);
    }
    /* Its ancestors, copied: the G's array is rewritten when the G is
     * reused, which may happen before the records are read. */
    if (g.nancestors > 0 && arena_put(p, g.ancestors, (size_t)g.nancestors * sizeof *g.ancestors, &r->ancoff))
        r->nanc = (uint32_t)g.nancestors;
    weft__unwinder u;
    uintptr_t few[SAVE_FEW];
    uint32_t total = 0, limit = p->tail ? TB_LIMIT : p->head;
    if (g.walk == VGwalk_fresh) {
        few[total++] = g.pc;
    } else if (weft__gwalk_init(&g, &u)) {
        /* Most stacks are a few frames: one walk into few.  A deeper one
         * is counted to the end, then walked again into exactly the room
         * it needs (gp's stack holds still meanwhile). */
        weft__unwinder c = u;
        total = (uint32_t)weft__unwind_pcs(&c, few, SAVE_FEW);
        if (total == SAVE_FEW)
            while (total < limit && weft__unwind_next(&c))
                total++;
    } else {
        return;     /* running (a plain thread's spawn raced the stop) or gone: no frames */
    }
    uint32_t keep = total <= p->head + p->tail ? total : p->head + p->tail;
    AO_t off = AO_fetch_and_add(&p->npcs, keep);    /* as nrecs */
    if (off + keep > p->pcscap) {
        r->lost = total > 0;
        return;
    }
    uintptr_t *dst = p->pcs + off;
    uint32_t nhead = keep < total ? p->head : keep, n = 0;
    if (total <= SAVE_FEW) {
        memcpy(dst, few, total * sizeof *few);
        n = total;
    } else {
        while (n < nhead && (dst[n] = weft__unwind_next(&u)) != 0)
            n++;
        if (keep < total) {
            for (uint32_t k = 0; k < total - keep && weft__unwind_next(&u); k++)
                ;
            while (n < keep && (dst[n] = weft__unwind_next(&u)) != 0)
                n++;
        }
    }
    r->off = (uint32_t)off;
    r->n = n;
    r->nhead = nhead < n ? nhead : n;
    r->gap = total - keep;
}

_Static_assert(sizeof(weft__ancestor) % sizeof(uintptr_t) == 0, "ancestors are stored as words");

weft__ancestor weft__grec_ancestor(const weft__gprof *p, const weft__grec *r, uint32_t i)
{
    weft__ancestor a;
    memcpy(&a, p->pcs + r->ancoff + i * (sizeof a / sizeof(uintptr_t)), sizeof a);
    return a;
}

weft__waitobj weft__grec_waitobj(const weft__gprof *p, const weft__grec *r, uint32_t i)
{
    weft__waitobj w;
    memcpy(&w, p->pcs + r->waitoff + i * (sizeof w / sizeof(uintptr_t)), sizeof w);
    return w;
}

int weft__grec_stackrecord(const weft__gprof *p, const weft__grec *r, uintptr_t *pcs, int max)
{
    int n = 0;
    const uintptr_t *f = p->pcs + r->off;
    if (r->walk == VGwalk_fresh) {
        if (r->n && max > 0)
            pcs[n++] = f[0] + 1;    /* as weft__gstackrecord */
    } else {
        /* above the switch, as weft__gstackrecord */
        for (uint32_t i = r->walk == VGwalk_saved ? 1 : 0; i < r->n && n < max; i++)
            pcs[n++] = f[i];
    }
    if (n < max)
        pcs[n] = 0;
    return n;
}

void weft__tracebackrec(weft__out *o, const weft__gprof *p, const weft__grec *r, const weft__tbopts *opt)
{
    weft__gview g = {
        .goid = r->goid, .status = r->status, .statusname = r->statusname, .waitreason = r->waitreason,
        .waitsince = r->waitsince, .gopc = r->gopc, .parentgoid = r->parentgoid, .ismain = r->ismain,
        .locked = r->locked, .walk = (weft__gwalk)r->walk,
    };
    weft__goroutineheader(o, &g);
    if (r->lost) {
        weft__outf(o, "...additional frames elided...\n");
    } else if (r->walk == VGwalk_fresh && r->n) {
        weft__printframe(o, p->pcs[r->off], true, opt);
    } else if (r->walk == VGwalk_saved || r->walk == VGwalk_syscall) {
        frames f = { .pcs = p->pcs + r->off, .n = r->n, .nhead = r->nhead, .gap = r->gap };
        printframes(o, &f, false, opt);
    } else {
        weft__outf(o, "\tgoroutine running on other thread; stack unavailable\n");
    }
    createdby(o, &g, opt);
    if (!g.ismain && g.gopc)
        for (uint32_t i = 0; i < r->nanc; i++) {
            weft__ancestor a = weft__grec_ancestor(p, r, i);
            printancestor(o, &a, opt);
        }
}

/* ---- goroutines as JSON (docs/formats.md, the JSON goroutine dump) ------------------ */

static void jstr(weft__out *o, const char *s)
{
    if (!s) {
        weft__outf(o, "null");
        return;
    }
    static const char hex[] = "0123456789abcdef";
    weft__out_write(o, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        weft__out_write(o, run, (size_t)(s - run));
        run = s + 1;
        if (c == '"' || c == '\\') {
            char e[2] = { '\\', (char)c };
            weft__out_write(o, e, 2);
        } else {
            char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            weft__out_write(o, e, 6);
        }
    }
    weft__out_write(o, run, (size_t)(s - run));
    weft__out_write(o, "\"", 1);
}

/* {"function":..,"file":..,"line":..,"pc":"0x.."}: pc as kept (a return
 * address but for an exact first pc), looked up as printframe does. */
static void jframe(weft__out *o, uintptr_t pc, bool exact, const weft__tbopts *opt)
{
    weft__sym s;
    sym(exact ? pc : pc - 1, &s, opt);
    weft__outf(o, "{\"function\":");
    jstr(o, s.func);
    weft__outf(o, ",\"file\":");
    jstr(o, s.file ? s.file : s.module);
    weft__outf(o, ",\"line\":%d,\"pc\":\"0x%lx\"}", s.line, (unsigned long)pc);
}

/* The frames a traceback would print (printframes' choice of frames, but
 * all of them: a tool wants no middle left out), as a JSON array. */
static void jframes(weft__out *o, const frames *start, bool exact, const weft__tbopts *opt)
{
    bool all = (opt && opt->runtime_frames) || !hasuserframe(start, exact, opt, false);
    weft__outf(o, "[");
    bool first = true;
    frames f = *start;
    uintptr_t p = nextframe(&f);
    for (int i = 0; p && i < TB_LIMIT; i++, p = nextframe(&f)) {
        bool ex = i == 0 && exact;
        if (p == TB_PCGAP)
            continue;   /* counted in frames_elided */
        if (!all) {
            weft__sym s;
            sym(ex ? p : p - 1, &s, opt);
            if (runtimeframe(&s))
                continue;
        }
        if (!first)
            weft__outf(o, ",");
        first = false;
        jframe(o, p, ex, opt);
    }
    weft__outf(o, "]");
}

/* "created_by":{...} for a goroutine made at gopc by goid (0: a plain
 * thread, or unknown: no "goid"). */
static void jcreatedby(weft__out *o, uintptr_t gopc, int64_t goid, const weft__tbopts *opt)
{
    weft__outf(o, ",\"created_by\":");
    if (!gopc) {
        weft__outf(o, "null");
        return;
    }
    weft__outf(o, "{");
    if (goid)
        weft__outf(o, "\"goid\":%lld,", (long long)goid);
    weft__outf(o, "\"frame\":");
    jframe(o, gopc, false, opt);
    weft__outf(o, "}");
}

static void jancestor(weft__out *o, const weft__ancestor *a, const weft__tbopts *opt)
{
    weft__outf(o, "{\"goid\":%lld,\"frames\":", (long long)a->goid);
    if (a->stk) {
        frames f = { .pcs = a->stk->pcs, .n = a->stk->n, .nhead = a->stk->n };
        jframes(o, &f, false, opt);
    } else {
        weft__outf(o, "[]");
    }
    weft__outf(o, ",\"frames_truncated\":%s", !a->stk || a->stk->n >= WEFT_ANCESTOR_FRAMES ? "true" : "false");
    jcreatedby(o, a->gopc, 0, opt);
    weft__outf(o, "}");
}

static const char *const waitkinds[] = {
    [VWAIT_OTHER] = "sema", [VWAIT_CHAN] = "chan", [VWAIT_MUTEX] = "mutex",
    [VWAIT_RWMUTEX] = "rwmutex", [VWAIT_WAITGROUP] = "waitgroup", [VWAIT_COND] = "cond",
    [VWAIT_FD] = "fd",
};

const char *weft__waitkind(uint32_t kind)
{
    return kind < sizeof waitkinds / sizeof *waitkinds && waitkinds[kind] ? waitkinds[kind] : "sema";
}

static void jwaitobj(weft__out *o, const weft__waitobj *w, int nrecv, int nsend)
{
    weft__outf(o, "{\"kind\":\"%s\",\"address\":\"0x%lx\"", weft__waitkind(w->kind), (unsigned long)w->addr);
    if (w->kind == VWAIT_CHAN) {
        weft__outf(o, ",\"direction\":%s,\"len\":%llu,\"cap\":%llu,\"closed\":%s,\"receivers\":%d,\"senders\":%d",
                   w->dir == VDIR_RECV ? "\"receive\"" : w->dir == VDIR_SEND ? "\"send\"" : "null",
                   (unsigned long long)w->len, (unsigned long long)w->cap, w->closed ? "true" : "false", nrecv,
                   nsend);
    }
    weft__outf(o, "}");
}

/* The fields every goroutine object starts with. */
static void jheader(weft__out *o, const weft__gview *g, int64_t now)
{
    weft__outf(o, "{\"goid\":%lld,\"status\":\"%s\",\"wait_reason\":", (long long)g->goid, g->statusname);
    jstr(o, g->status == VGwaiting && g->waitreason[0] ? g->waitreason : NULL);
    weft__outf(o, ",\"wait_ns\":");
    if ((g->status == VGwaiting || g->status == VGsyscall) && g->waitsince > 0 && now >= g->waitsince)
        weft__outf(o, "%lld", (long long)(now - g->waitsince));
    else
        weft__outf(o, "null");
    weft__outf(o, ",\"locked_thread\":");
    if (g->locked && g->lockedm >= 0)
        weft__outf(o, "%lld", (long long)g->lockedm);
    else
        weft__outf(o, "null");
    weft__outf(o, ",\"name\":");
    jstr(o, g->name);
}

void weft__jsonself(weft__out *o, const weft__tbopts *opt)
{
    weft__selfview self;
    weft__view_self(&self);
    if (!self.g)
        return;
    weft__gview g;
    weft__view_g(self.g, &g);
    jheader(o, &g, weft__view_coarsetime());
    weft__outf(o, ",\"frames\":");
    frames f = { 0 };
    weft__unwind_init_self(&f.u, 2, self.stacklo, self.stackhi);
    jframes(o, &f, false, opt);
    weft__outf(o, ",\"frames_elided\":0");
    if (g.ismain)
        weft__outf(o, ",\"created_by\":null");
    else
        jcreatedby(o, g.gopc, g.parentgoid, opt);
    weft__outf(o, ",\"ancestors\":[");
    for (int i = 0; i < g.nancestors; i++) {
        weft__ancestor a = g.ancestors[i];
        if (i)
            weft__outf(o, ",");
        jancestor(o, &a, opt);
    }
    weft__outf(o, "],\"waiting_on\":[]}");
}

void weft__jsonrec(weft__out *o, const weft__gprof *p, const weft__grec *r, int64_t now, const weft__tbopts *opt,
                   weft__waitcountf count, void *arg)
{
    weft__gview g = {
        .goid = r->goid, .status = r->status, .statusname = r->statusname, .waitreason = r->waitreason,
        .waitsince = r->waitsince, .locked = r->locked, .lockedm = r->lockedm,
        .name = r->hasname ? (const char *)(p->pcs + r->nameoff) : NULL,
    };
    jheader(o, &g, now);
    weft__outf(o, ",\"frames\":");
    uint32_t elided = 0;
    if (r->lost) {
        weft__outf(o, "[]");
    } else if (r->walk == VGwalk_fresh && r->n) {
        weft__outf(o, "[");
        jframe(o, p->pcs[r->off], true, opt);
        weft__outf(o, "]");
    } else if (r->walk == VGwalk_saved || r->walk == VGwalk_syscall) {
        frames f = { .pcs = p->pcs + r->off, .n = r->n, .nhead = r->nhead, .gap = r->gap };
        jframes(o, &f, false, opt);
        elided = r->gap;
    } else {
        weft__outf(o, "null");     /* running on another thread: not captured */
    }
    weft__outf(o, ",\"frames_elided\":%u", elided);
    if (r->ismain)
        weft__outf(o, ",\"created_by\":null");
    else
        jcreatedby(o, r->gopc, r->parentgoid, opt);
    weft__outf(o, ",\"ancestors\":[");
    for (uint32_t i = 0; i < r->nanc && !r->ismain; i++) {
        weft__ancestor a = weft__grec_ancestor(p, r, i);
        if (i)
            weft__outf(o, ",");
        jancestor(o, &a, opt);
    }
    weft__outf(o, "],\"waiting_on\":[");
    for (uint32_t i = 0; i < r->nwait; i++) {
        weft__waitobj w = weft__grec_waitobj(p, r, i);
        int nrecv = 0, nsend = 0;
        if (w.kind == VWAIT_CHAN && count)
            count(arg, w.addr, &nrecv, &nsend);
        if (i)
            weft__outf(o, ",");
        jwaitobj(o, &w, nrecv, nsend);
    }
    weft__outf(o, "]");
    if (r->nwaitall > r->nwait)
        weft__outf(o, ",\"waiting_on_more\":%u", (unsigned)(r->nwaitall - r->nwait));
    weft__outf(o, "}");
}
