/*
 * stack.c — goroutine stacks.
 *
 * Every stack has a guard region below it; running into it is reported as
 * "goroutine N stack overflow" by the SIGSEGV handler (os/linux.c), never
 * silent corruption.  Default-size stacks come from slabs of SLAB_STACKS:
 *
 *   slab:  [guard][   stack 0   |d][guard][   stack 1   |d] ...
 *                               ^ d: the weft__stack descriptor, at the top
 *
 * Memory is reserved with MAP_NORESERVE and committed by the kernel page by
 * page as a goroutine touches it, so a parked G costs about one page.
 *
 * Guard pages at scale.  An mprotect'ed guard page splits its mapping, so
 * each guarded stack costs two VMAs and vm.max_map_count (65530 by default)
 * caps live goroutines near 32 K.  Linux 6.13 added MADV_GUARD_INSTALL,
 * which marks guard pages in the page tables without splitting the VMA: a
 * slab of any number of stacks stays one mapping.  weft uses it when the
 * kernel has it.  On older kernels it falls back to mprotect and refuses
 * (-ENOMEM) to create a stack once the guards would use more than half of
 * vm.max_map_count, rather than run a stack without a guard.
 *
 * Stacks are recycled hot: a per-P cache, then a global free list; slab
 * memory is only unmapped when the runtime shuts down.  Odd-size stacks
 * (weft_attr.stack_size) get their own mapping and are unmapped when their
 * goroutine ends.
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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime.h"

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

#define GUARD_SIZE  (64 * 1024)
#define SLAB_STACKS 64

enum { STACK_SLAB = 1, STACK_OWN = 2 };
enum { GUARD_UNKNOWN = 0, GUARD_MADVISE, GUARD_MPROTECT };

size_t weft__stack_default = WEFT_STACK_DEFAULT;

/* A slab mapping.  The list of them is prepended under stacklock and read
 * without it by weft__stack_guards, which a debugger calls while every
 * thread is stopped, possibly one inside stacklock. */
typedef struct slab {
    uintptr_t base;         /* const */
    int nstacks;            /* const: stacks carved in it, each above its guard */
    struct slab *next;      /* const after publication: the next older slab */
} slab;

static weft__mutex stacklock = WEFT__MUTEX_INIT(LOCKRANK_STACK);
static weft__stack *freelist;       /* stacklock */
static int32_t nfree;               /* stacklock */
static AO_t slabs;                  /* stacklock to write: the newest slab * */
static size_t slabslot;             /* const after init: GUARD_SIZE + default stack */
static int guardmode;               /* const after init */
static AO_t nmprotected;            /* atomic: guards made with mprotect */
static long mprotect_budget;        /* const after init */

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
    slabslot = GUARD_SIZE + weft__stack_default;
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

/* Carves a descriptor at the top of [base, base + GUARD_SIZE + size). */
static weft__stack *describe(uintptr_t base, size_t size, uint8_t kind)
{
    uintptr_t top = base + GUARD_SIZE + size;
    weft__stack *s = (weft__stack *)((top - sizeof(weft__stack)) & ~(uintptr_t)(CACHELINE - 1));
    s->guardlo = base;
    s->lo = base + GUARD_SIZE;
    s->hi = (uintptr_t)s;
    s->size = size;
    s->kind = kind;
    s->next = NULL;
    s->vgid = VALGRIND_STACK_REGISTER(s->lo, s->hi);
    return s;
}

/* stacklock held: maps a new slab and puts its stacks on the free list. */
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
    for (int i = 0; i < SLAB_STACKS; i++) {
        uintptr_t base = (uintptr_t)p + (size_t)i * slabslot;
        if (install_guard((void *)base, GUARD_SIZE) != 0)
            break;
        weft__stack *s = describe(base, weft__stack_default, STACK_SLAB);
        s->next = freelist;
        freelist = s;
        nfree++;
        made++;
    }
    if (made == 0) {
        munmap(p, len);
        free(sl);
        return -ENOMEM;
    }
    sl->base = (uintptr_t)p;
    sl->nstacks = made;
    sl->next = (slab *)AO_load(&slabs);
    /* store-release: publishes the record to weft__stack_guards, which
     * reads the head without stacklock (it reads it plainly too: every
     * thread is stopped then, but the record must be complete in memory
     * before the head names it) */
    AO_store_release(&slabs, (AO_t)sl);
    return 0;
}

weft__stack *weft__stackalloc(P *pp, size_t size)
{
    if (size == weft__stack_default) {
        if (pp && pp->nstackcache > 0)
            return pp->stackcache[--pp->nstackcache];
        weft__lock(&stacklock);
        if (!freelist && newslab() != 0) {
            weft__unlock(&stacklock);
            return NULL;
        }
        weft__stack *s = freelist;
        freelist = s->next;
        nfree--;
        /* Refill the P's cache halfway while we hold the lock. */
        while (pp && freelist && pp->nstackcache < P_STACK_CACHE / 2) {
            weft__stack *c = freelist;
            freelist = c->next;
            nfree--;
            pp->stackcache[pp->nstackcache++] = c;
        }
        weft__unlock(&stacklock);
        return s;
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
    return describe((uintptr_t)p, size, STACK_OWN);
}

void weft__stackfree(P *pp, weft__stack *s)
{
    if (s->kind == STACK_OWN) {
        VALGRIND_STACK_DEREGISTER(s->vgid);
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
    if (pp && pp->nstackcache < P_STACK_CACHE) {
        pp->stackcache[pp->nstackcache++] = s;
        return;
    }
    weft__lock(&stacklock);
    s->next = freelist;
    freelist = s;
    nfree++;
    while (pp && pp->nstackcache > P_STACK_CACHE / 2) {
        weft__stack *c = pp->stackcache[--pp->nstackcache];
        c->next = freelist;
        freelist = c;
        nfree++;
    }
    weft__unlock(&stacklock);
}

void weft__stackcache_flush(P *pp)
{
    weft__lock(&stacklock);
    while (pp->nstackcache > 0) {
        weft__stack *c = pp->stackcache[--pp->nstackcache];
        c->next = freelist;
        freelist = c;
        nfree++;
    }
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
            uintptr_t base = sl->base + (size_t)k * slabslot;
            weft__stack *s = (weft__stack *)((base + slabslot - sizeof(weft__stack)) &
                                             ~(uintptr_t)(CACHELINE - 1));
            VALGRIND_STACK_DEREGISTER(s->vgid);
        }
        weft__asan_fresh_stack(sl->base + GUARD_SIZE,
                               sl->base + (size_t)SLAB_STACKS * slabslot);   /* see stackfree */
        munmap((void *)sl->base, (size_t)SLAB_STACKS * slabslot);
        free(sl);
        sl = next;
    }
    if (guardmode == GUARD_MPROTECT)
        AO_store(&nmprotected, 0);
    freelist = NULL;
    nfree = 0;
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
