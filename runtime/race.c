/*
 * race.c — race detectors in a program that links the ordinary libweft
 * (race.h says what they are told, and where).
 *
 * ThreadSanitizer.  A program built with -fsanitize=thread (gcc's runtime
 * or clang's, libweft static or shared) defines the fiber API and
 * __tsan_acquire/__tsan_release; weft references them weakly and finds
 * them at boot.  Three things make goroutines look like threads to it:
 *
 *   1. Each goroutine is a fiber, made by newproc on the creator's fiber:
 *      TSan orders a fiber's creation after its creator's past, which is
 *      the weft_go -> goroutine edge.  A G struct that is reused gets a
 *      new fiber (the old one is destroyed then), so a goroutine inherits
 *      nothing from the one that had the struct before.  g0 is its
 *      thread's own fiber (weft__race_minit).
 *   2. Every switch is announced, without synchronisation (runtime.h).
 *   3. A reused stack is remapped with TSan's access recording off, which
 *      is how its interceptor of mmap forgets a range's history: else the
 *      accesses of the stack's last goroutine would race with those of
 *      the next, which is ordered after it only through weft's own
 *      (uninstrumented) free lists.
 *
 * helgrind and DRD.  valgrind's client requests (helgrind's numbering,
 * which DRD shares for these) are no-ops outside valgrind; weft makes
 * them only under those two tools (valgrind preloads the tool's library:
 * its name is in LD_PRELOAD), so memcheck and callgrind runs take none of
 * these paths.  They see threads, not goroutines: two goroutines that
 * race on one M are not reported, two on different Ms are.  Beyond the
 * primitives' edges they are told what TSan gets from the fiber API and
 * from not seeing weft's memory at all: weft's own structures and words
 * are untracked (weft__race_untrack), a goroutine's past on one thread
 * happens before its resumption on another (weft__race_vgswitch and
 * weft__race_vgswitched), a goroutine's stack is cleaned when it starts
 * (weft__race_stackstart), and weft__mutex is a lock (lock.c): a parked
 * goroutine's after-action (select's selunlock, park's commit) reads the
 * goroutine's stack on the thread it left, after the switch's edge, and
 * only the lock it then releases, and the waker's readying
 * (weft__race_vgready), order that before the goroutine's return on
 * another thread.  The price: helgrind and DRD also take the
 * runtime's lock hand-overs for edges between user goroutines, and miss
 * a race whose two sides such a hand-over separates (README).
 *
 * DRD and registered stacks.  Under DRD goroutine stacks are not
 * registered with valgrind (stack.c).  With them registered, DRD (3.19)
 * loses track of where a thread's own stack is once the thread has run
 * on one of them: it then believes the thread's lowest stack address is
 * above its highest and aborts on its own assertion when the thread
 * exits (drd_main.c, drd_stop_using_mem: "a1 <= a2"), with weft at every
 * exit, and with a twenty-line ucontext program that registers 64
 * coroutine stacks and switches to one of them.  Unregistered, a switch
 * between a thread's stack and a goroutine's is a move of the stack
 * pointer by more than --max-stackframe, which valgrind takes for a
 * switch of stacks (it says "client switching stacks?" the first three
 * times), and a move between two goroutine stacks of one slab is a move
 * DRD does nothing with unless --check-stack-var=yes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <valgrind/helgrind.h>
#include <valgrind/drd.h>

/* DRD's request to ignore a range (drd.h's DRD_IGNORE_VAR, by address). */
#define DRD_IGNORE_VAR_RANGE(p, n) \
    VALGRIND_DO_CLIENT_REQUEST_STMT(VG_USERREQ__DRD_START_SUPPRESSION, (p), (n), 0, 0, 0)

#include "race.h"

bool weft__race;
bool weft__vgswitch;
bool weft__race_drd;

/* ThreadSanitizer's interface (sanitizer/tsan_interface.h and the
 * dynamic annotations), weakly: NULL in a program built without it. */
__attribute__((weak)) void *__tsan_get_current_fiber(void);
__attribute__((weak)) void *__tsan_create_fiber(unsigned flags);
__attribute__((weak)) void __tsan_destroy_fiber(void *fiber);
__attribute__((weak)) void __tsan_set_fiber_name(void *fiber, const char *name);
__attribute__((weak)) void __tsan_acquire(void *addr);
__attribute__((weak)) void __tsan_release(void *addr);
__attribute__((weak)) void AnnotateIgnoreWritesBegin(const char *file, int line);
__attribute__((weak)) void AnnotateIgnoreWritesEnd(const char *file, int line);

static bool valgrind_race;      /* const after boot: under helgrind or DRD */
static size_t pagesize;         /* const after boot */

bool weft__race_vgtool(void)
{
    if (!RUNNING_ON_VALGRIND)
        return false;
    const char *pre = getenv("LD_PRELOAD");
    return pre && (strstr(pre, "vgpreload_helgrind") || strstr(pre, "vgpreload_drd"));
}

void weft__race_init(void)
{
    pagesize = (size_t)sysconf(_SC_PAGESIZE);
#if !defined(__SANITIZE_ADDRESS__)
    weft__tsan = __tsan_get_current_fiber && __tsan_create_fiber && __tsan_destroy_fiber &&
                 __tsan_switch_to_fiber && __tsan_acquire && __tsan_release &&
                 AnnotateIgnoreWritesBegin && AnnotateIgnoreWritesEnd;
#endif
    valgrind_race = weft__race_vgtool();
    weft__race_drd = valgrind_race && strstr(getenv("LD_PRELOAD"), "vgpreload_drd");
    weft__race = weft__tsan || valgrind_race;
    weft__vgswitch = valgrind_race;
    weft__race_untrack(&sched, sizeof sched);
    weft__race_untrack(&weft__allg, sizeof weft__allg);
    weft__race_untrack(&weft__coarsetime, sizeof weft__coarsetime);
}

void weft__race_minit_slow(G *g0)
{
    if (weft__tsan)
        g0->racectx = __tsan_get_current_fiber();
}

void weft__race_acquire_slow(const void *addr)
{
    if (weft__tsan)
        __tsan_acquire((void *)addr);
    else
        ANNOTATE_HAPPENS_AFTER(addr);
}

void weft__race_release_slow(const void *addr)
{
    if (weft__tsan)
        __tsan_release((void *)addr);
    else
        ANNOTATE_HAPPENS_BEFORE(addr);
}

/* Forgets what happened on gp's stack: the stack and its descriptor above
 * it, up to the page the stack's mapping ends at, are mapped afresh while
 * TSan records nothing, and what must survive is put back: the descriptor
 * (the first frame is written next, by this thread). */
static void tsan_fresh_stack(G *gp)
{
    uintptr_t lo = gp->stacklo;
    uintptr_t top = (gp->stackhi + pagesize - 1) & ~(uintptr_t)(pagesize - 1);
    uintptr_t keep = gp->stackhi;
    char desc[1024];
    size_t ndesc = top - keep;
    if (keep < lo || ndesc > sizeof desc || (lo & (pagesize - 1)) != 0)
        weft__throw("race: a goroutine stack is not laid out as expected");
    /* The copies too: memcpy is TSan's, and the descriptor is weft's
     * business (ordered by stacklock and the P caches it cannot see). */
    AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
    memcpy(desc, (void *)keep, ndesc);
    void *p = mmap((void *)lo, top - lo, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED)
        memcpy((void *)keep, desc, ndesc);
    AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
    if (p == MAP_FAILED)
        weft__throw("race: cannot map a goroutine stack afresh");
}

/* "goroutine N", TSan's name for the fiber in its reports (it copies it). */
static void fibername(void *fiber, int64_t goid)
{
    if (!__tsan_set_fiber_name)
        return;
    char name[40] = "goroutine ";
    char digits[24];
    int n = 0;
    uint64_t v = (uint64_t)goid;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    size_t at = strlen(name);
    while (n > 0)
        name[at++] = digits[--n];
    name[at] = '\0';
    __tsan_set_fiber_name(fiber, name);
}

void weft__race_newg_slow(G *gp)
{
    if (weft__tsan) {
        if (gp->racectx)
            __tsan_destroy_fiber(gp->racectx);
        gp->racectx = __tsan_create_fiber(0);
        fibername(gp->racectx, gp->goid);
        return;
    }
    /* helgrind, DRD: the creator's past happens before the goroutine
     * (weft__race_gostart). */
    ANNOTATE_HAPPENS_BEFORE(gp);
}

void weft__race_stackstart_slow(G *gp)
{
    if (weft__tsan) {
        tsan_fresh_stack(gp);
        return;
    }
    /* helgrind, DRD: the stack's past belongs to nobody now.  Cleaned by
     * the thread that is about to run the goroutine, before it writes the
     * first frame: helgrind takes a cleaned range as written by the
     * cleaning thread, and the last thread that ran on the stack handed
     * it to us through P caches it cannot see, so a clean there (when
     * the last goroutine ended) left our first frame racing with that
     * thread's clean.  DRD forgets the range's accesses either way. */
    VALGRIND_HG_CLEAN_MEMORY(gp->stacklo, gp->stackhi - gp->stacklo);
}

void weft__race_gostart_slow(G *gp)
{
    if (weft__tsan)
        return;
    weft__race_vgswitched(gp->m);   /* the switch that started us (runtime.h) */
    ANNOTATE_HAPPENS_AFTER(gp);
}

void weft__race_untrack_slow(void *p, size_t n)
{
    if (weft__tsan)
        return;
    VALGRIND_HG_DISABLE_CHECKING(p, n);
    DRD_IGNORE_VAR_RANGE(p, n);
}

/* The switch (runtime.h, under helgrind or DRD).  A goroutine may resume
 * on another thread than the one it left, whose restore reads what the
 * save wrote on its stack: its past there happens before its future
 * here.  The thread that resumes it acquires before the switch; the one
 * that left it releases once on its next context (weft__race_vgswitched),
 * when its registers are saved and before the switch's after-action
 * (an unlock, a run-queue put) lets another thread take it. */
void weft__race_vgswitch(G *from, G *to)
{
    (void)from;
    ANNOTATE_HAPPENS_AFTER(to);
}

/* A parked goroutine's after-action reads its stack on the thread it left
 * (parkcommit, selunlock), after that thread's switch edge; the lock the
 * action then releases carries those reads to the waker, and this carries
 * them on from the waker to whichever thread resumes gp, which may take
 * it from a run queue without a lock. */
void weft__race_vgready(G *gp)
{
    ANNOTATE_HAPPENS_BEFORE(gp);
}

void weft__race_vgswitched(M *m)
{
    G *gp = m ? m->afterg : NULL;
    if (gp)
        ANNOTATE_HAPPENS_BEFORE(gp);
}

void weft__race_ignore_begin_slow(void)
{
    if (weft__tsan)
        AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
}

void weft__race_ignore_end_slow(void)
{
    if (weft__tsan)
        AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
}

void weft__race_freeg_slow(G *gp)
{
    if (weft__tsan && gp->racectx) {
        __tsan_destroy_fiber(gp->racectx);
        gp->racectx = NULL;
    }
}
