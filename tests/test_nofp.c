/*
 * test_nofp.c — whole stacks through code built without frame pointers
 * (nofp_user.c, -O2 -fomit-frame-pointer) and through libc and the vDSO:
 * a parked goroutine's traceback and goroutine profile show every frame
 * of its call chain, a goroutine parked in a qsort comparator shows the
 * comparator, qsort and its own function, a CPU profile credits the
 * function that calls memcpy/memset, hogwarn names a spinner that calls
 * clock_gettime, and an M started for a goroutine's blocking syscall
 * records the goroutine's functions in its creation stack.  Frame-pointer
 * walking fails each of these.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>

#include "nofp_user.h"
#include "pprof_reader.h"
#include "runtime.h"
#include "diag/unwind.h"

static char buf[1 << 20];

/* The traceback block of goroutine id in dump, or NULL. */
static const char *gblock(const char *dump, int64_t id, char *out, size_t len)
{
    char head[48];
    snprintf(head, sizeof head, "goroutine %lld [", (long long)id);
    const char *b = strstr(dump, head);
    if (!b)
        return NULL;
    const char *e = strstr(b, "\n\n");
    size_t n = e ? (size_t)(e - b) : strlen(b);
    n = n < len - 1 ? n : len - 1;
    memcpy(out, b, n);
    out[n] = 0;
    return out;
}

/* Whether every name in names appears in s as a frame ("name(...)" at a
 * line's start), in that order. */
static bool frames_in_order(const char *s, const char *const *names, int n)
{
    const char *p = s;
    for (int i = 0; i < n; i++) {
        char want[96];
        snprintf(want, sizeof want, "\n%s(", names[i]);
        p = strstr(p, want);
        if (!p)
            return false;
        p += strlen(want);
    }
    return true;
}

/* Waits until goroutine id is parked (for at most 10 s). */
static void await_waiting(int64_t id)
{
    for (int i = 0; i < 10000; i++) {
        for (G *gp = weft__view_allg(NULL); gp; gp = weft__view_allg(gp)) {
            weft__gview v;
            weft__view_g(gp, &v);
            if (v.goid == id && v.status == VGwaiting)
                return;
        }
        weft_sleep(1000 * 1000);
    }
    cr_assert_fail("goroutine %lld never parked", (long long)id);
}

/* What weft_profile_write(name, .., debug) writes. */
static const char *profile_text(const char *name, int debug)
{
    int fd = memfd_create("profile", 0);
    cr_assert_geq(fd, 0);
    cr_assert_eq(weft_profile_write(name, fd, debug), 0);
    off_t n = lseek(fd, 0, SEEK_CUR);
    cr_assert(n > 0 && (size_t)n < sizeof buf);
    cr_assert_eq(pread(fd, buf, (size_t)n, 0), n);
    buf[n] = 0;
    close(fd);
    return buf;
}

/* ---- a parked goroutine ---------------------------------------------------------- */

static void chain_main(void *arg)
{
    (void)arg;
    static weft_chan *c;    /* static: reachable still when weft_main returns */
    c = weft_chan_new(sizeof(int), 0);
    int64_t id = weft_go(nofp_worker, c);
    await_waiting(id);
    static const char *const chain[] = { "weft_chan_recv", "nofp_leaf3", "nofp_mid2", "nofp_top1", "nofp_worker" };
    static char dump[1 << 18], block[1 << 14];
    int n = weft_stack(dump, sizeof dump - 1, true);
    cr_assert(n > 0);
    dump[n] = 0;
    cr_assert_not_null(gblock(dump, id, block, sizeof block), "%s", dump);
    cr_assert(frames_in_order(block, chain, 5), "weft_stack lacks frames:\n%s", block);
    /* The goroutine profile records the same walk (debug=2 prints it as
     * weft_stack does; debug=1 symbolizes the records). */
    cr_assert_not_null(gblock(profile_text("goroutine", 2), id, block, sizeof block));
    cr_assert(frames_in_order(block, chain, 5), "goroutine profile, debug=2:\n%s", block);
    const char *p1 = profile_text("goroutine", 1);
    for (int i = 1; i < 5; i++)
        cr_assert_not_null(strstr(p1, chain[i]), "goroutine profile, debug=1, lacks %s:\n%s", chain[i], p1);
    int v = 1;
    weft_chan_send(c, &v);
}

Test(nofp, a_parked_goroutine_shows_its_whole_chain, .timeout = 60)
{
    cr_assert_eq(weft_main(chain_main, NULL), 0);
}

/* ---- inside qsort ----------------------------------------------------------------- */

static void qsort_main(void *arg)
{
    (void)arg;
    nofp_cmp_gate = weft_chan_new(sizeof(int), 0);
    int64_t id = weft_go(nofp_sorter, NULL);
    await_waiting(id);
    static char dump[1 << 18], block[1 << 14];
    int n = weft_stack(dump, sizeof dump - 1, true);
    cr_assert(n > 0);
    dump[n] = 0;
    cr_assert_not_null(gblock(dump, id, block, sizeof block), "%s", dump);
    static const char *const want[] = { "nofp_cmp", "nofp_sorter" };
    cr_assert(frames_in_order(block, want, 2), "%s", block);
    /* qsort itself between them: glibc's qsort_r, or under ASan its
     * interceptor, which first calls the comparator on every adjacent
     * pair itself. */
    const char *cmp = strstr(block, "\nnofp_cmp("), *sorter = strstr(block, "\nnofp_sorter(");
    const char *q = memmem(cmp + 1, (size_t)(sorter - cmp - 1), "qsort", 5);
    cr_assert(q, "no qsort frame between the comparator and its caller:\n%s", block);
    cr_assert_null(strstr(block, "? pc="), "a frame that is garbage:\n%s", block);
    int v = 1;
    weft_chan_send(nofp_cmp_gate, &v);
}

Test(nofp, a_goroutine_in_a_qsort_comparator_shows_qsort_and_its_function, .timeout = 60)
{
    cr_assert_eq(weft_main(qsort_main, NULL), 0);
}

/* ---- weft__callers, the tracer's walk ------------------------------------------------ */

/* weft__callers steps by the recipes the full walker learned (and by
 * memos of walks it made before), and hands a frame it has no simple
 * recipe for to the full walker: both must give the same pcs.  Each walk
 * below records both, from the same function. */
#define WALK 64
#define NWALKS 8
static uintptr_t fast[NWALKS][WALK], full[NWALKS][WALK];
static int nfast[NWALKS], nfull[NWALKS], walks;

static __attribute__((noinline)) void both_walks(void)
{
    G *g = weft__getg();
    int i = walks++;
    weft__unwinder u;
    weft__unwind_init_self(&u, 0, g->stacklo, g->stackhi);
    nfull[i] = weft__unwind_pcs(&u, full[i], WALK);
    nfast[i] = weft__callers(0, g->stacklo, g->stackhi, fast[i], WALK);
    __asm__ volatile("");   /* not a tail call */
}

/* Runs fn in a goroutine of its own and waits for it. */
static weft_wg walked = WEFT_WG_INIT;

static void walker(void *fn)
{
    ((void (*)(void))fn)();
    weft_wg_done(&walked);
}

static void walker_main(void *fn)
{
    weft_wg_add(&walked, 1);
    cr_assert_gt(weft_go(walker, fn), 0);
    weft_wg_wait(&walked);
}

/* Every walk returned the full walk's pcs (pcs[0], each one's own call in
 * both_walks, aside), at least min of them. */
static void check_walks(int n, int min)
{
    cr_assert_eq(walks, n);
    for (int i = 0; i < n; i++) {
        cr_assert_geq(nfull[i], min, "walk %d: %d frames", i, nfull[i]);
        cr_assert_eq(nfast[i], nfull[i], "walk %d: %d frames against %d", i, nfast[i], nfull[i]);
        for (int k = 1; k < nfull[i]; k++)
            cr_assert_eq(fast[i][k], full[i][k], "walk %d, frame %d: %#lx against %#lx", i, k,
                         (unsigned long)fast[i][k], (unsigned long)full[i][k]);
    }
}

/* Through frame pointers (this file), code without them (nofp_via*) and
 * libc (qsort), before the recipes are learned (the first walk) and
 * after. */
static int walkcmp(const void *a, const void *b)
{
    if (walks < 2)
        both_walks();
    return *(const int *)a - *(const int *)b;
}

static void sort_and_walk(void *arg)
{
    (void)arg;
    int v[16];
    for (int i = 0; i < 16; i++)
        v[i] = (i * 7) % 16;
    qsort(v, 16, sizeof v[0], walkcmp);
}

static void via_nofp(void)
{
    nofp_via2(sort_and_walk, NULL);
}

Test(nofp, callers_returns_the_full_walks_pcs, .timeout = 60)
{
    cr_assert_eq(weft_main(walker_main, (void *)via_nofp), 0);
    check_walks(2, 8);
}

/* A walk remembered from one call chain must not answer for another that
 * reaches the same function at the same depth: via_a and via_b have the
 * same frame, so their callee's walks start alike and differ only in the
 * return address into them. */
static volatile int vsink;

static __attribute__((noinline)) void via_a(void)
{
    both_walks();
    vsink += 1;
}

static __attribute__((noinline)) void via_b(void)
{
    both_walks();
    vsink += 2;
}

static void alternate(void)
{
    for (int i = 0; i < NWALKS; i++)
        (i & 1 ? via_b : via_a)();
}

Test(nofp, callers_tells_apart_chains_of_the_same_shape, .timeout = 60)
{
    cr_assert_eq(weft_main(walker_main, (void *)alternate), 0);
    check_walks(NWALKS, 4);
    /* the chains differ where they should: the return into via_a or via_b */
    cr_assert_neq(fast[0][1], fast[1][1]);
    cr_assert_eq(fast[0][1], fast[2][1]);
}

/* ---- CPU profile --------------------------------------------------------------------- */

static bool onstack(const tprof *t, const tsample *s, const char *name)
{
    for (int i = 0; i < s->nloc; i++) {
        const tloc *l = locbyid(t, s->loc[i]);
        const char *fn = l ? locname(t, l) : NULL;
        if (fn && strcmp(fn, name) == 0)
            return true;
    }
    return false;
}

static void cpu_main(void *arg)
{
    (void)arg;
    FILE *f = tmpfile();
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 250), 0);
    atomic_store(&nofp_stop, 0);
    weft_go(nofp_copier, NULL);
    weft_sleep(1500LL * 1000 * 1000);
    atomic_store(&nofp_stop, 1);
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    size_t ngz, n;
    uint8_t *gz = slurp(fileno(f), &ngz);
    uint8_t *raw = gunzip(gz, ngz, &n);
    tprof *t = decode(raw, n);
    check_valid(t);
    int64_t total = 0, in = 0;
    for (int i = 0; i < t->nsmp; i++) {
        total += t->smp[i].val[0];
        if (onstack(t, &t->smp[i], "nofp_copier"))
            in += t->smp[i].val[0];
    }
    cr_log_info("nofp_copier: %lld of %lld samples", (long long)in, (long long)total);
    cr_assert_geq(total, 50, "too few samples to judge (%lld)", (long long)total);
    cr_assert_geq(in * 100, total * 80, "nofp_copier is on %lld of %lld samples", (long long)in, (long long)total);
    tprof_free(t);
    free(gz);
    free(raw);
    fclose(f);
}

Test(nofp, a_cpu_profile_credits_the_caller_of_memcpy, .timeout = 60)
{
    cr_assert_eq(weft_main(cpu_main, NULL), 0);
}

/* ---- hogwarn ------------------------------------------------------------------------- */

static int64_t spinner_id;

static void hog_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    atomic_store(&nofp_stop, 0);
    spinner_id = weft_go(nofp_spinner, NULL);
    weft_sleep(400LL * 1000 * 1000);
    atomic_store(&nofp_stop, 1);
}

Test(nofp, hogwarn_names_a_spinner_that_calls_clock_gettime, .timeout = 60)
{
    setenv("SCHEDDEBUG", "hogwarn=50", 1);
    /* The report goes to stderr: into a file for the run. */
    FILE *f = tmpfile();
    int saved = dup(2);
    dup2(fileno(f), 2);
    int r = weft_main(hog_main, NULL);
    dup2(saved, 2);
    cr_assert_eq(r, 0);
    size_t n;
    uint8_t *err = slurp(fileno(f), &n);
    err = realloc(err, n + 1);
    err[n] = 0;
    char want[96];
    snprintf(want, sizeof want, "weft: hogwarn: goroutine %lld has run for ", (long long)spinner_id);
    const char *w = strstr((char *)err, want);
    cr_assert_not_null(w, "missing \"%s\" in:\n%s", want, err);
    cr_assert_not_null(strstr(w, "\nnofp_spinner(...)\n"), "the spinner is not on its stack:\n%s", err);
    free(err);
    fclose(f);
}

/* ---- an M's creation stack ----------------------------------------------------------- */

static void threadcreate_main(void *arg)
{
    (void)arg;
    cr_assert_eq(pipe(nofp_pipe), 0);
    /* With one P, the reader blocks our M in its syscall; sysmon hands
     * the P (and us) to a new M, whose creation stack is the reader's. */
    M *me0 = weft__getm();
    weft_go(nofp_reader, NULL);
    while (!atomic_load(&nofp_in_syscall) || weft__getm() == me0)
        weft_yield();
    const char *t = profile_text("threadcreate", 1);
    const char *rd = strstr(t, "\tnofp_blocking_read+0x");
    cr_assert_not_null(rd, "%s", t);
    const char *outer = strstr(rd, "\tnofp_reader+0x");
    const char *end = strstr(rd, "\n\n");
    cr_assert(outer && (!end || outer < end), "the creation stack lacks nofp_reader:\n%s", t);
    cr_assert_eq(write(nofp_pipe[1], "x", 1), 1);
}

Test(nofp, an_m_created_for_a_syscall_records_the_goroutines_functions, .timeout = 60)
{
    setenv("WEFT_MAXPROCS", "1", 1);
    cr_assert_eq(weft_main(threadcreate_main, NULL), 0);
}
