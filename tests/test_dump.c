/*
 * test_dump.c — dumps of every goroutine (weft_stack(.., true), the
 * goroutine profiles) taken while the world runs, Go 1.19's way: every
 * goroutine alive when the world stopped appears exactly once, with the
 * stack it had then, even if it runs, parks elsewhere, leaves a syscall or
 * exits before the collector gets to it; goroutines born meanwhile do not
 * appear; a deep stack prints as its live walk would; a dump past its
 * limit ends with the goroutines that fit whole and a line counting the
 * rest; and the program's goroutines keep running while a big dump is
 * taken.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/symtab.h"
#include "diag/traceback.h"
#include "testutil.h"

/* No tail calls: a C compiler turns a final call into a jump and the
 * caller's frame is gone from every stack. */
static atomic_int sink;

/* ---- reading a dump ----------------------------------------------------------------- */

/* The traceback of goroutine id in a dump (from its header line to the
 * blank line after it), copied into out; how many headers it has. */
static int block_of(const char *dump, int64_t id, char *out, size_t len)
{
    char want[48];
    int n = snprintf(want, sizeof want, "goroutine %lld [", (long long)id);
    int found = 0;
    out[0] = 0;
    for (const char *p = dump; (p = strstr(p, want)) != NULL; p += n) {
        if (p != dump && p[-1] != '\n')
            continue;   /* "created by f in goroutine N" */
        if (found++ == 0) {
            const char *end = strstr(p, "\n\n");
            size_t l = end ? (size_t)(end - p) + 1 : strlen(p);
            l = l < len - 1 ? l : len - 1;
            memcpy(out, p, l);
            out[l] = 0;
        }
    }
    return found;
}

/* Header lines ("goroutine N [" at the start of a line). */
static int headers(const char *dump)
{
    int n = 0;
    for (const char *p = dump; (p = strstr(p, "goroutine ")) != NULL; p++)
        n += p == dump || p[-1] == '\n';
    return n;
}

/* What fd holds, NUL-terminated, in memory from malloc. */
static char *slurp(int fd)
{
    struct stat st;
    cr_assert_eq(fstat(fd, &st), 0);
    char *b = malloc((size_t)st.st_size + 1);
    cr_assert_not_null(b);
    cr_assert_eq(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    b[st.st_size] = 0;
    return b;
}

/* ---- every goroutine once, as it was when the world stopped ------------------------ */

#define NPARKED 2000    /* parked in stage A; NMOVE of them move on during the dump */
#define NMOVE 500
#define NEXIT 100       /* parked, then exit during the dump */
#define NNEW 100        /* born during the dump */

static weft_chan *cha, *chb, *chx;
static atomic_int at_a, at_b, at_x, exited, in_syscall;
static int64_t parked_ids[NPARKED], exit_ids[NEXIT], new_ids[NNEW], syscall_id;
static int sc_pipe[2];
static atomic_int hooked;

static __attribute__((noinline)) void dump_stage_b(void)
{
    atomic_fetch_add(&at_b, 1);
    weft_chan_recv(chb, NULL);
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void dump_stage_a(void)
{
    atomic_fetch_add(&at_a, 1);
    weft_chan_recv(cha, NULL);
    atomic_fetch_add(&sink, 1);
}

static void dump_worker(void *arg)
{
    (void)arg;
    dump_stage_a();
    dump_stage_b();
    atomic_fetch_add(&sink, 1);
}

static __attribute__((noinline)) void dump_exiter(void *arg)
{
    (void)arg;
    atomic_fetch_add(&at_x, 1);
    weft_chan_recv(chx, NULL);      /* closed during the dump */
    atomic_fetch_add(&exited, 1);
}

static __attribute__((noinline)) void dump_in_syscall(void *arg)
{
    (void)arg;
    char c;
    weft_syscall_enter();
    atomic_store(&in_syscall, 1);
    ssize_t r = read(sc_pipe[0], &c, 1);    /* written to during the dump */
    weft_syscall_exit();
    (void)r;
    dump_stage_b();
    atomic_fetch_add(&sink, 1);
}

static void dump_newborn(void *arg) { (void)arg; dump_stage_b(); atomic_fetch_add(&sink, 1); }

/* Runs in the collector, after the snapshot, before it records anyone:
 * NMOVE parked goroutines run and park in stage B, the exiters exit, the
 * syscall leaves its syscall and parks in stage B, and new goroutines are
 * born.  Each of the first three must still appear as it was. */
static void move_during_the_dump(void)
{
    atomic_fetch_add(&hooked, 1);
    for (int i = 0; i < NMOVE; i++)
        cr_assert_eq(weft_chan_send(cha, NULL), 0);
    weft_chan_close(chx);
    cr_assert_eq(write(sc_pipe[1], "x", 1), 1);
    for (int i = 0; i < NNEW; i++)
        new_ids[i] = weft_go(dump_newborn, NULL);
    while (atomic_load(&at_b) < NMOVE + 1 + NNEW || atomic_load(&exited) < NEXIT)
        weft_sleep(1000 * 1000);
}

static void start_scene(void)
{
    cha = weft_chan_new(0, 0);
    chb = weft_chan_new(0, 0);
    chx = weft_chan_new(0, 0);
    cr_assert_eq(pipe(sc_pipe), 0);
    for (int i = 0; i < NPARKED; i++)
        cr_assert_gt(parked_ids[i] = weft_go(dump_worker, NULL), 0);
    for (int i = 0; i < NEXIT; i++)
        cr_assert_gt(exit_ids[i] = weft_go(dump_exiter, NULL), 0);
    cr_assert_gt(syscall_id = weft_go(dump_in_syscall, NULL), 0);
    while (atomic_load(&at_a) < NPARKED || atomic_load(&at_x) < NEXIT || !atomic_load(&in_syscall))
        weft_sleep(1000 * 1000);
    weft_sleep(20 * 1000 * 1000);   /* until the last of them has parked */
    weft__gprof_testhook = move_during_the_dump;
}

/* After the dump: the hook ran, and everything it moved did move. */
static void end_scene(void)
{
    weft__gprof_testhook = NULL;
    cr_assert_eq(atomic_load(&hooked), 1);
    cr_assert_eq(atomic_load(&at_b), NMOVE + 1 + NNEW);
    cr_assert_eq(atomic_load(&exited), NEXIT);
}

/* The text form: the goroutines of the snapshot once each, as they were. */
static void check_dump(const char *dump)
{
    static char b[1 << 14];
    int total = 1 + NPARKED + NEXIT + 1;    /* main, the parked, the exiters, the syscall */
    cr_assert_eq(headers(dump), total, "%d goroutines in the dump, want %d", headers(dump), total);
    cr_assert_eq(block_of(dump, weft_id(), b, sizeof b), 1);
    cr_assert(strstr(b, "[running]:\n"), "%s", b);
    for (int i = 0; i < NPARKED; i++) {
        cr_assert_eq(block_of(dump, parked_ids[i], b, sizeof b), 1, "goroutine %lld", (long long)parked_ids[i]);
        cr_assert(strstr(b, " [chan receive]:\nweft_chan_recv(...)\n") && strstr(b, "\ndump_stage_a(...)\n") &&
                  strstr(b, "\ndump_worker(...)\n") && !strstr(b, "dump_stage_b"),
                  "goroutine %d of %d, not as it was when the world stopped:\n%s", i, NPARKED, b);
    }
    for (int i = 0; i < NEXIT; i++) {
        cr_assert_eq(block_of(dump, exit_ids[i], b, sizeof b), 1);
        cr_assert(strstr(b, "\ndump_exiter(...)\n"), "%s", b);
    }
    for (int i = 0; i < NNEW; i++)
        cr_assert_eq(block_of(dump, new_ids[i], b, sizeof b), 0, "born after the snapshot:\n%s", b);
    cr_assert_eq(block_of(dump, syscall_id, b, sizeof b), 1);
    /* It left its syscall with a P (recorded there, as Go's exitsyscall
     * does) or without (queued, recorded when it ran again): the same
     * frames either way. */
    cr_assert(strstr(b, "[syscall]:\n") || strstr(b, "[runnable]:\n"), "%s", b);
    cr_assert(strstr(b, "\ndump_in_syscall(...)\n") && !strstr(b, "dump_stage_b"), "%s", b);
}

static void weft_stack_main(void *arg)
{
    (void)arg;
    start_scene();
    size_t len = 16u << 20;
    char *buf = malloc(len + 1);
    int n = weft_stack(buf, len, true);
    end_scene();
    cr_assert_gt(n, 0);
    cr_assert_lt((size_t)n, len);
    buf[n] = 0;
    check_dump(buf);
    free(buf);
}

Test(dump, weft_stack_every_goroutine_once_as_at_the_stop, .timeout = 120)
{
    cr_assert_eq(weft_main(weft_stack_main, NULL), 0);
}

static void debug2_main(void *arg)
{
    (void)arg;
    start_scene();
    int fd = memfd_create("dump", 0);
    cr_assert_eq(weft_profile_write("goroutine", fd, 2), 0);
    end_scene();
    char *t = slurp(fd);
    close(fd);
    check_dump(t);
    free(t);
}

Test(dump, debug2_every_goroutine_once_as_at_the_stop, .timeout = 120)
{
    cr_assert_eq(weft_main(debug2_main, NULL), 0);
}

/* The stack record form: which functions a record passes through. */
static bool passes(const weft_stack_record *r, const char *func)
{
    for (int i = 0; i < 32 && r->stack[i]; i++) {
        weft__sym s;
        if (weft__symbolize(r->stack[i] - 1, &s) && s.func && strcmp(s.func, func) == 0)
            return true;
    }
    return false;
}

static void records_main(void *arg)
{
    (void)arg;
    start_scene();
    int len = NPARKED + NEXIT + NNEW + 100;
    weft_stack_record *r = malloc((size_t)len * sizeof *r);
    memset(r, 0xab, (size_t)len * sizeof *r);
    bool ok = false;
    int n = weft_goroutine_profile(r, len, &ok);
    end_scene();
    cr_assert(ok);
    cr_assert_eq(n, 1 + NPARKED + NEXIT + 1);
    /* Zero after the last frame, as Go clears Stack0 (debug=1 groups
     * records by comparing them whole). */
    for (int i = 0; i < n; i++) {
        int d = 0;
        while (d < 32 && r[i].stack[d])
            d++;
        for (; d < 32; d++)
            cr_assert_eq(r[i].stack[d], 0, "record %d, word %d", i, d);
    }
    int a = 0, b = 0, x = 0, s = 0;
    for (int i = 0; i < n; i++) {
        a += passes(&r[i], "dump_stage_a");
        b += passes(&r[i], "dump_stage_b");
        x += passes(&r[i], "dump_exiter");
        s += passes(&r[i], "dump_in_syscall");
    }
    cr_assert_eq(a, NPARKED);
    cr_assert_eq(b, 0);
    cr_assert_eq(x, NEXIT);
    cr_assert_eq(s, 1);
    free(r);
}

Test(dump, goroutine_profile_records_as_at_the_stop, .timeout = 120)
{
    cr_assert_eq(weft_main(records_main, NULL), 0);
}

/* ---- deep stacks -------------------------------------------------------------------- */

static weft_chan *deepch;
static atomic_int deep_parked;

static __attribute__((noinline)) void dump_deep(int d)
{
    if (d > 0) {
        dump_deep(d - 1);
        atomic_fetch_add(&sink, 1);
        return;
    }
    atomic_fetch_add(&deep_parked, 1);
    weft_chan_recv(deepch, NULL);
    atomic_fetch_add(&sink, 1);
}

static void dump_deep_g(void *arg) { dump_deep((int)(intptr_t)arg); atomic_fetch_add(&sink, 1); }

static G *findg(int64_t goid)
{
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink)
        if (gp->goid == goid)
            return gp;
    return NULL;
}

static void deep_main(void *arg)
{
    (void)arg;
    deepch = weft_chan_new(0, 0);
    /* Around and past what a record keeps (TB_RECHEAD + TB_RECTAIL). */
    static const int depths[] = { 3, 90, 120, 145, 150, 151, 152, 200, 3000 };
    enum { ND = sizeof depths / sizeof depths[0] };
    int64_t ids[ND];
    weft_attr at = { .stack_size = 1u << 20 };
    for (int i = 0; i < ND; i++)
        ids[i] = weft_go_attr(&at, dump_deep_g, (void *)(intptr_t)depths[i]);
    while (atomic_load(&deep_parked) < ND)
        weft_sleep(1000 * 1000);
    weft_sleep(10 * 1000 * 1000);
    size_t len = 4u << 20;
    char *dump = malloc(len + 1);
    int n = weft_stack(dump, len, true);
    cr_assert(n > 0 && (size_t)n < len);
    dump[n] = 0;
    static char rec[1 << 16], live[1 << 16];
    for (int i = 0; i < ND; i++) {
        cr_assert_eq(block_of(dump, ids[i], rec, sizeof rec), 1);
        /* The same goroutine walked live (it stays parked). */
        weft__gview g;
        weft__view_g(findg(ids[i]), &g);
        weft__unwinder u;
        weft__gwalk_init(&g, &u);
        weft__out o;
        weft__out_mem(&o, live, sizeof live - 1);
        weft__goroutineheader(&o, &g);
        weft__traceback(&o, &g, &u, false, NULL);
        live[o.n] = 0;
        cr_assert_str_eq(rec, live, "depth %d: the record prints\n%s\nthe live walk\n%s", depths[i], rec, live);
    }
    cr_assert(strstr(dump, " frames elided...\n"), "the deepest stacks are elided in the middle");
    free(dump);
}

Test(dump, a_deep_stack_prints_as_its_live_walk, .timeout = 60)
{
    cr_assert_eq(weft_main(deep_main, NULL), 0);
}

/* ---- limits ----------------------------------------------------------------------------- */

/* dump ends with whole goroutines and "...K additional goroutines
 * omitted...", and K plus the goroutines shown is every goroutine. */
static void check_omitted(const char *dump, size_t n)
{
    const char *tag = " additional goroutines omitted...\n";
    cr_assert_gt(n, strlen(tag));
    cr_assert_str_eq(dump + n - strlen(tag), tag, "does not end with the omitted line:\n%s", dump);
    const char *line = dump + n - strlen(tag);
    while (line > dump && line[-1] != '\n')
        line--;
    long k = 0;
    cr_assert_eq(sscanf(line, "...%ld additional", &k), 1, "%s", line);
    cr_assert_gt(k, 0);
    cr_assert_eq(line[-1], '\n');
    cr_assert_eq(line[-2], '\n', "a blank line before it");
    /* The goroutine before it is whole: its last line is a file:line. */
    const char *prev = line - 2;
    while (prev > dump && prev[-1] != '\n')
        prev--;
    cr_assert_eq(prev[0], '\t', "cut short:\n%s", dump);
    cr_assert(strstr(prev, " +0x") && strstr(prev, " +0x") < line, "cut short:\n%s", dump);
    cr_assert_eq(headers(dump) + k, weft_num_goroutine(), "%d shown + %ld omitted:\n%s", headers(dump), k, dump);
}

static void limit_main(void *arg)
{
    (void)arg;
    cha = weft_chan_new(0, 0);
    chb = weft_chan_new(0, 0);
    for (int i = 0; i < 300; i++)
        cr_assert_gt(weft_go(dump_worker, NULL), 0);
    while (atomic_load(&at_a) < 300)
        weft_sleep(1000 * 1000);
    weft_sleep(10 * 1000 * 1000);

    static char buf[8192 + 1];
    int n = weft_stack(buf, sizeof buf - 1, true);
    cr_assert(n > 0 && (size_t)n < sizeof buf - 1);
    buf[n] = 0;
    cr_assert_eq(strncmp(buf, "goroutine ", 10), 0, "%s", buf);
    check_omitted(buf, (size_t)n);

    /* goroutine?debug=2 past its limit (Go's 64 MiB, lowered). */
    size_t saved = weft__dumplimit;
    weft__dumplimit = 20000;
    int fd = memfd_create("dump", 0);
    cr_assert_eq(weft_profile_write("goroutine", fd, 2), 0);
    weft__dumplimit = saved;
    char *t = slurp(fd);
    close(fd);
    cr_assert_leq(strlen(t), 20000);
    check_omitted(t, strlen(t));
    free(t);

    /* Smaller than this goroutine's own traceback: cut off, as before. */
    cr_assert_eq(weft_stack(buf, 40, true), 40);
}

Test(dump, past_its_limit_a_dump_ends_with_the_omitted_line, .timeout = 60)
{
    cr_assert_eq(weft_main(limit_main, NULL), 0);
}

/* ---- the program runs on ----------------------------------------------------------------- */

#define NBIG 20000

/* When the dump began and ended (INT64_MAX: not yet). */
static atomic_llong dump_t0 = INT64_MAX, dump_t1 = INT64_MAX;
static atomic_llong worst_ns;       /* the ticker's worst lateness during the dump */
static atomic_int stop_ticker;

static void ticker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_ticker)) {
        int64_t t0 = weft_nanotime();
        weft_sleep(1000 * 1000);
        int64_t t1 = weft_nanotime(), late = t1 - t0 - 1000 * 1000;
        /* a tick that overlaps the dump, even one that spans all of it */
        if (t1 >= atomic_load(&dump_t0) && t0 <= atomic_load(&dump_t1) && late > atomic_load(&worst_ns))
            atomic_store(&worst_ns, late);
    }
}

static void big_main(void *arg)
{
    (void)arg;
    cha = weft_chan_new(0, 0);
    chb = weft_chan_new(0, 0);
    for (int i = 0; i < NBIG; i++)
        cr_assert_gt(weft_go(dump_worker, NULL), 0);
    while (atomic_load(&at_a) < NBIG)
        weft_sleep(1000 * 1000);
    weft_go(ticker, NULL);
    weft_sleep(20 * 1000 * 1000);
    int fd = open("/dev/null", O_WRONLY);
    int64_t t0 = weft_nanotime();
    atomic_store(&dump_t0, t0);
    cr_assert_eq(weft_profile_write("goroutine", fd, 2), 0);
    int64_t t1 = weft_nanotime(), took = t1 - t0;
    atomic_store(&dump_t1, t1);
    close(fd);
    weft_sleep(5 * 1000 * 1000);    /* the tick under way when it ended */
    atomic_store(&stop_ticker, 1);
    /* Not a speed test: a bound that only a dump stopping the world for
     * the whole formatting fails (seconds at this size before; a stop of
     * well under a millisecond now, plus whatever the machine adds). */
    cr_assert_lt(atomic_load(&worst_ns), 1000LL * 1000 * 1000,
                 "a 1 ms ticker was %lld ms late during a dump of %d goroutines (the dump took %lld ms)",
                 (long long)(atomic_load(&worst_ns) / 1000000), NBIG, (long long)(took / 1000000));
    cr_log_info("dump of %d goroutines: %lld ms, ticker at most %lld us late", NBIG,
                (long long)(took / 1000000), (long long)(atomic_load(&worst_ns) / 1000));
}

Test(dump, goroutines_run_while_a_big_dump_is_taken, .timeout = 300)
{
    cr_assert_eq(weft_main(big_main, NULL), 0);
}

/* ---- dumps racing everything ------------------------------------------------------------ */

static atomic_int churning;

/* Parks, wakes, spawns and exits, flat out. */
static void churn_child(void *arg) { (void)arg; weft_yield(); }

static void churner(void *arg)
{
    weft_chan *c = arg;
    while (atomic_load(&churning)) {
        weft_chan_send(c, NULL);
        weft_go(churn_child, NULL);
        weft_yield();
    }
    weft_chan_close(c);
}

static void churn_peer(void *arg)
{
    weft_chan *c = arg;
    while (weft_chan_recv(c, NULL))
        atomic_fetch_add(&sink, 1);
}

static void dumper(void *arg)
{
    weft_wg *wg = arg;
    size_t len = 1u << 20;
    char *buf = malloc(len + 1);
    weft_stack_record *r = malloc(4096 * sizeof *r);   /* 1 MiB: not on a goroutine's stack */
    char b[256];
    for (int k = 0; k < 30; k++) {
        int n = weft_stack(buf, len, true);
        cr_assert(n > 0 && (size_t)n < len);
        buf[n] = 0;
        /* No goroutine twice, none half-printed. */
        for (const char *p = buf; (p = strstr(p, "\ngoroutine ")) != NULL; p++) {
            long long id = strtoll(p + 11, NULL, 10);
            cr_assert_eq(block_of(buf, id, b, sizeof b), 1, "goroutine %lld twice in\n%s", id, buf);
        }
        bool ok;
        int m = weft_goroutine_profile(r, 4096, &ok);
        cr_assert(m > 0 && ok);
    }
    free(r);
    free(buf);
    weft_wg_done(wg);
}

static void race_main(void *arg)
{
    (void)arg;
    atomic_store(&churning, 1);
    for (int i = 0; i < 4; i++) {
        weft_chan *c = weft_chan_new(0, 0);
        weft_go(churner, c);
        weft_go(churn_peer, c);
    }
    weft_wg wg = WEFT_WG_INIT;
    weft_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        weft_go(dumper, &wg);
    weft_wg_wait(&wg);
    atomic_store(&churning, 0);
}

Test(dump, dumps_race_goroutines_that_park_spawn_and_exit, .timeout = 120)
{
    cr_assert_eq(weft_main(race_main, NULL), 0);
}
