/*
 * stackprof.c — goroutine and thread-creation stacks for programs:
 * weft_stack (runtime.Stack), weft_goroutine_profile and
 * weft_threadcreate_profile (Go's (n, ok) calls) and weft_profile_write
 * (pprof.Lookup(name).WriteTo in its three forms; docs/formats.md,
 * goroutine and threadcreate profiles).
 *
 * Goroutine stacks are read with the world stopped, so every goroutine
 * but the caller sits in a saved context or a syscall and its stack holds
 * still.  Thread-creation stacks are constant once an M exists and are
 * read under the scheduler lock, which freezes the set of Ms.
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

/* Callers stop the world first, so the status holds still. */
static bool usergoroutine(const weft__gview *g) { return g->status != VGdead && g->status != VGidle; }

int weft_stack(char *buf, size_t len, bool all)
{
    if (len == 0)
        return 0;
    if (!buf)
        return -EINVAL;
    weft__selfview self;
    weft__view_self(&self);
    bool user = self.g != NULL;
    if (!all && !user)
        return -ESRCH;
    weft__out o;
    weft__out_mem(&o, buf, len);
    bool stopped = all && weft__view_running() && weft__stoptheworld();
    weft__tbopts opt = { 0 };
    if (user)
        weft__traceback_self(&o, &opt);
    if (all && weft__view_running())
        weft__tracebackothers(&o, self.g, false, &opt);
    if (stopped)
        weft__starttheworld();
    return o.n > INT_MAX ? INT_MAX : (int)o.n;
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
    bool stopped = weft__stoptheworld();
    weft__selfview self;
    weft__view_self(&self);     /* after the stop: we may be on another M now */
    weft__gview g;
    int n = 0;
    for (G *gp = weft__view_allg(NULL); gp; gp = weft__view_allg(gp)) {
        weft__view_g(gp, &g);
        n += usergoroutine(&g);
    }
    if (n <= len) {
        int i = 0;
        for (G *gp = weft__view_allg(NULL); gp && i < n; gp = weft__view_allg(gp)) {
            weft__view_g(gp, &g);
            if (!usergoroutine(&g))
                continue;
            uintptr_t *r = p[i++].stack;
            memset(r, 0, sizeof p[0].stack);
            if (gp == self.g) {
                /* from our caller, as Go's saveg(getcallerpc(), getcallersp()) */
                weft__unwinder u;
                weft__unwind_init_self(&u, 1, self.stacklo, self.stackhi);
                weft__unwind_pcs(&u, r, TB_MAXPCS);
            } else {
                weft__gstackrecord(&g, r, TB_MAXPCS);
            }
        }
        *ok = true;
    }
    if (stopped)
        weft__starttheworld();
    return n;
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

/* goroutine debug=2: every traceback, in a buffer grown until it fits (as
 * Go's pprof does, from 1 MiB up to 64 MiB). */
static int write_tracebacks(int fd)
{
    for (size_t len = 1 << 20; len <= (64u << 20); len *= 2) {
        char *b = malloc(len);
        if (!b)
            return -ENOMEM;
        int n = weft_stack(b, len, true);
        if (n >= 0 && (size_t)n < len) {
            weft__out o;
            weft__out_fd(&o, fd);
            weft__out_write(&o, b, (size_t)n);
            weft__out_flush(&o);
            free(b);
            return o.err;
        }
        free(b);
        if (n < 0)
            return n;
    }
    return -ENOMEM;
}

int weft_profile_write(const char *name, int fd, int debug)
{
    if (!name || debug < 0)
        return -EINVAL;
    recordsf f;
    if (strcmp(name, "goroutine") == 0)
        f = weft_goroutine_profile;
    else if (strcmp(name, "threadcreate") == 0)
        f = weft_threadcreate_profile;
    else
        return -EINVAL;
    if (fd < 0)
        return -EBADF;
    if (debug >= 2 && f == weft_goroutine_profile)
        return write_tracebacks(fd);
    int n = 0;
    weft_stack_record *p = records(f, &n);
    if (!p)
        return -ENOMEM;
    int ng = 0;
    group *g = groups(p, n, &ng);
    int err = -ENOMEM;
    if (g)
        err = debug == 0 ? write_proto(name, fd, g, ng) : write_text(name, fd, g, ng, n);
    free(g);
    free(p);
    return err;
}
