/*
 * test_compact.c — compacted stacks (runtime/stack.c): a goroutine spawned
 * with weft_attr.compact gives its stack's pages back while it is parked
 * and wakes with its frames intact; a waker's write into its receive
 * buffer and another thread's access to its locals bring the stack back
 * and are not lost; its traceback reads the copy.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <valgrind/valgrind.h>

#include "runtime.h"
#include "diag/debuginfo.h"

extern const struct weft_debug_info weft_debug_info;


#define PATTERN_LEN 512

/* Whether this process compacts at all (stack.c: not under a sanitizer or
 * valgrind, not without MADV_GUARD_INSTALL): the tests that wait for a
 * compaction are skipped where none can happen. */
static bool can_compact(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return false;
#endif
    if (RUNNING_ON_VALGRIND)
        return false;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok = p != MAP_FAILED && madvise(p, 4096, 102 /* MADV_GUARD_INSTALL */) == 0;
    if (p != MAP_FAILED)
        munmap(p, 4096);
    return ok;
}

#define NEED_COMPACTION() \
    do { if (!can_compact()) cr_skip_test("stacks are not compacted in this process"); } while (0)

/* What a compacted goroutine shares with the test's main goroutine. */
typedef struct {
    weft_chan *c, *c2;      /* what it parks on */
    G *g;                   /* itself, once it runs */
    long *local;            /* a local of its own, for another thread to use */
    int mode;               /* what it parks in: see parked_main */
    long got;               /* what it received */
    bool intact;            /* its locals were whole when it woke */
    weft_wg done;
} shared;

enum { PARK_RECV, PARK_SELECT, PARK_SLEEP, PARK_TIMEOUT };

/* Fills a buffer of its own stack, parks, checks the buffer on waking. */
__attribute__((noinline)) static void parked_main(void *arg)
{
    shared *sh = arg;
    volatile unsigned char pattern[PATTERN_LEN];
    for (int i = 0; i < PATTERN_LEN; i++)
        pattern[i] = (unsigned char)(i * 7 + 3);
    long local = 1;
    long v = 0, w = 0;
    sh->local = &local;
    sh->g = weft__getg();
    switch (sh->mode) {
    case PARK_RECV:
        weft_chan_recv(sh->c, &v);
        break;
    case PARK_SELECT: {
        weft_case cs[2] = { { .ch = sh->c2, .dir = WEFT_RECV, .elem = &w },
                            { .ch = sh->c, .dir = WEFT_RECV, .elem = &v } };
        if (weft_select(cs, 2, -1) != 1)
            v = -1;
        break;
    }
    case PARK_SLEEP:
        weft_sleep(300 * 1000 * 1000);
        v = 7;
        break;
    case PARK_TIMEOUT: {
        weft_case cs[1] = { { .ch = sh->c, .dir = WEFT_RECV, .elem = &v } };
        if (weft_select(cs, 1, 300 * 1000 * 1000) == -1)
            v = 8;
        break;
    }
    }
    bool ok = local == (sh->mode == PARK_RECV ? 42 : 1);
    for (int i = 0; i < PATTERN_LEN; i++)
        ok = ok && pattern[i] == (unsigned char)(i * 7 + 3);
    sh->intact = ok;
    sh->got = v;
    weft_wg_done(&sh->done);
}

static G *spawn_compacted(shared *sh, int mode)
{
    memset(sh, 0, sizeof *sh);
    sh->c = weft_chan_new(sizeof(long), 0);
    sh->c2 = weft_chan_new(sizeof(long), 0);
    sh->mode = mode;
    weft_wg_add(&sh->done, 1);
    weft_attr a = { .compact = 1 };
    cr_assert_gt(weft_go_attr(&a, parked_main, sh), 0);
    return NULL;
}

/* Waits until sh's goroutine is parked with its stack compacted. */
static weft__stack *wait_compacted(shared *sh)
{
    for (int i = 0; i < 5000; i++) {
        G *g = sh->g;
        /* load-acquire: pairs with the compaction's store-release */
        if (g && STACK_STATE(AO_load_acquire(&g->stack->cstate)) == STACK_COMPACTED)
            return g->stack;
        weft_sleep(1000 * 1000);
    }
    cr_assert_fail("the goroutine's stack was never compacted");
    return NULL;
}

/* Pages of [lo, hi) resident now (mincore). */
static int resident_pages(uintptr_t lo, uintptr_t hi)
{
    size_t n = (hi - lo) / 4096;
    unsigned char vec[1024];
    cr_assert_leq(n, sizeof vec);
    cr_assert_eq(mincore((void *)lo, hi - lo, vec), 0);
    int r = 0;
    for (size_t i = 0; i < n; i++)
        r += vec[i] & 1;
    return r;
}

/* Sends v to sh's parked goroutine; it wakes with its locals and v. */
static void wake_and_check(shared *sh, long v)
{
    weft_chan_send(sh->c, &v);
    weft_wg_wait(&sh->done);
    cr_expect(sh->intact, "its locals changed while it was compacted");
    cr_expect_eq(sh->got, v, "the value sent to it is lost");
}

/* ---- a compacted goroutine wakes with its frames ------------------------------ */

static shared sh1;

static void locals_main(void *arg)
{
    (void)arg;
    spawn_compacted(&sh1, PARK_RECV);
    weft__stack *s = wait_compacted(&sh1);
    cr_expect_eq(resident_pages(s->lo, s->hi), 0, "a compacted stack's pages stay resident");
    cr_expect_not_null(s->copy);
    cr_expect_leq(s->hi - s->savedsp, 16 * 1024);
    /* The receive buffer and the local are on its stack: the send writes
     * into it (the waker brings it back first), and so does this thread (a
     * fault brings it back). */
    *sh1.local = 42;
    wake_and_check(&sh1, 1234);
}

Test(compact, a_compacted_goroutine_wakes_with_its_locals_and_pages_are_released, .timeout = 60)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(locals_main, NULL), 0);
}

/* ---- a reader outside finds its frames through the debug descriptor ------------ */

static shared sh7;

/* A field of the struct at addr, as the descriptor describes it. */
static uint64_t dfield(uint64_t addr, weft_debug_field f)
{
    uint64_t v = 0;
    memcpy(&v, (const char *)(uintptr_t)addr + f.off, f.size);
    return v;
}

static void descriptor_main(void *arg)
{
    (void)arg;
    const struct weft_debug_info *d = &weft_debug_info;
    spawn_compacted(&sh7, PARK_RECV);
    wait_compacted(&sh7);
    /* Only what the descriptor says, as gdb's extension reads it. */
    uint64_t g = (uint64_t)(uintptr_t)sh7.g;
    cr_assert_eq(dfield(g, d->g_sp), 0, "a compacted goroutine's sp is 0");
    uint64_t lo = dfield(g, d->g_stacklo), hi = dfield(g, d->g_stackhi), s = dfield(g, d->g_stack);
    cr_assert_eq(dfield(s, d->stack_cstate) & d->stack_state_mask, d->stack_state_compacted);
    uint64_t sp = dfield(s, d->stack_savedsp), copy = dfield(s, d->stack_copy);
    cr_assert(sp >= lo && sp + d->frame_size <= hi, "saved sp 0x%lx in [0x%lx, 0x%lx)",
              (unsigned long)sp, (unsigned long)lo, (unsigned long)hi);
    cr_assert_neq(copy, 0);
    cr_expect_eq(resident_pages(lo, hi), 0, "its pages are released: only the copy holds the frames");
    /* The switch frame, then the frame-pointer chain, read in the copy,
     * climb to weft__gentry, which called the goroutine's function. */
#define AT(a) (*(const uint64_t *)(uintptr_t)(copy + ((a) - sp)))
    uint64_t pc = AT(sp + d->frame_pc), fp = AT(sp + d->frame_fp);
    cr_assert(pc != 0 && pc != d->freshpc, "the pc it resumes at: 0x%lx", (unsigned long)pc);
    int frames = 0;
    bool ingentry = false;
    while (fp >= sp + d->frame_size && fp + 16 <= hi && frames < 64) {
        uint64_t ret = AT(fp + 8);
        ingentry |= ret > d->gentry && ret < d->gentry + 256;
        frames++;
        uint64_t next = AT(fp);
        if (next <= fp)
            break;
        fp = next;
    }
#undef AT
    cr_expect_geq(frames, 3, "%d frames in the copy", frames);
    cr_expect(ingentry, "the chain in the copy does not reach weft__gentry (%d frames)", frames);
    *sh7.local = 42;        /* what parked_main expects of a receive */
    wake_and_check(&sh7, 3);
}

Test(compact, the_debug_descriptor_finds_a_compacted_goroutines_frames_in_the_copy, .timeout = 60)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(descriptor_main, NULL), 0);
}

/* ---- select: a sender writes into the compacted receiver's buffer -------------- */

static shared sh2;

static void select_main(void *arg)
{
    (void)arg;
    spawn_compacted(&sh2, PARK_SELECT);
    wait_compacted(&sh2);
    wake_and_check(&sh2, 99);
}

Test(compact, a_sender_writes_into_a_compacted_select, .timeout = 60)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(select_main, NULL), 0);
}

/* ---- sleeps and timeouts: their commit reads the stack ------------------------- */

static shared sh3, sh4;

static void timed_main(void *arg)
{
    (void)arg;
    spawn_compacted(&sh3, PARK_SLEEP);
    spawn_compacted(&sh4, PARK_TIMEOUT);
    wait_compacted(&sh3);
    wait_compacted(&sh4);
    weft_wg_wait(&sh3.done);
    weft_wg_wait(&sh4.done);
    cr_expect(sh3.intact);
    cr_expect(sh4.intact);
    cr_expect_eq(sh3.got, 7);
    cr_expect_eq(sh4.got, 8);
}

Test(compact, sleeps_and_timeouts_wake_compacted_goroutines, .timeout = 60)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(timed_main, NULL), 0);
}

/* ---- another thread reads and writes a compacted goroutine's local ------------- */

static shared sh5;
static long thread_read;

static void *foreign(void *arg)
{
    (void)arg;
    volatile long *p = sh5.local;
    thread_read = *p;       /* faults: the stack comes back */
    *p = 42;
    return NULL;
}

static void foreign_main(void *arg)
{
    (void)arg;
    spawn_compacted(&sh5, PARK_RECV);
    weft__stack *s = wait_compacted(&sh5);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, foreign, NULL), 0);
    weft_syscall_enter();
    pthread_join(t, NULL);
    weft_syscall_exit();
    cr_expect_eq(thread_read, 1, "a plain thread read %ld, not the local's 1", thread_read);
    cr_expect_eq(STACK_STATE(AO_load(&s->cstate)), STACK_RESIDENT, "the access did not bring the stack back");
    cr_expect_gt(resident_pages(s->lo, s->hi), 0);
    long v = 5;
    weft_chan_send(sh5.c, &v);
    weft_wg_wait(&sh5.done);
    cr_expect(sh5.intact, "the goroutine did not see the plain thread's write");
    cr_expect_eq(sh5.got, 5);
}

Test(compact, a_plain_thread_reads_and_writes_a_compacted_local, .timeout = 60)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(foreign_main, NULL), 0);
}

/* ---- its traceback is whole ------------------------------------------------------ */

static shared sh6;
static char tb[16384];

static void traceback_main(void *arg)
{
    (void)arg;
    spawn_compacted(&sh6, PARK_RECV);
    weft__stack *s = wait_compacted(&sh6);
    int n = weft_stack(tb, sizeof tb - 1, true);
    tb[n > 0 ? n : 0] = 0;
    cr_expect_eq(STACK_STATE(AO_load(&s->cstate)), STACK_COMPACTED, "the traceback brought the stack back");
    *sh6.local = 42;
    long v = 3;
    weft_chan_send(sh6.c, &v);
    weft_wg_wait(&sh6.done);
    cr_expect(sh6.intact);
    cr_expect_not_null(strstr(tb, "weft_chan_recv"), "traceback:\n%s", tb);
    cr_expect_not_null(strstr(tb, "parked_main"), "traceback:\n%s", tb);
    cr_expect_not_null(strstr(tb, "created by"), "traceback:\n%s", tb);
}

Test(compact, the_traceback_of_a_compacted_goroutine_is_whole, .timeout = 60)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(traceback_main, NULL), 0);
}

/* ---- hand-offs between compacted goroutines, on every P ----------------------- */

#define PAIRS 16
#define ROUNDS 3000

static atomic_int pair_errors;
static weft_wg pairs_done = WEFT_WG_INIT;

typedef struct { weft_chan *c, *quit; bool useselect; } pairchans;

static void producer(void *arg)
{
    pairchans *p = arg;
    for (long i = 1; i <= ROUNDS; i++) {
        long v = i;     /* on the producer's stack: the receiver reads it there */
        if (p->useselect) {
            weft_case cs[2] = { { .ch = p->c, .dir = WEFT_SEND, .elem = &v },
                                { .ch = p->quit, .dir = WEFT_RECV, .elem = NULL } };
            if (weft_select(cs, 2, -1) != 0)
                atomic_fetch_add(&pair_errors, 1);
        } else {
            weft_chan_send(p->c, &v);
        }
    }
    weft_wg_done(&pairs_done);
}

static void consumer(void *arg)
{
    pairchans *p = arg;
    for (long i = 1; i <= ROUNDS; i++) {
        long v = 0;     /* on the consumer's stack: a sender writes it there */
        if (p->useselect) {
            weft_case cs[2] = { { .ch = p->quit, .dir = WEFT_RECV, .elem = NULL },
                                { .ch = p->c, .dir = WEFT_RECV, .elem = &v } };
            if (weft_select(cs, 2, -1) != 1)
                atomic_fetch_add(&pair_errors, 1);
        } else {
            weft_chan_recv(p->c, &v);
        }
        if (v != i)
            atomic_fetch_add(&pair_errors, 1);
    }
    weft_wg_done(&pairs_done);
}

static pairchans pc[PAIRS];

static void pairs_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_attr a = { .compact = 1 };
    weft_wg_add(&pairs_done, 2 * PAIRS);
    for (int i = 0; i < PAIRS; i++) {
        pc[i].c = weft_chan_new(sizeof(long), 0);
        pc[i].quit = weft_chan_new(0, 0);
        pc[i].useselect = i % 2;
        cr_assert_gt(weft_go_attr(&a, producer, &pc[i]), 0);
        cr_assert_gt(weft_go_attr(&a, consumer, &pc[i]), 0);
    }
    weft_wg_wait(&pairs_done);
    cr_expect_eq(atomic_load(&pair_errors), 0, "%d values lost or wrong", atomic_load(&pair_errors));
}

Test(compact, hand_offs_between_compacted_goroutines_lose_nothing, .timeout = 120)
{
    cr_assert_eq(weft_main(pairs_main, NULL), 0);
}

/* ---- a chain of relays, each receiving into and sending from its stack --------- */

#define RELAYS 32
#define CHAIN_VALUES 2000

static weft_chan *chain[RELAYS + 1];

static void chain_gen(void *arg)
{
    (void)arg;
    for (long i = 1; i <= CHAIN_VALUES; i++)
        weft_chan_send(chain[0], &i);
}

static void relay(void *arg)
{
    long k = (long)(intptr_t)arg;
    long v;
    while (weft_chan_recv(chain[k], &v))
        weft_chan_send(chain[k + 1], &v);
}

static void chain_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_attr a = { .compact = 1 };
    for (int k = 0; k <= RELAYS; k++)
        chain[k] = weft_chan_new(sizeof(long), 0);
    for (long k = 0; k < RELAYS; k++)
        cr_assert_gt(weft_go_attr(&a, relay, (void *)(intptr_t)k), 0);
    cr_assert_gt(weft_go_attr(&a, chain_gen, NULL), 0);
    int wrong = 0;
    for (long i = 1; i <= CHAIN_VALUES; i++) {
        long v = 0;
        weft_chan_recv(chain[RELAYS], &v);
        wrong += v != i;
    }
    cr_expect_eq(wrong, 0, "%d of %d values came out wrong", wrong, CHAIN_VALUES);
}

Test(compact, a_chain_of_compacted_relays_passes_every_value, .timeout = 120)
{
    cr_assert_eq(weft_main(chain_main, NULL), 0);
}

/* ---- children use a compacted parent's locals, all at once --------------------- */

#define CHILDREN 8
#define BUMPS 2000

typedef struct { weft_wg *wg; atomic_long *count; G *parent; } lent;

static void child(void *arg)
{
    lent *l = arg;
    /* Let the parent park and its stack be compacted. */
    for (int i = 0; i < 200 && STACK_STATE(AO_load(&l->parent->stack->cstate)) != STACK_COMPACTED; i++)
        weft_sleep(1000 * 1000);
    for (int i = 0; i < BUMPS; i++)
        atomic_fetch_add(l->count, 1);     /* on the parent's stack */
    weft_wg_done(l->wg);                   /* so is the wait group */
}

static long lent_total;
static uintptr_t lent_lo, lent_hi;  /* a parent's stack, guard included */

/* The mapping that holds addr, from /proc/self/maps: [*lo, *hi). */
static void mapping_of(uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    *lo = *hi = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && addr >= a && addr < b) {
            *lo = a;
            *hi = b;
        }
    }
    if (f)
        fclose(f);
}

__attribute__((noinline)) static void parent(void *arg)
{
    (void)arg;
    weft_wg wg = WEFT_WG_INIT;
    atomic_long count = 0;
    lent l = { .wg = &wg, .count = &count, .parent = weft__getg() };
    lent_lo = l.parent->stack->guardlo;
    lent_hi = l.parent->stack->hi;
    weft_wg_add(&wg, CHILDREN);
    for (int i = 0; i < CHILDREN; i++)
        weft_go(child, &l);
    weft_wg_wait(&wg);
    lent_total = atomic_load(&count);
}

static void lent_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_attr a = { .compact = 1 };
    weft_wg done = WEFT_WG_INIT;
    for (int round = 0; round < 20; round++) {
        lent_total = 0;
        weft_wg_add(&done, 1);
        int64_t id = weft_go_attr(&a, parent, NULL);
        cr_assert_gt(id, 0);
        while (lent_total == 0)
            weft_sleep(1000 * 1000);
        cr_assert_eq(lent_total, CHILDREN * BUMPS, "round %d: %ld of %d increments seen", round,
                     lent_total, CHILDREN * BUMPS);
        weft_wg_done(&done);
    }
    weft_wg_wait(&done);
    /* The read-only spell of a compaction and the inaccessible one of a
     * restore split the slab's mapping; both end by merging it again. */
    uintptr_t lo, hi;
    mapping_of(lent_lo, &lo, &hi);
    cr_expect(lo <= lent_lo && hi >= lent_hi && hi - lo > lent_hi - lent_lo, "a stack's slab is split: [%p, %p) in [%p, %p)",
              (void *)lent_lo, (void *)lent_hi, (void *)lo, (void *)hi);
}

Test(compact, children_update_a_compacted_parents_locals_together, .timeout = 120)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(lent_main, NULL), 0);
}

/* ---- a reader never sees a stack being released as zeros ------------------------ */

#define WATCH_ROUNDS 200
#define WATCHED 0x5eedL

/* The compacted goroutine's channel, and a local of its own. */
typedef struct { weft_chan *c; volatile long *local; } watchedg;

static watchedg wg1;
static atomic_bool watching;
static atomic_long watch_reads, watch_wrong;

/* A plain thread that reads the goroutine's local all the time, through
 * each compaction (it faults while the stack is inaccessible or
 * released, and brings it back). */
static void *watcher(void *arg)
{
    (void)arg;
    while (atomic_load(&watching)) {
        long v = *wg1.local;
        atomic_fetch_add(&watch_reads, 1);
        if (v != WATCHED)
            atomic_fetch_add(&watch_wrong, 1);
    }
    return NULL;
}

/* Parks WATCH_ROUNDS times with WATCHED in a local. */
__attribute__((noinline)) static void watched_main(void *arg)
{
    watchedg *w = arg;
    volatile long local = WATCHED;
    w->local = &local;
    long v;
    for (int r = 0; r < WATCH_ROUNDS; r++)
        weft_chan_recv(w->c, &v);
    w->local = NULL;    /* the watcher has stopped before the last wake */
}

static void watch_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    wg1.c = weft_chan_new(sizeof(long), 0);
    weft_attr a = { .compact = 1 };
    atomic_store(&watching, true);
    cr_assert_gt(weft_go_attr(&a, watched_main, &wg1), 0);
    while (!wg1.local)
        weft_sleep(1000 * 1000);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, watcher, NULL), 0);
    int compacted = 0;
    for (long r = 0; r < WATCH_ROUNDS; r++) {
        /* Wake it once its stack has been compacted (and, as the watcher
         * keeps reading it, brought back), or after a while. */
        uint64_t before = weft__stack_ncompacted();
        for (int i = 0; i < 200 && weft__stack_ncompacted() == before; i++)
            weft_sleep(1000 * 1000);
        compacted += weft__stack_ncompacted() != before;
        if (r == WATCH_ROUNDS - 1) {
            /* Its last wake ends it: no reads of its stack after that. */
            atomic_store(&watching, false);
            weft_syscall_enter();
            pthread_join(t, NULL);
            weft_syscall_exit();
        }
        weft_chan_send(wg1.c, &r);
    }
    cr_expect_gt(compacted, WATCH_ROUNDS / 2, "only %d of %d parks were compacted", compacted,
                 WATCH_ROUNDS);
    cr_expect_eq(atomic_load(&watch_wrong), 0, "%ld of %ld reads saw something else than the local",
                 atomic_load(&watch_wrong), atomic_load(&watch_reads));
}

Test(compact, a_reader_never_sees_a_stack_being_released_as_zeros, .timeout = 120)
{
    NEED_COMPACTION();
    cr_assert_eq(weft_main(watch_main, NULL), 0);
}
