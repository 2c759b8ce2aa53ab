/*
 * stackprof.c — goroutine and thread-creation stacks for programs:
 * weft_stack (runtime.Stack), weft_goroutine_profile and
 * weft_threadcreate_profile (Go's (n, ok) calls) and weft_profile_write
 * (pprof.Lookup(name).WriteTo in its three forms; docs/formats.md,
 * goroutine and threadcreate profiles).
 *
 * Every goroutine's stack (weft_stack(.., true), the goroutine profiles in
 * every form) is taken the way Go 1.19 takes goroutine profiles
 * (diag/schedview.h, "goroutine profiles"): the world stops twice, for as
 * long as it takes to mark a snapshot and to end it, and each goroutine's
 * stack is recorded as raw pcs while the world runs — by us, or by the
 * scheduler just before it runs that goroutine again — then symbolized and
 * formatted with nothing stopped.  So a dump of 100,000 goroutines stops
 * the program for well under a millisecond, twice, instead of for as long
 * as formatting them all takes (seconds); the collector yields its P every
 * half millisecond, so it does not hold up the goroutines queued behind it
 * either.  Only when there is no memory for the records does a dump read
 * the stacks with the world stopped for the whole copy, as it used to.
 *
 * A dump of every goroutine that would pass its limit (the caller's
 * buffer, or Go's 64 MiB for goroutine?debug=2) ends with the last
 * goroutine that fits whole and a line "...N additional goroutines
 * omitted...".
 *
 * Thread-creation stacks are constant once an M exists and are read under
 * the scheduler lock, which freezes the set of Ms.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "weft.h"

#include "pprof.h"
#include "schedview.h"
#include "symtab.h"
#include "traceback.h"

struct weft__dumpstats weft__dumpstats;
size_t weft__dumplimit = 64u << 20;     /* Go's writeGoroutineStacks stops at 64 MiB */
void (*weft__gprof_testhook)(void);

/* How long a collector or formatter runs on its P before it lets the
 * goroutines queued behind it run. */
#define YIELD_NS (500 * 1000)
/* The text of one goroutine is formatted here before it is known to fit;
 * a traceback prints at most 100 frames and a "created by". */
#define BLOCK (64u << 10)
/* Room kept for the line that says how many goroutines were left out. */
#define OMITTED_MAX 64

static int clampint(size_t n) { return n > INT_MAX ? INT_MAX : (int)n; }

/* Yields now and then (a goroutine only: a plain thread holds no P). */
static void breathe(bool g, int64_t *last)
{
    int64_t now = weft__nanotime();
    if (g && now - *last > YIELD_NS) {
        weft_yield();
        *last = weft__nanotime();
    }
}

/* ---- taking every goroutine's stack ---------------------------------------------- */

/* One collection at a time (g.c keeps the state of one).  A weft_mutex: its
 * holder stops the world and yields. */
static weft_mutex gproflock = WEFT_MUTEX_INIT;

/* weft__dumpstats' words are measurements read by benchmarks after the
 * dump returns: written under gproflock, loaded and stored plainly (no
 * ordering: a reader that races a dump sees an old or a new figure). */
static void stopped_for(int64_t since)
{
    int64_t d = weft__nanotime() - since;
    if (d > (int64_t)AO_load(&weft__dumpstats.stw_max_ns))
        AO_store(&weft__dumpstats.stw_max_ns, (AO_t)d);
}

/* Takes a goroutine profile of every goroutine but me (Go 1.19's
 * concurrent collection, schedview.h) into p, keeping head/tail frames of
 * each.  Returns the goroutines alive when the world stopped, me included.
 * When that is more than max (max >= 0: the caller's room), nothing is
 * taken and p is freed; so it is on -ENOMEM.  -ESRCH: the runtime began
 * exiting; p is then left as it is (an M may still be writing into it;
 * the process is ending). */
static int64_t collect(weft__gprof *p, G *me, uint32_t head, uint32_t tail, int64_t max)
{
    int64_t t0 = weft__nanotime(), n;
    AO_store(&weft__dumpstats.stw_max_ns, 0);
    weft_mutex_lock(&gproflock);
    for (int64_t want = weft__view_gcount();;) {
        int64_t cap = want + want / 8 + 64;
        if (max >= 0 && cap > max)
            cap = max;
        if (cap > INT32_MAX || weft__gprof_init(p, (uint32_t)cap, head, tail) < 0) {
            n = -ENOMEM;
            break;
        }
        int64_t s = weft__nanotime();
        if (!weft__stoptheworld()) {
            weft__gprof_free(p);
            n = -ESRCH;
            break;
        }
        n = weft__view_gcount();
        if ((max >= 0 && n > max) || n > cap + (me != NULL)) {
            weft__starttheworld();
            stopped_for(s);
            weft__gprof_free(p);
            if (max >= 0 && n > max)
                break;
            want = n;       /* more than we guessed: again, with room */
            continue;
        }
        G *gp = weft__view_gprof_start(p, me);
        weft__starttheworld();
        stopped_for(s);
        if (weft__gprof_testhook)
            weft__gprof_testhook();
        int64_t last = weft__nanotime();
        for (unsigned k = 1; gp; k++) {
            gp = weft__view_gprof_visit(gp);
            if (k % 64 == 0)
                breathe(me != NULL, &last);
        }
        s = weft__nanotime();
        bool stopped = weft__stoptheworld();
        weft__view_gprof_end();
        if (!stopped) {
            n = -ESRCH;
            break;
        }
        weft__starttheworld();
        stopped_for(s);
        break;
    }
    AO_store(&weft__dumpstats.collect_ns, (AO_t)(weft__nanotime() - t0));
    weft_mutex_unlock(&gproflock);
    return n;
}

static int newestfirst(const void *a, const void *b)
{
    int64_t x = ((const weft__grec *)a)->goid, y = ((const weft__grec *)b)->goid;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A goroutine's text that overflowed its block (a hundred frames of very
 * long names) ends at a whole line, then says so, as Go does when it
 * stops printing a stack. */
static void elide(weft__out *b)
{
    static const char more[] = "...additional frames elided...\n";
    size_t n = b->n - (sizeof more - 1);
    while (n > 0 && b->buf[n - 1] != '\n')
        n--;
    memcpy(b->buf + n, more, sizeof more - 1);
    b->n = n + sizeof more - 1;
    b->dropped = 0;
}

/* Every record's traceback, newest goroutine first, each after a blank
 * line (as tracebackothers), into o while *total (the bytes o has taken)
 * stays within limit: the goroutine that would not fit whole, and every
 * one after it, are left out and counted on one last line. */
static void writerecs(weft__out *o, size_t *total, size_t limit, weft__gprof *p, const weft__tbopts *opt,
                      char *block, bool g)
{
    uint32_t n = weft__gprof_len(p);
    qsort(p->recs, n, sizeof *p->recs, newestfirst);
    int64_t last = weft__nanotime();
    for (uint32_t i = 0; i < n; i++) {
        weft__out b;
        weft__out_mem(&b, block, BLOCK);
        weft__outf(&b, "\n");
        weft__tracebackrec(&b, p, &p->recs[i], opt);
        if (b.dropped)
            elide(&b);
        if (*total + b.n + (i + 1 < n ? OMITTED_MAX : 0) > limit) {
            char line[OMITTED_MAX];
            weft__out_mem(&b, line, sizeof line);
            weft__outf(&b, "\n...%u additional goroutines omitted...\n", n - i);
            size_t l = *total + b.n <= limit ? b.n : *total < limit ? limit - *total : 0;
            weft__out_write(o, line, l);
            *total += l;
            return;
        }
        weft__out_write(o, block, b.n);
        *total += b.n;
        if (i % 32 == 31)
            breathe(g, &last);
    }
}

/* The fallback when there is no memory for records: every goroutine read
 * with the world stopped for as long as the copy takes. */
static void tracebacks_stopped(weft__out *o, G *me, const weft__tbopts *opt)
{
    bool stopped = weft__stoptheworld();
    weft__tracebackothers(o, me, false, opt);
    if (stopped)
        weft__starttheworld();
}

int weft_stack(char *buf, size_t len, bool all)
{
    if (len == 0)
        return 0;
    if (!buf)
        return -EINVAL;
    weft__unwind_prepare();     /* objects dlopened since the last dump */
    weft__selfview self;
    weft__view_self(&self);
    bool user = self.g != NULL;
    if (!all && !user)
        return -ESRCH;
    weft__out o;
    weft__out_mem(&o, buf, len);
    weft__tbopts opt = { 0 };
    if (!all || !weft__view_running()) {
        if (user)
            weft__traceback_self(&o, &opt);
        return clampint(o.n);
    }
    char *block = malloc(BLOCK);
    weft__gprof p;
    int64_t n = block ? collect(&p, self.g, TB_RECHEAD, TB_RECTAIL, -1) : -ENOMEM;
    int64_t t0 = weft__nanotime();
    opt.cache = weft__symcache_new();
    if (user)
        weft__traceback_self(&o, &opt);     /* here: it starts at our caller */
    if (n >= 0) {
        size_t total = o.n;
        writerecs(&o, &total, len, &p, &opt, block, user);
        weft__gprof_free(&p);
    } else if (n == -ENOMEM) {
        tracebacks_stopped(&o, self.g, &opt);
    }
    weft__symcache_free(opt.cache);
    free(block);
    AO_store(&weft__dumpstats.format_ns, (AO_t)(weft__nanotime() - t0));
    return clampint(o.n);
}

int weft_goroutine_profile(weft_stack_record *p, int len, bool *ok)
{
    if (!ok || len < 0 || (len > 0 && !p))
        return -EINVAL;
    /* Before boot (or after shutdown) there is nothing to record: all
     * 0 records fit. */
    *ok = !weft__view_running();
    if (*ok)
        return 0;
    if (len == 0)
        return (int)weft__view_gcount();    /* Go: an estimate, without a stop */
    weft__selfview self;
    weft__view_self(&self);
    weft__gprof g;
    int64_t n = collect(&g, self.g, TB_MAXPCS + 1, 0, len);
    if (n < 0 && n != -ENOMEM)
        return 0;       /* the runtime is exiting */
    if (n > len)
        return clampint((size_t)n);
    int i = 0;
    if (self.g) {
        /* from our caller, as Go's saveg(getcallerpc(), getcallersp()) */
        memset(p[0].stack, 0, sizeof p[0].stack);
        weft__unwinder u;
        weft__unwind_init_self(&u, 1, self.stacklo, self.stackhi);
        weft__unwind_pcs(&u, p[0].stack, TB_MAXPCS);
        i = 1;
    }
    if (n == -ENOMEM) {
        /* No memory for records: with the world stopped, straight into p. */
        bool stopped = weft__stoptheworld();
        weft__gview v;
        int others = 0;
        for (G *gp = weft__view_allg(NULL); gp; gp = weft__view_allg(gp)) {
            weft__view_g(gp, &v);
            others += gp != self.g && v.status != VGdead && v.status != VGidle;
        }
        if (i + others <= len) {
            for (G *gp = weft__view_allg(NULL); gp && i < len; gp = weft__view_allg(gp)) {
                weft__view_g(gp, &v);
                if (gp != self.g && v.status != VGdead && v.status != VGidle) {
                    memset(p[i].stack, 0, sizeof p[i].stack);
                    weft__gstackrecord(&v, p[i++].stack, TB_MAXPCS);
                }
            }
            *ok = true;
        }
        if (stopped)
            weft__starttheworld();
        return *ok ? i : i + others;
    }
    for (uint32_t k = 0; k < weft__gprof_len(&g) && i < len; k++) {
        memset(p[i].stack, 0, sizeof p[i].stack);   /* records compare whole (debug=1) */
        weft__grec_stackrecord(&g, &g.recs[k], p[i++].stack, TB_MAXPCS);
    }
    weft__gprof_free(&g);
    *ok = true;
    return i;
}

int weft_threadcreate_profile(weft_stack_record *p, int len, bool *ok)
{
    if (!ok || len < 0 || (len > 0 && !p))
        return -EINVAL;
    /* Before boot (or after shutdown) there is nothing to record: all
     * 0 records fit. */
    *ok = !weft__view_running();
    if (*ok)
        return 0;
    weft__view_lock();
    weft__mview mv;
    int n = 0;
    for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m)) {
        weft__view_m(m, &mv);
        n += !mv.exited;
    }
    if (n <= len) {
        int i = 0;
        for (M *m = weft__view_allm(NULL); m; m = weft__view_allm(m)) {
            weft__view_m(m, &mv);
            if (mv.exited)
                continue;
            memset(p[i].stack, 0, sizeof p[i].stack);
            memcpy(p[i].stack, mv.createstack, (size_t)mv.ncreatestack * sizeof(uintptr_t));
            i++;
        }
        *ok = true;
    }
    weft__view_unlock();
    return n;
}

/* ---- weft_profile_write ------------------------------------------------------------ */

typedef int (*recordsf)(weft_stack_record *p, int len, bool *ok);

/* All records, retrying as Go's callers do while the count changes. */
static weft_stack_record *records(recordsf f, int *np)
{
    bool ok = false;
    int n = f(NULL, 0, &ok);
    for (int tries = 0; tries < 100 && n >= 0; tries++) {
        int len = n + 10;
        weft_stack_record *p = malloc((size_t)len * sizeof *p);
        if (!p)
            return NULL;
        n = f(p, len, &ok);
        if (ok) {
            *np = n;
            return p;
        }
        free(p);
    }
    return NULL;
}

static int depth(const weft_stack_record *r)
{
    int d = 0;
    while (d < TB_MAXPCS && r->stack[d])
        d++;
    return d;
}

static int cmpstack(const void *a, const void *b)
{
    return memcmp(((const weft_stack_record *)a)->stack, ((const weft_stack_record *)b)->stack,
                  sizeof ((const weft_stack_record *)a)->stack);
}

typedef struct { const weft_stack_record *r; int count; } group;

static int cmpgroup(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;     /* by count, descending */
    return cmpstack(x->r, y->r);
}

/* Identical stacks counted together, most frequent first. */
static group *groups(weft_stack_record *p, int n, int *ngroups)
{
    qsort(p, (size_t)n, sizeof *p, cmpstack);
    group *g = malloc((size_t)(n ? n : 1) * sizeof *g);
    if (!g)
        return NULL;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (k > 0 && cmpstack(g[k - 1].r, &p[i]) == 0) {
            g[k - 1].count++;
        } else {
            g[k].r = &p[i];
            g[k].count = 1;
            k++;
        }
    }
    qsort(g, (size_t)k, sizeof *g, cmpgroup);
    *ngroups = k;
    return g;
}

static int write_text(const char *name, int fd, const group *g, int ng, int total)
{
    weft__out o;
    weft__out_fd(&o, fd);
    weft__outf(&o, "%s profile: total %d\n", name, total);
    for (int i = 0; i < ng; i++) {
        int d = depth(g[i].r);
        weft__outf(&o, "%d @", g[i].count);
        for (int j = 0; j < d; j++)
            weft__outf(&o, " 0x%lx", (unsigned long)g[i].r->stack[j]);
        weft__outf(&o, "\n");
        weft__printstackrecord(&o, "", g[i].r->stack, d);
        weft__outf(&o, "\n");
    }
    weft__out_flush(&o);
    return o.err;
}

static int write_proto(const char *name, int fd, const group *g, int ng)
{
    weft__pprof_vt vt = { name, "count" };
    weft__pprof *pp = weft__pprof_new(&vt, 1, vt, 1);
    if (!pp)
        return -ENOMEM;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    weft__pprof_set_time(pp, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, 0);
    int err = weft__pprof_add_proc_mappings(pp, 0);
    for (int i = 0; i < ng && err == 0; i++) {
        int64_t v = g[i].count;
        err = weft__pprof_add(pp, g[i].r->stack, depth(g[i].r), false, &v, NULL, NULL);
    }
    if (err == 0)
        err = weft__pprof_write(pp, fd, weft__symtab_pprof, NULL);
    weft__pprof_free(pp);
    return err;
}

/* goroutine debug=2: this goroutine's traceback, then every other one's,
 * up to weft__dumplimit bytes (Go's pprof stops at 64 MiB).  Not inlined,
 * nor is write_json: their own traceback starts two frames up, at
 * weft_profile_write's caller's call. */
static __attribute__((noinline)) int write_tracebacks(int fd)
{
    weft__selfview self;
    weft__view_self(&self);
    char *block = malloc(BLOCK);
    weft__tbopts opt = { .cache = weft__symcache_new() };
    weft__gprof p;
    int64_t n = !block ? -ENOMEM : weft__view_running() ? collect(&p, self.g, TB_RECHEAD, TB_RECTAIL, -1)
                                                        : -ESRCH;
    int64_t t0 = weft__nanotime();
    int err = 0;
    if (n == -ENOMEM) {
        err = -ENOMEM;
    } else {
        weft__out o, b;
        weft__out_fd(&o, fd);
        size_t total = 0;
        if (self.g) {
            weft__out_mem(&b, block, BLOCK);
            weft__traceback_self(&b, &opt);
            weft__out_write(&o, block, b.n);
            total = b.n;
        }
        if (n >= 0) {
            writerecs(&o, &total, weft__dumplimit, &p, &opt, block, self.g != NULL);
            weft__gprof_free(&p);
        }
        weft__out_flush(&o);
        err = o.err;
    }
    weft__symcache_free(opt.cache);
    free(block);
    AO_store(&weft__dumpstats.format_ns, (AO_t)(weft__nanotime() - t0));
    return err;
}

/* ---- goroutine debug=3: JSON ------------------------------------------------------------ */

/* The channels the goroutines of a dump are parked on, one entry per
 * (channel, side, goroutine), sorted: a goroutine's "receivers" and
 * "senders" are counted in it with two binary searches. */
typedef struct { uintptr_t chan; uintptr_t dir; } chanside;

typedef struct { chanside *v; size_t n; } chansides;

static int cmpside(const void *a, const void *b)
{
    const chanside *x = a, *y = b;
    if (x->chan != y->chan)
        return x->chan < y->chan ? -1 : 1;
    return x->dir < y->dir ? -1 : x->dir > y->dir;
}

/* The first entry not below k (after: not below and not equal). */
static size_t lowerbound(const chansides *t, const chanside *k, bool after)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmpside(&t->v[mid], k);
        if (c < 0 || (after && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Entries equal to (chan, dir): two binary searches, so a channel with
 * 100,000 goroutines parked on it costs each of them O(log n). */
static int countside(const chansides *t, uintptr_t chan, uintptr_t dir)
{
    chanside k = { chan, dir };
    return (int)(lowerbound(t, &k, true) - lowerbound(t, &k, false));
}

static void waitcount(void *arg, uintptr_t chan, int *nrecv, int *nsend)
{
    const chansides *t = arg;
    *nrecv = countside(t, chan, VDIR_RECV);
    *nsend = countside(t, chan, VDIR_SEND);
}

static void chansides_make(chansides *t, const weft__gprof *p)
{
    uint32_t n = weft__gprof_len(p);
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += p->recs[i].nwait;
    t->n = 0;
    t->v = malloc((total ? total : 1) * sizeof *t->v);
    if (!t->v)
        return;     /* the counts are then left out (0) */
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < p->recs[i].nwait; k++) {
            weft__waitobj w = weft__grec_waitobj(p, &p->recs[i], k);
            if (w.kind == VWAIT_CHAN && w.dir != VDIR_NONE)
                t->v[t->n++] = (chanside){ w.addr, w.dir };
        }
    qsort(t->v, t->n, sizeof *t->v, cmpside);
}

/* One JSON document (docs/formats.md): this goroutine's object, then every
 * other one's, newest first, taken as the text dump takes them (one short
 * stop to mark the snapshot, one to end it).  Within JSONLIMIT: a
 * goroutine whose object would pass it, and every one after, are left
 * out and counted in "omitted", so the document stays whole.  Four times
 * the text's limit: an object is about three times its traceback's text
 * (the file of every frame is spelled out), and a tool wants them all. */
#define JSONLIMIT (4 * weft__dumplimit)

/* A formatted goroutine straight to o's descriptor, in one write rather
 * than through o's 1 KiB stage (the JSON of 100,000 goroutines is 80 MB). */
static void writeblock(weft__out *o, char *p, size_t n)
{
    weft__out_flush(o);
    weft__out t = { .fd = o->fd, .buf = p, .cap = n, .n = n };
    weft__out_flush(&t);
    if (t.err && !o->err)
        o->err = t.err;
}
static __attribute__((noinline)) int write_json(int fd)
{
    weft__selfview self;
    weft__view_self(&self);
    size_t blocksz = 16 * BLOCK;    /* a goroutine with 100 ancestors of 50 frames */
    char *block = malloc(blocksz);
    weft__tbopts opt = { .cache = weft__symcache_new() };
    weft__gprof p;
    int64_t n = !block ? -ENOMEM : weft__view_running() ? collect(&p, self.g, TB_RECHEAD, TB_RECTAIL, -1)
                                                        : -ESRCH;
    if (n == -ENOMEM) {
        weft__symcache_free(opt.cache);
        free(block);
        return -ENOMEM;
    }
    int64_t t0 = weft__nanotime(), now = weft__view_coarsetime();
    weft__out o, b;
    weft__out_fd(&o, fd);
    weft__outf(&o, "{\"goroutines\":[");
    size_t total = 0, tail = 64;    /* room for the closing line */
    bool first = true;
    if (self.g) {
        weft__out_mem(&b, block, blocksz);
        weft__jsonself(&b, &opt);
        if (!b.dropped) {
            writeblock(&o, block, b.n);
            total += b.n;
            first = false;
        }
    }
    uint32_t omitted = 0;
    if (n >= 0) {
        uint32_t nr = weft__gprof_len(&p);
        qsort(p.recs, nr, sizeof *p.recs, newestfirst);
        chansides sides;
        chansides_make(&sides, &p);
        int64_t last = weft__nanotime();
        for (uint32_t i = 0; i < nr; i++) {
            weft__out_mem(&b, block, blocksz);
            if (!first)
                weft__outf(&b, ",\n");
            weft__jsonrec(&b, &p, &p.recs[i], now, &opt, sides.v ? waitcount : NULL, &sides);
            if (b.dropped || total + b.n + tail > JSONLIMIT) {
                omitted = nr - i;
                break;
            }
            writeblock(&o, block, b.n);
            total += b.n;
            first = false;
            if (i % 32 == 31)
                breathe(self.g != NULL, &last);
        }
        free(sides.v);
        weft__gprof_free(&p);
    }
    weft__outf(&o, "],\n\"omitted\":%u}\n", omitted);
    weft__out_flush(&o);
    weft__symcache_free(opt.cache);
    free(block);
    AO_store(&weft__dumpstats.format_ns, (AO_t)(weft__nanotime() - t0));
    return o.err;
}

int weft_profile_write(const char *name, int fd, int debug)
{
    if (!name || debug < 0)
        return -EINVAL;
    weft__unwind_prepare();     /* as weft_stack */
    recordsf f;
    if (strcmp(name, "goroutine") == 0)
        f = weft_goroutine_profile;
    else if (strcmp(name, "threadcreate") == 0)
        f = weft_threadcreate_profile;
    else
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (debug >= 2 && f == weft_goroutine_profile) {
        int err = debug >= 3 ? write_json(fd) : write_tracebacks(fd);
        /* Not a tail call: the dump's own traceback skips this frame. */
        __asm__ volatile("" ::: "memory");
        return err;
    }
    int n = 0;
    weft_stack_record *p = records(f, &n);
    if (!p)
        return -ENOMEM;
    int64_t t0 = weft__nanotime();
    int ng = 0;
    group *g = groups(p, n, &ng);
    int err = -ENOMEM;
    if (g)
        err = debug == 0 ? write_proto(name, fd, g, ng) : write_text(name, fd, g, ng, n);
    free(g);
    free(p);
    if (f == weft_goroutine_profile)
        AO_store(&weft__dumpstats.format_ns, (AO_t)(weft__nanotime() - t0));
    return err;
}
