/*
 * stack.c — goroutine stacks.
 *
 * Every stack has a guard region below it; running into it is reported as
 * "goroutine N stack overflow" by the SIGSEGV handler (os/linux.c), never
 * silent corruption.  Default-size stacks come from slabs of SLAB_STACKS;
 * their descriptors (weft__stack) live in the slab's record, off the
 * stacks, so that a stack nobody has run on is memory nobody has touched:
 *
 *   slab:    [guard][   stack 0   ][guard][   stack 1   ] ...
 *   record:  base, nstacks, desc[0], desc[1], ...   (malloc)
 *
 * Memory is reserved with MAP_NORESERVE and committed by the kernel page by
 * page as a goroutine touches it, so a goroutine that has run costs about
 * one page, and one that has not run yet costs none.
 *
 * Hot and cold stacks.  A stack is cold until a goroutine first runs on it
 * and hot from then on (its top page is resident).  weft_go takes a cold
 * stack when it can, so that a goroutine waiting in a run queue holds no
 * resident memory; when it first runs (weft__stackwarm, from gogo) it trades
 * its cold stack for a hot one if its P has one, the most recently freed
 * first.  A goroutine that ends gives its stack back at once (gfput), so
 * the next goroutine to start reuses those pages while they are still in
 * the cache.  The pages a program touches are then the peak of goroutines
 * running or blocked, not of goroutines spawned: skynet, whose run queues
 * hold most of its goroutines, touches a fraction of the pages it did
 * when every spawn took (and so touched) a stack of its own.  Taking the
 * stack at spawn rather than at first run keeps weft_go's -ENOMEM: a
 * goroutine that was created has the stack it will run on, or a cold one
 * it can always fall back to.
 *
 * Guard pages at scale.  An mprotect'ed guard page splits its mapping, so
 * each guarded stack costs two VMAs and vm.max_map_count (65530 by default)
 * caps live goroutines near 32 K.  Linux 6.13 added MADV_GUARD_INSTALL,
 * which marks guard pages in the page tables without splitting the VMA: a
 * slab of any number of stacks stays one mapping.  weft uses it when the
 * kernel has it, a slab's 64 guards in one process_madvise call where the
 * kernel takes that (6.15).  On older kernels it falls back to mprotect and refuses
 * (-ENOMEM) to create a stack once the guards would use more than half of
 * vm.max_map_count, rather than run a stack without a guard.
 *
 * Free stacks wait in per-P caches (a hot and a cold one), then in global
 * hot and cold lists; slab memory is only unmapped when the runtime shuts
 * down.  Odd-size stacks (weft_attr.stack_size) get their own mapping,
 * with their descriptor at its top, and are unmapped when their goroutine
 * ends.
 *
 * Guard pages and core files.  The kernel's core dump skips guard pages
 * and holds every stack.  gdb's gcore does not: it copies each mapping
 * through /proc/PID/mem in 1 MiB pieces and abandons the rest of a
 * mapping at the first piece that fails to read, and any piece that
 * touches a guard page fails, so a gcore of a slab would hold zeros.
 * gdb's extension (tools/gdb/weft-gdb.py) therefore hooks gcore: with
 * every thread stopped it calls weft__stack_guards(1) (found through the
 * debug descriptor, debuginfo.c) to lift the guards, lets gcore copy the
 * slabs whole, and calls weft__stack_guards(0) to put them back before
 * the program runs again.
 *
 * Compacting parked stacks.  A parked goroutine still holds its stack's
 * top page (4 KiB), though its live frames are a few hundred bytes.  A
 * goroutine spawned with weft_attr.compact (or every one, with
 * SCHEDDEBUG=compactstacks=1) gives the page back while it is parked:
 *
 *   1. Its park's after-action (sched.c), before the unlockf lets anyone
 *      wake it, marks the stack PENDING (the park's number in the state
 *      word, the saved SP kept in the descriptor, the G's sp NULL) and,
 *      after the unlockf, queues it in its M's batch.
 *   2. The M compacts the stacks of its batch whose goroutines have been
 *      parked for 10 ms (COMPACT_AGE), when it next parks one or passes
 *      through g0, or, idle, when it wakes for them (sched.c's msleep); a
 *      goroutine woken sooner costs no compaction at all (a contended
 *      mutex's waiters were compacted and restored at every wait:
 *      test_sync's torture took 18 s to over 120 s under load instead of
 *      1.6).  A batch of 64 goroutines all parked more recently, a burst
 *      of parks that last (a million spawned to wait), is compacted at
 *      once.  Compacting: each
 *      run of adjacent stacks is made read-only, each stack's live part,
 *      [saved SP, top), is copied to the heap (a few hundred bytes), and
 *      the run is made inaccessible, released with one
 *      MADV_GUARD_INSTALL, which frees the pages and makes any access
 *      fault, and made writable again (which merges the slab's mapping
 *      back into one).  Per run, not per stack:
 *      each of these flushes the other CPUs' TLBs, tens of microseconds.
 *   3. The M about to run it (gogo finds its sp NULL: weft__gstart) takes
 *      a PENDING stack back as it is, or restores it at the same addresses
 *      (C frames cannot move): the stack is made inaccessible, the guard
 *      removed, the frames written back through /proc/self/mem (which
 *      writes where the program may not, as a debugger does), and the
 *      stack made accessible again.
 *   4. A waker about to move a value into or out of its stack (chan.c:
 *      a receive buffer, a value to send, a close's zeroing) takes the
 *      stack back the same way first (weft__stack_pin), so nothing of
 *      weft's touches a stack while it is being copied out.  (Without
 *      this step, relays lost values.)  The hand-off tests one byte for
 *      it, which it tested for the race detector before, and a park one
 *      flag, together with g0's: a program that compacts nothing pays
 *      nothing measurable (weft__chanhooks, AFTER_PARK_COMPACT).
 *   5. Any other access — another thread or goroutine using a pointer to
 *      one of its locals — faults on the guard; the SIGSEGV handler
 *      (os/linux.c) recognises a compacted stack, brings it back and
 *      returns, and the access is retried.  Tracebacks read the copy
 *      instead (the unwinder's delta), and a crash or a debugger's gcore
 *      bring every stack back first (weft__stack_restoreall).
 *
 * So every user-mode access to a parked stack, from any thread, at any
 * moment, is either served in place or faults and waits: a write during
 * the copy (read-only) and any access during the release (inaccessible)
 * until the stack is COMPACTED, any access during a restore
 * (inaccessible) until it is RESIDENT.  What is not served is an access
 * by the kernel: a system call given a pointer into a compacted stack
 * (read(fd, buf) on another thread) fails with EFAULT, since no signal
 * is raised for it.  That is why compaction is opt-in, with Go's
 * contract: while the goroutine is parked, no system call touches its
 * stack.
 * Under AddressSanitizer, ThreadSanitizer and valgrind, whose shadow of the
 * stack would not follow the copy, and on kernels without
 * MADV_GUARD_INSTALL, nothing is compacted.  Stacks whose live part
 * exceeds 16 KiB, and odd-size stacks, are left alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "runtime.h"
#include "race.h"

/* Tell valgrind about our stacks, so it does not take every switch for a
 * wild stack-pointer change.  The requests cost a few no-op instructions
 * when not running under valgrind; the header is a build dependency. */
#include <valgrind/valgrind.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif
#ifndef PIDFD_SELF_PROCESS
#define PIDFD_SELF_PROCESS (-10001)    /* linux/pidfd.h: this thread group */
#endif

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define GUARD_SIZE  (64 * 1024)
#define SLAB_STACKS 64
/* The most live stack a compaction copies (the rest of a parked stack is
 * dead); a goroutine parked deeper keeps its pages. */
#define COMPACT_MAX (16 * 1024)
/* How long a goroutine stays parked before its stack is compacted: a
 * shorter wait (a contended mutex, a busy channel) would pay a compaction
 * and a restore, tens of microseconds of TLB flushes, to save a page for
 * less time than that costs. */
#define COMPACT_AGE (10 * 1000 * 1000)

enum { GUARD_UNKNOWN = 0, GUARD_MADVISE, GUARD_MPROTECT };

size_t weft__stack_default = WEFT_STACK_DEFAULT;

/* A slab mapping.  The list of them is prepended under stacklock and read
 * without it by weft__stack_guards, which a debugger calls while every
 * thread is stopped, possibly one inside stacklock. */
typedef struct slab {
    uintptr_t base;         /* const */
    int nstacks;            /* const: stacks carved in it, each above its guard */
    struct slab *next;      /* const after publication: the next older slab */
    weft__stack desc[SLAB_STACKS]; /* the descriptors of its stacks */
} slab;

static weft__mutex stacklock = WEFT__MUTEX_INIT(LOCKRANK_STACK);
/* The global free lists of default-size stacks, hot (run on before) and
 * cold (never run on); nfreehot is also read without the lock, as a hint. */
static weft__stack *freehot, *freecold; /* stacklock */
static AO_t nfreehot;               /* stacklock to write; read racily */
static int32_t nfreecold;           /* stacklock */
static AO_t slabs;                  /* stacklock to write: the newest slab * */
static size_t slabslot;             /* const after init: GUARD_SIZE + default stack */
static int guardmode;               /* const after init */
static AO_t nmprotected;            /* atomic: guards made with mprotect */
static AO_t ncompactions;           /* atomic: stacks ever compacted (the fault handler's
                                     * fast "none" and the tests) */
static long mprotect_budget;        /* const after init */
static size_t pagesz;               /* const after init */

static long read_max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

int weft__stackinit(void)
{
    /* weft's own, under stacklock (a futex helgrind and DRD cannot see)
     * or atomic (race.h). */
    weft__race_untrack(&stacklock, sizeof stacklock);
    weft__race_untrack(&freehot, sizeof freehot);
    weft__race_untrack(&freecold, sizeof freecold);
    weft__race_untrack(&nfreehot, sizeof nfreehot);
    weft__race_untrack(&nfreecold, sizeof nfreecold);
    weft__race_untrack(&slabs, sizeof slabs);
    weft__race_untrack(&nmprotected, sizeof nmprotected);
    slabslot = GUARD_SIZE + weft__stack_default;
    pagesz = (size_t)sysconf(_SC_PAGESIZE);
    if (guardmode != GUARD_UNKNOWN)
        return 0;
    /* Probe MADV_GUARD_INSTALL on a scratch mapping. */
    void *p = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    guardmode = madvise(p, 4096, MADV_GUARD_INSTALL) == 0 ? GUARD_MADVISE : GUARD_MPROTECT;
    munmap(p, 2 * 4096);
    mprotect_budget = read_max_map_count() / 4;   /* two VMAs per guard: half the map count */
    return 0;
}

static int install_guard(void *lo, size_t len)
{
    if (guardmode == GUARD_MADVISE)
        return madvise(lo, len, MADV_GUARD_INSTALL) == 0 ? 0 : -ENOMEM;
    /* fetch_and_add: a budget counter, no ordering needed */
    if ((long)AO_fetch_and_add1(&nmprotected) >= mprotect_budget) {
        AO_fetch_and_sub1(&nmprotected);
        return -ENOMEM;
    }
    if (mprotect(lo, len, PROT_NONE) != 0) {
        AO_fetch_and_sub1(&nmprotected);
        return -ENOMEM;
    }
    return 0;
}

/* The guards of a new slab of SLAB_STACKS stacks at base, in one
 * process_madvise call on this process (PIDFD_SELF, Linux 6.15) rather
 * than one madvise per stack: a quarter of the kernel time per stack
 * here (0.5 against 1.7 us), which skynet's 70 000 stacks and idle1m's
 * million notice.  Returns how many stacks from the slab's start have
 * their guard; the caller installs the rest one by one (an older kernel
 * refuses the call: EINVAL, ESRCH or EBADF for the pidfd, or ENOSYS).
 * A refusal is remembered, so that such a kernel (or valgrind, which
 * does not know the call and warns at each one) is asked once. */
static int install_guards_batch(uintptr_t base)
{
#if defined(SYS_process_madvise)
    /* Relaxed: a hint; a thread that has not seen it yet asks again. */
    static AO_t refused;
    if (AO_load(&refused))
        return 0;
    struct iovec iov[SLAB_STACKS];
    for (int i = 0; i < SLAB_STACKS; i++) {
        iov[i].iov_base = (void *)(base + (size_t)i * slabslot);
        iov[i].iov_len = GUARD_SIZE;
    }
    long done = syscall(SYS_process_madvise, PIDFD_SELF_PROCESS, iov, (size_t)SLAB_STACKS,
                        MADV_GUARD_INSTALL, 0u);
    if (done < 0 && errno != ENOMEM && errno != EAGAIN && errno != EINTR)
        AO_store(&refused, 1);
    return done > 0 ? (int)(done / GUARD_SIZE) : 0;
#else
    (void)base;
    return 0;
#endif
}

/* A stack registered with valgrind (none under DRD: race.c). */
static unsigned vgregister(uintptr_t lo, uintptr_t hi)
{
    return weft__race_drd ? 0 : VALGRIND_STACK_REGISTER(lo, hi);
}

static void vgderegister(unsigned id)
{
    /* 0 would be valgrind's own main stack, not one of ours */
    if (!weft__race_drd)
        VALGRIND_STACK_DEREGISTER(id);
}

/* Fills in the descriptor s of the stack [base + GUARD_SIZE, top) whose
 * guard starts at base. */
static void describe(weft__stack *s, uintptr_t base, uintptr_t top, size_t size, uint8_t kind)
{
    s->guardlo = base;
    s->lo = base + GUARD_SIZE;
    s->hi = top;
    s->size = size;
    s->kind = kind;
    s->hot = false;
    s->next = NULL;
    s->vgid = vgregister(s->lo, s->hi);
    AO_store(&s->cstate, STACK_RESIDENT);   /* not published yet */
    s->savedsp = 0;
    s->copy = NULL;
    /* weft's own, handed between Ps through caches helgrind and DRD
     * cannot see (race.h); a slab's record is untracked whole. */
    if (kind == STACK_OWN)
        weft__race_untrack(s, sizeof *s);
}

/* stacklock held: maps a new slab and puts its stacks on the cold list. */
static int newslab(void)
{
    slab *sl = malloc(sizeof *sl);
    if (!sl)
        return -ENOMEM;
    size_t len = (size_t)SLAB_STACKS * slabslot;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(sl);
        return -ENOMEM;
    }
    int made = 0;
    int guarded = guardmode == GUARD_MADVISE ? install_guards_batch((uintptr_t)p) : 0;
    for (int i = 0; i < SLAB_STACKS; i++) {
        uintptr_t base = (uintptr_t)p + (size_t)i * slabslot;
        if (i >= guarded && install_guard((void *)base, GUARD_SIZE) != 0)
            break;
        weft__stack *s = &sl->desc[i];
        describe(s, base, base + slabslot, weft__stack_default, STACK_SLAB);
        s->next = freecold;
        freecold = s;
        nfreecold++;
        made++;
    }
    if (made == 0) {
        munmap(p, len);
        free(sl);
        return -ENOMEM;
    }
    sl->base = (uintptr_t)p;
    sl->nstacks = made;
    weft__race_untrack(sl, sizeof *sl);     /* weft's own (race.h), as describe says */
    sl->next = (slab *)AO_load(&slabs);
    /* store-release: publishes the record to weft__stack_guards, which
     * reads the head without stacklock (it reads it plainly too: every
     * thread is stopped then, but the record must be complete in memory
     * before the head names it) */
    AO_store_release(&slabs, (AO_t)sl);
    return 0;
}

/* stacklock held: takes a stack off the global hot (hot = true) or cold
 * list, NULL if that list is empty. */
static weft__stack *listget(bool hot)
{
    weft__stack *s = hot ? freehot : freecold;
    if (!s)
        return NULL;
    if (hot) {
        freehot = s->next;
        /* store: the lock orders it; racy readers only take it as a hint */
        AO_store(&nfreehot, AO_load(&nfreehot) - 1);
    } else {
        freecold = s->next;
        nfreecold--;
    }
    return s;
}

/* stacklock held: puts s on the global list of its kind. */
static void listput(weft__stack *s)
{
    if (s->hot) {
        s->next = freehot;
        freehot = s;
        AO_store(&nfreehot, AO_load(&nfreehot) + 1);   /* see listget */
    } else {
        s->next = freecold;
        freecold = s;
        nfreecold++;
    }
}

/* A P's cache of hot or cold stacks: a LIFO array, so the most recently
 * freed stack, whose pages are most likely still cached, goes first. */
static weft__stack **cache(P *pp, bool hot, int32_t **n, int32_t *cap)
{
    *n = hot ? &pp->nstackcache : &pp->nstackcold;
    *cap = hot ? P_STACK_CACHE : P_STACK_COLD;
    return hot ? pp->stackcache : pp->stackcold;
}

/* The slow path of taking a stack of the kind asked for from pp's cache:
 * it is empty; refill it halfway from the global list (and, for a cold
 * one, from a new slab when the global list is empty too).  NULL if there
 * is none. */
static weft__stack *cacheget(P *pp, bool hot)
{
    int32_t *n, cap;
    weft__stack **c = cache(pp, hot, &n, &cap);
    if (*n > 0)
        return c[--*n];
    weft__lock(&stacklock);
    if (!hot && !freecold)
        newslab();      /* may fail: the caller falls back to a hot stack */
    while (*n < cap / 2) {
        weft__stack *s = listget(hot);
        if (!s)
            break;
        c[(*n)++] = s;
    }
    weft__unlock(&stacklock);
    return *n > 0 ? c[--*n] : NULL;
}

/* The slow path of putting s in pp's cache of its kind: the cache is
 * full; spill its older half to the global list. */
static void cacheput(P *pp, weft__stack *s)
{
    int32_t *n, cap;
    weft__stack **c = cache(pp, s->hot, &n, &cap);
    if (*n < cap) {
        c[(*n)++] = s;
        return;
    }
    weft__lock(&stacklock);
    /* Spill the oldest half (the bottom of the LIFO), keep the newest. */
    int32_t half = cap / 2;
    for (int32_t i = 0; i < half; i++)
        listput(c[i]);
    /* ThreadSanitizer sees this memmove (an interceptor) but not how the
     * P, and its cache, went from the thread of the last spill to this
     * one: the spills of one P's cache are ordered for it here. */
    weft__race_acquire(c);
    memmove(c, c + half, (size_t)(*n - half) * sizeof *c);
    weft__race_release(c);
    *n -= half;
    weft__unlock(&stacklock);
    c[(*n)++] = s;
}

/* weft__stackalloc's slow path for a default-size stack. */
static weft__stack *allocslow(P *pp)
{
    weft__stack *s = NULL;
    if (pp) {
        s = cacheget(pp, false);
        return s ? s : cacheget(pp, true);
    }
    /* A plain thread's spawn: straight from the global lists. */
    weft__lock(&stacklock);
    if (!freecold)
        newslab();
    s = listget(false);
    if (!s)
        s = listget(true);
    weft__unlock(&stacklock);
    return s;
}

weft__stack *weft__stackalloc(P *pp, size_t size)
{
    if (likely(size == weft__stack_default)) {
        if (likely(pp && pp->nstackcold > 0))
            return pp->stackcold[--pp->nstackcold];
        return allocslow(pp);
    }
    size_t len = GUARD_SIZE + size;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (install_guard(p, GUARD_SIZE) != 0) {
        munmap(p, len);
        return NULL;
    }
    /* An odd-size stack is touched at once anyway (it is never cold for
     * long): its descriptor sits at its own top. */
    uintptr_t top = (uintptr_t)p + len;
    weft__stack *s = (weft__stack *)((top - sizeof(weft__stack)) & ~(uintptr_t)(CACHELINE - 1));
    describe(s, (uintptr_t)p, (uintptr_t)s, size, STACK_OWN);
    s->hot = true;
    return s;
}

/* Makes a cold stack's top page resident before its goroutine first runs
 * there.  The goroutine's first frame would fault it in anyway; asking
 * the kernel for it (MADV_POPULATE_WRITE, Linux 5.14) does the kernel's
 * part of the work without the trap.  In the VM weft is measured on a
 * first touch costs 17 µs, and a populate 3.3 µs plus 9 µs at the first
 * touch after it (the hypervisor's own page tables): a million goroutines
 * spawned and parked (bench_idle1m) take about a fifth less time.  On bare
 * metal the two are about even.  A kernel without it says EINVAL once and
 * is not asked again. */
static AO_t nopopulate;     /* atomic, a hint: set once, read racily */
static void populate_top(weft__stack *s)
{
    if (AO_load(&nopopulate))
        return;
    int saved = errno;      /* the goroutine being left may be reading it */
    if (madvise((void *)(s->hi - pagesz), pagesz, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        AO_store(&nopopulate, 1);
    errno = saved;
}

/* weft__stackwarmup's slow path (runtime.h): s is cold and pp's hot cache
 * is empty or its cold cache full. */
weft__stack *weft__stackwarm(P *pp, weft__stack *s)
{
    /* A hot stack on the global list, put there when another P's
     * goroutines ended (nfreehot: a racy hint, so that the lock is taken
     * only when there is one to take), or a full cold cache. */
    if (pp && (pp->nstackcache > 0 || AO_load(&nfreehot) > 0)) {
        weft__stack *h = cacheget(pp, true);
        if (h) {
            cacheput(pp, s);
            return h;
        }
    }
    s->hot = true;
    populate_top(s);
    return s;
}

void weft__stackfree(P *pp, weft__stack *s)
{
    if (likely(pp && s->kind == STACK_SLAB)) {
        if (likely(s->hot && pp->nstackcache < P_STACK_CACHE)) {
            pp->stackcache[pp->nstackcache++] = s;
            return;
        }
        cacheput(pp, s);
        return;
    }
    if (s->kind == STACK_OWN) {
        vgderegister(s->vgid);
        bool mprot = guardmode == GUARD_MPROTECT;
        /* AddressSanitizer keeps its shadow of unmapped memory: clear the
         * redzones of the frames left on it, or the next mapping at this
         * address inherits them */
        weft__asan_fresh_stack(s->lo, s->hi);
        munmap((void *)s->guardlo, GUARD_SIZE + s->size);
        if (mprot)
            AO_fetch_and_sub1(&nmprotected);
        return;
    }
    weft__lock(&stacklock);
    listput(s);
    weft__unlock(&stacklock);
}

void weft__stackcache_flush(P *pp)
{
    weft__lock(&stacklock);
    while (pp->nstackcache > 0)
        listput(pp->stackcache[--pp->nstackcache]);
    while (pp->nstackcold > 0)
        listput(pp->stackcold[--pp->nstackcold]);
    weft__unlock(&stacklock);
}

/* Shutdown: unmaps every slab (odd-size stacks are freed with their Gs). */
void weft__stackfreeall(void)
{
    weft__lock(&stacklock);
    slab *sl = (slab *)AO_load(&slabs);
    /* store: unpublished before the slabs go (any reader stopped the world) */
    AO_store(&slabs, 0);
    while (sl) {
        slab *next = sl->next;
        for (int k = 0; k < sl->nstacks; k++) {
            vgderegister(sl->desc[k].vgid);
            free(sl->desc[k].copy);     /* a goroutine that was still compacted */
        }
        weft__asan_fresh_stack(sl->base + GUARD_SIZE,
                               sl->base + (size_t)SLAB_STACKS * slabslot);   /* see stackfree */
        munmap((void *)sl->base, (size_t)SLAB_STACKS * slabslot);
        free(sl);
        sl = next;
    }
    if (guardmode == GUARD_MPROTECT)
        AO_store(&nmprotected, 0);
    freehot = freecold = NULL;
    AO_store(&nfreehot, 0);
    nfreecold = 0;
    weft__unlock(&stacklock);
}

bool weft__stack_guard_hit(G *gp, uintptr_t addr)
{
    weft__stack *s = gp->stack;
    return s && addr >= s->guardlo && addr < s->lo;
}

/* Own-mapping stacks of Gs still alive at shutdown. */
void weft__stackfree_own(weft__stack *s)
{
    if (s && s->kind == STACK_OWN)
        weft__stackfree(NULL, s);
}

/* For a debugger's gcore (see the top of this file): lift (lift = 1) or
 * put back (0) the guard regions of every slab and of every live
 * goroutine's own-size stack.  The debugger calls it with every thread
 * stopped, so it takes no lock (a stopped thread may hold any) and reads
 * the slab list and allg as published; a slab or stack still being set up
 * by a stopped thread is left as it is.  Returns the number of regions
 * changed, or -errno of the first madvise that failed.  Guards made with
 * mprotect need nothing: gdb skips a mapping nobody may read. */
int weft__stack_guards(int lift)
{
    if (guardmode != GUARD_MADVISE)
        return 0;
    /* Lifting a compacted stack's guard would leave zeros where its frames
     * were: bring them back first, so that the core holds them. */
    if (lift)
        weft__stack_restoreall();
    int n = 0, err = 0;
    /* load-acquire: pairs with newslab's store-release of the head */
    for (slab *sl = (slab *)AO_load_acquire(&slabs); sl; sl = sl->next) {
        if (lift) {
            /* one call clears every guard of the slab */
            if (madvise((void *)sl->base, (size_t)SLAB_STACKS * slabslot, MADV_GUARD_REMOVE) != 0)
                err = err ? err : -errno;
            else
                n += sl->nstacks;
            continue;
        }
        for (int k = 0; k < sl->nstacks; k++) {
            if (madvise((void *)(sl->base + (size_t)k * slabslot), GUARD_SIZE, MADV_GUARD_INSTALL) != 0)
                err = err ? err : -errno;
            else
                n++;
        }
    }
    /* load-acquire: pairs with allgadd's store-release, as in the dumps */
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        weft__stack *s = gp->stack;
        if (!s || s->kind != STACK_OWN)
            continue;
        if (madvise((void *)s->guardlo, GUARD_SIZE, lift ? MADV_GUARD_REMOVE : MADV_GUARD_INSTALL) != 0)
            err = err ? err : -errno;
        else
            n++;
    }
    return err ? err : n;
}

/* ---- compaction ---------------------------------------------------------------
 * See the top of this file ("Compacting parked stacks").  The state word
 * of a slab stack whose goroutine may be compacted:
 *
 *   RESIDENT    -> PENDING     the M that parked it, in the park's after-action,
 *                              before the unlockf (nobody can wake it yet); the
 *                              stack joins that M's batch
 *   PENDING     -> RESIDENT    the same M, if the park did not commit; or the M
 *                              about to run it, if it was woken first (CAS)
 *   PENDING     -> COMPACTING  the batch's M, when it compacts the batch (CAS)
 *   COMPACTING  -> COMPACTED   the same M, once the copy is whole and the
 *                              pages are released behind a guard
 *   COMPACTING  -> RESIDENT    the same M, if that failed (the pages are there)
 *   COMPACTED   -> RESTORING   whoever brings it back first (CAS): the M about
 *                              to run it, or the fault handler of a thread that
 *                              touched it
 *   RESTORING   -> RESIDENT    the restorer, once the copy is back in place
 *
 * Whoever finds COMPACTING or RESTORING waits for the next state: it lasts
 * a few system calls of a thread that holds no lock anyone else needs.
 *
 * Every park numbers the word anew (above the state's bits), and a batch
 * keeps the word of the park it was given.  A stack in a batch may have
 * been taken back since, and parked on again by the same or another M:
 * that park's unlockf may still be reading the stack (a select's), and
 * compacting it then would make the unlockf's read and a waker's access
 * race through a restore (between the guard's removal and the copy's
 * return, a second accessor sees zeros).  The park's number makes the
 * batch's CAS fail instead.  So, for weft's own accesses, one party at a
 * time touches a parked stack: the unlockf, then one waker, then the
 * runner. */

/* Compaction needs guards that do not split the mapping (one VMA for any
 * number of released stacks) and a process no sanitizer or valgrind
 * watches: their shadow of the stack would not follow the copy. */
static bool compactable(void)
{
    return guardmode == GUARD_MADVISE && !weft__asan && !weft__tsan && !weft__vgswitch &&
           !RUNNING_ON_VALGRIND;
}

/* /proc/self/mem, through which a restore writes the frames back into
 * pages nobody else may touch yet (see restore); opened by the first
 * compaction, kept for the life of the process.  -1: not yet, -2: it
 * cannot be opened (compaction then stays off). */
static AO_t memfd = (AO_t)-1;

static int procmem(void)
{
    int fd = (int)(intptr_t)AO_load(&memfd);     /* load: the CAS below publishes it */
    if (fd != -1)
        return fd;
    int nfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (nfd < 0)
        nfd = -2;
    /* CAS-full: one opener wins; a loser closes its own */
    if (!AO_compare_and_swap_full(&memfd, (AO_t)-1, (AO_t)(intptr_t)nfd) && nfd >= 0)
        close(nfd);
    return (int)(intptr_t)AO_load(&memfd);
}

/* Moves s, which the caller owns in its current state (COMPACTING or
 * RESTORING), to state, keeping its park's number.  store-release: what
 * the caller wrote (a copy, the frames) before the state that says so. */
static void cstateset(weft__stack *s, int state)
{
    AO_store_release(&s->cstate, STACK_WITHSTATE(AO_load(&s->cstate), state));
}

weft__stack *weft__stackcompact_begin(G *gp, AO_t *w)
{
    weft__stack *s = gp->stack;
    uintptr_t sp = (uintptr_t)gp->sp;
    if (s->kind != STACK_SLAB || s->hi - sp > COMPACT_MAX || !compactable() || procmem() < 0)
        return NULL;
    free(s->copy);      /* left by weft__stack_restoreall, if anything */
    s->copy = NULL;
    s->savedsp = sp;
    /* The next park's number, PENDING.  load: the stack is resident and
     * ours (its goroutine just left it); only a CAS with an older park's
     * word races with us, and fails. */
    *w = STACK_WITHSTATE(AO_load(&s->cstate) + 8, STACK_PENDING);
    /* store-release: savedsp before PENDING, for the batch's M that CASes
     * it; the unlockf's release and the waker's run-queue put publish both
     * to the M that runs gp next. */
    AO_store_release(&s->cstate, *w);
    /* gogo's slow path (weft__gstart) takes the stack back first. */
    gp->sp = NULL;
    return s;
}

void weft__stackcompact_cancel(G *gp, weft__stack *s)
{
    /* gp is ours again (its unlockf refused the park), still PENDING */
    weft__stackrestore(gp);
    (void)s;
}

void weft__stackcompact(M *m, weft__stack *s, AO_t w)
{
    int64_t now = weft__nanotime();
    m->cbatchw[m->ncbatch] = w;
    m->cbatcht[m->ncbatch] = now;
    m->cbatch[m->ncbatch++] = s;
    if (m->ncbatch == M_COMPACT_BATCH) {
        /* Room first from the goroutines woken since and those due; a
         * batch still full is a burst of parks that last (a million
         * goroutines spawned to wait): all of it. */
        weft__stackcompact_flush(m, false);
        if (m->ncbatch == M_COMPACT_BATCH)
            weft__stackcompact_flush(m, true);
    } else if (now - m->cbatcht[0] >= COMPACT_AGE) {
        weft__stackcompact_flush(m, false);
    }
}

bool weft__stackcompact_due(M *m)
{
    return m->ncbatch > 0 && weft__nanotime() - m->cbatcht[0] >= COMPACT_AGE;
}

int64_t weft__stackcompact_when(M *m)
{
    return m->ncbatch > 0 ? m->cbatcht[0] + COMPACT_AGE : 0;
}

/* Gives the stacks of a batch back to whoever runs them: the pages are
 * still there (store-release: pairs with the runner's load-acquire). */
static void unbatch(weft__stack **b, int n)
{
    for (int i = 0; i < n; i++) {
        free(b[i]->copy);
        b[i]->copy = NULL;
        cstateset(b[i], STACK_RESIDENT);
    }
}

/* The batch's goroutines are parked and visible to wakers, but a waker
 * that moves a value into or out of a parked goroutine's stack takes the
 * stack back first (weft__stack_pin, chan.c): from PENDING by a CAS that
 * makes ours fail, or, once we have it (COMPACTING), by waiting until it
 * is COMPACTED and restoring it.  Anyone else writing into a stack of the
 * batch while we copy it faults on the read-only run, and anyone reading
 * one while we release it on the inaccessible run, and waits the same
 * way.  Each step over a run flushes the other CPUs' TLBs (tens of
 * microseconds on a VM): paid once per run, not per stack. */
void weft__stackcompact_flush(M *m, bool all)
{
    weft__stack *b[M_COMPACT_BATCH];
    int n = 0, kept = 0;
    int64_t now = weft__nanotime();
    for (int i = 0; i < m->ncbatch; i++) {
        weft__stack *s = m->cbatch[i];
        AO_t w = m->cbatchw[i];
        /* load: a park's word never comes back once it has changed (the
         * goroutine was woken: its stack was taken back, or parked
         * again under a new number), so a stale entry can go at once */
        if (AO_load(&s->cstate) != w)
            continue;
        if (!all && now - m->cbatcht[i] < COMPACT_AGE) {
            /* Parked too recently: kept, in order, for a later flush. */
            m->cbatch[kept] = s;
            m->cbatchw[kept] = w;
            m->cbatcht[kept++] = m->cbatcht[i];
            continue;
        }
        /* CAS-full: the race with the runner's and the wakers' CAS from
         * this park's PENDING (a later park's word differs); the winner
         * reads savedsp after it */
        if (!AO_compare_and_swap_full(&s->cstate, w, STACK_WITHSTATE(w, STACK_COMPACTING)))
            continue;
        s->copy = malloc(s->hi - s->savedsp);
        if (!s->copy) {
            unbatch(&s, 1);
            continue;
        }
        b[n++] = s;
    }
    m->ncbatch = kept;
    /* In address order, so that adjacent stacks form runs. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && b[j - 1]->lo > b[j]->lo; j--) {
            weft__stack *t = b[j];
            b[j] = b[j - 1];
            b[j - 1] = t;
        }
    /* Release each run of adjacent stacks (the guard regions between
     * them are guards already). */
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && b[j]->guardlo == b[j - 1]->hi)
            j++;
        void *lo = (void *)b[i]->lo;
        size_t len = b[j - 1]->hi - b[i]->lo;
        /* fetch_and_add: counted before anything can fault, so that the
         * fault handler's fast "nothing was ever compacted" cannot miss it */
        AO_fetch_and_add(&ncompactions, (AO_t)(j - i));
        /* Read-only while we copy: a write from anywhere faults and waits
         * (the handler sees COMPACTING) rather than land after our copy
         * and be lost.  The mprotect splits the slab's mapping for as
         * long as it lasts; the one after the guard merges it again. */
        if (mprotect(lo, len, PROT_READ) != 0) {
            unbatch(b + i, j - i);
            i = j;
            continue;
        }
        for (int k = i; k < j; k++)
            memcpy(b[k]->copy, (void *)b[k]->savedsp, b[k]->hi - b[k]->savedsp);
        /* Inaccessible before the release, not just read-only: the
         * guard install first frees the pages and only then puts its
         * markers in the page tables (when it finds pages present it
         * zaps the range and tries again), so a read that lands between
         * the two is served by the kernel's zero page, with no fault.
         * A child reading its compacted parent's locals read 0 there
         * (a NULL pointer; 1 run in 10 to 40 under load).  With the run
         * inaccessible, that read faults and waits for COMPACTED, then
         * restores, as a write does. */
        bool released = mprotect(lo, len, PROT_NONE) == 0 &&
                        madvise(lo, len, MADV_GUARD_INSTALL) == 0;
        if (mprotect(lo, len, PROT_READ | PROT_WRITE) != 0)
            weft__throw("stack compaction: cannot make the stacks writable again");
        if (!released) {
            unbatch(b + i, j - i);
        } else {
            /* the copy is whole before anyone who loads COMPACTED
             * (acquire) reads it to restore */
            for (int k = i; k < j; k++)
                cstateset(b[k], STACK_COMPACTED);
        }
        i = j;
    }
}

/* Puts s's frames back at their addresses; s is RESTORING and ours.
 * Nobody may see the stack between the guard's removal and the frames'
 * return (a second accessor would read zeros or have its write
 * overwritten): it is inaccessible meanwhile, and the frames go back
 * through /proc/self/mem, which writes where the program may not (as a
 * debugger does).  Returns false if a step failed; the stack is then
 * still inaccessible, by its guard or its protection, and its copy
 * intact, so it may be marked COMPACTED again and restored later. */
static bool putback(weft__stack *s)
{
    size_t len = s->hi - s->savedsp;
    int fd = (int)(intptr_t)AO_load(&memfd);    /* load: opened before any compaction */
    return mprotect((void *)s->lo, s->size, PROT_NONE) == 0 &&
           madvise((void *)s->lo, s->size, MADV_GUARD_REMOVE) == 0 &&
           pwrite(fd, s->copy, len, (off_t)s->savedsp) == (ssize_t)len &&
           mprotect((void *)s->lo, s->size, PROT_READ | PROT_WRITE) == 0;
}

/* Brings s back if it is compacted, or waits for whoever is compacting or
 * restoring it; returns once its pages hold its frames.  Async-signal-safe. */
static void restore(weft__stack *s)
{
    for (int spins = 0;; spins++) {
        /* load-acquire: pairs with the store-releases of COMPACTED (the
         * copy is whole) and RESIDENT (the frames are back) */
        AO_t w = AO_load_acquire(&s->cstate);
        int st = STACK_STATE(w);
        if (st == STACK_RESIDENT || st == STACK_PENDING)
            return;
        /* CAS-full: one restorer; the others wait for RESIDENT */
        if (st == STACK_COMPACTED &&
            AO_compare_and_swap_full(&s->cstate, w, STACK_WITHSTATE(w, STACK_RESTORING))) {
            if (!putback(s))
                weft__throw("stack compaction: cannot restore a parked goroutine's stack");
            /* the frames are back before anyone who sees RESIDENT runs on
             * them or retries its access */
            cstateset(s, STACK_RESIDENT);
            return;
        }
        if (spins > 100)
            sched_yield();
    }
}

/* Takes s back for the M about to run its goroutine or a waker: from
 * PENDING as it is, otherwise as restore does. */
static void stackpin(weft__stack *s)
{
    /* CAS-full: a batch not compacted yet leaves it alone (it loses its
     * own CAS from PENDING) */
    AO_t w = AO_load(&s->cstate);   /* load: the CAS checks it */
    if (STACK_STATE(w) != STACK_PENDING ||
        !AO_compare_and_swap_full(&s->cstate, w, STACK_WITHSTATE(w, STACK_RESIDENT)))
        restore(s);
}

void weft__stack_pin(G *gp)
{
    if (gp && gp->compact)
        stackpin(gp->stack);
}

void weft__stackrestore(G *gp)
{
    weft__stack *s = gp->stack;
    stackpin(s);
    gp->sp = (void *)s->savedsp;
    s->savedsp = 0;
    free(s->copy);      /* a fault may have restored it already, leaving the copy */
    s->copy = NULL;
}

/* The descriptor of the slab stack whose usable part holds addr, or NULL.
 * Walks the slabs without a lock (as weft__stack_guards): they are only
 * ever added, until shutdown. */
static weft__stack *stackof(uintptr_t addr)
{
    size_t span = (size_t)SLAB_STACKS * slabslot;
    /* load-acquire: pairs with newslab's store-release of the head */
    for (slab *sl = (slab *)AO_load_acquire(&slabs); sl; sl = sl->next) {
        if (addr < sl->base || addr >= sl->base + span)
            continue;
        size_t k = (addr - sl->base) / slabslot;
        if ((int)k >= sl->nstacks)
            return NULL;
        weft__stack *s = &sl->desc[k];
        return addr >= s->lo && addr < s->hi ? s : NULL;
    }
    return NULL;
}

bool weft__stack_fault(uintptr_t addr)
{
    /* load: a stack compacted by another thread was compacted before its
     * guard went up, and the fault comes after that */
    if (AO_load(&ncompactions) == 0)
        return false;
    weft__stack *s = stackof(addr);
    if (!s)
        return false;
    /* Only a guard faults in a stack's usable part, and a guard is there
     * only while it is compacted; if it is resident now, another thread
     * restored it since the fault, and the access can be retried. */
    restore(s);
    return true;
}

void weft__stack_restoreall(void)
{
    if (AO_load(&ncompactions) == 0)    /* load: as weft__stack_fault's */
        return;
    /* Every other thread may be stopped (a debugger), one of them halfway
     * through a compaction or a restore: such a stack is left as it is
     * rather than waited for.  The others get their frames and their sp
     * back, so that a core file shows them as any parked goroutine; the
     * copy stays until the next compaction of the stack (free may not be
     * called here).  load-acquire of allg: pairs with allgadd's
     * store-release, as in the dumps. */
    for (G *gp = (G *)AO_load_acquire(&weft__allg); gp; gp = gp->allglink) {
        weft__stack *s = gp->stack;
        if (!s || s->kind != STACK_SLAB || gp->sp || !gp->stacklo || !s->savedsp)
            continue;
        /* CAS-full: as the runner's and restore's */
        AO_t w = AO_load(&s->cstate);
        if (!(STACK_STATE(w) == STACK_PENDING &&
              AO_compare_and_swap_full(&s->cstate, w, STACK_WITHSTATE(w, STACK_RESIDENT)))) {
            if (!(STACK_STATE(w) == STACK_COMPACTED &&
                  AO_compare_and_swap_full(&s->cstate, w, STACK_WITHSTATE(w, STACK_RESTORING))))
                continue;
            /* As restore's: a thread still running (a crash's) that
             * touches the stack meanwhile faults rather than read zeros. */
            if (!putback(s)) {
                cstateset(s, STACK_COMPACTED);  /* still compacted */
                continue;
            }
            cstateset(s, STACK_RESIDENT);   /* as restore's */
        }
        gp->sp = (void *)s->savedsp;
    }
}

uintptr_t weft__stack_addr(G *gp, uintptr_t addr)
{
    weft__stack *s = gp->stack;
    /* load-acquire: as restore's (the copy is whole once COMPACTED) */
    if (!s || STACK_STATE(AO_load_acquire(&s->cstate)) != STACK_COMPACTED)
        return addr;
    uintptr_t sp = s->savedsp;
    void *copy = s->copy;
    if (!copy || addr < sp || addr >= s->hi)
        return addr;
    return (uintptr_t)copy + (addr - sp);
}

uint64_t weft__stack_ncompacted(void)
{
    return AO_load(&ncompactions);  /* load: a count; the caller orders nothing by it */
}
