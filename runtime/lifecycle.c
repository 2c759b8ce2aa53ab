/*
 * lifecycle.c — the runtime's life: boot (weft_main or lazily from weft_go),
 * the end of main, and the shutdown that releases everything.
 *
 *   booted: 0 ──weft_main / first weft_go──▶ 1 (booting) ──▶ 2 (running)
 *           ▲                                                  │
 *           └──────── weft_main's main returns, all Ms gone ◀──┘
 *
 * A runtime started lazily by weft_go from a plain thread has no M0 and
 * never shuts down (it lives until the process exits).
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lockcycle.h"
#include "park.h"
#include "race.h"
#include "diag/debuginfo.h"
#include "diag/symtab.h"
#include "diag/unwind.h"

static void wake_all_ms(void);

/* Every program that boots weft links the debug descriptor (debuginfo.c),
 * which debuggers and weftprof look for, and gdb's extension with it: this
 * reference pulls its object out of libweft.a. */
extern const struct weft_debug_info weft_debug_info;
__attribute__((used)) static const struct weft_debug_info *const debuginfo = &weft_debug_info;

static stack_t m0_oldaltstack;

static int schedinit(bool lazy)
{
    weft__env_init();
    int nprocs = weft__env_maxprocs();
    int err = weft__stackinit();
    if (err < 0)
        return err;
    weft__signals_init();
    sched.starttime = weft__nanotime();
    /* Goroutines stamp their waits with sysmon's clock hint from their first
     * moment, before sysmon's first tick: start it at boot, not at 0
     * ("unknown") nor at the last tick of a previous weft_main.  A store:
     * the Ms and goroutines that read it start after this. */
    AO_store(&weft__coarsetime, (AO_t)sched.starttime);
    sched.lazy = lazy;
    weft__lock(&sched.lock);
    err = weft__procresize(nprocs);
    /* At boot nobody owns a P: they all start idle. */
    int32_t n = (int32_t)AO_load(&weft__gomaxprocs);
    for (int32_t i = n - 1; i >= 0; i--)
        weft__pidleput(weft__allp[i]);
    weft__unlock(&sched.lock);
    if (AO_load(&weft__gomaxprocs) == 0)
        return err < 0 ? err : -ENOMEM;
    weft__trace_boot();
    return 0;
}

int weft__ensure_booted(void)
{
    for (;;) {
        AO_t b = AO_load_acquire(&sched.booted);
        if (b == 2)
            return 0;
        if (b == 0 && AO_compare_and_swap_full(&sched.booted, 0, 1)) {
            int err = schedinit(true);
            if (err == 0)
                err = weft__sysmon_start();
            /* store-release: everything schedinit wrote is visible to
             * whoever sees booted == 2 */
            AO_store_release(&sched.booted, err == 0 ? 2 : 0);
            return err;
        }
        sched_yield();  /* someone else is booting */
    }
}

/* main returned: stop the world for good (see shutdown_wait). */
void weft__main_exit(G *gp)
{
    /* main's end happens before weft_main returns (race.h). */
    weft__race_release(gp);
    weft__lock(&sched.lock);
    AO_store(&sched.exiting, 1);
    weft__unlock(&sched.lock);
    wake_all_ms();
    AO_store(&sched.sysmonnote.key, 1);
    weft__futexwake(&sched.sysmonnote.key, 1);
    weft__netpoll_break();
}

/* Wakes every M that may be asleep so that it notices sched.exiting.  A
 * forced wake: exiting makes notewakeup tolerate double wakes. */
static void wake_all_ms(void)
{
    weft__lock(&sched.lock);
    for (M *mp = sched.allm; mp; mp = mp->alllink) {
        if (mp->exited)
            continue;
        AO_store(&mp->park.key, 1);
        weft__futexwake(&mp->park.key, 1);
    }
    weft__unlock(&sched.lock);
}

/* On m0 after main returned and m0's scheduler loop ended: waits for the
 * other Ms to leave, then frees everything.  Ms blocked in a raw syscall
 * (weft_syscall_enter) cannot be waited for; if any remain, the runtime's
 * memory is left in place for them and the runtime stays unusable. */
static bool shutdown_wait(void)
{
    M *m0 = sched.m0;
    int64_t start = weft__nanotime();
    int64_t deadline = start + 2000000000LL;          /* Ms running goroutines */
    int64_t sysdeadline = start + 100000000LL;        /* Ms inside a syscall */
    bool clean = false;
    for (;;) {
        int running = 0, insyscall = 0;
        weft__lock(&sched.lock);
        for (M *mp = sched.allm; mp; mp = mp->alllink) {
            if (mp == m0 || mp->exited)
                continue;
            G *cg = mp->curg;
            if (cg && AO_load(&cg->atomicstatus) == Gsyscall)
                insyscall++;
            else
                running++;
        }
        weft__unlock(&sched.lock);
        if (running == 0 && insyscall == 0) {
            clean = true;
            break;
        }
        int64_t now = weft__nanotime();
        if ((running == 0 && now > sysdeadline) || now > deadline) {
            if (running)
                weft__printf(2, "weft: %d threads still running goroutines after main returned; "
                                "their memory is left in place\n", running);
            break;
        }
        wake_all_ms();
        /* An M may also be asleep in epoll_wait (the first break woke
         * only the one that was there then). */
        weft__netpoll_break();
        usleep(200);
    }
    return clean;
}

static void freeall(void)
{
    /* Join the threads (all have left their loops). */
    for (M *mp = sched.allm; mp; mp = mp->alllink)
        if (mp != sched.m0 && mp->thread)
            pthread_join(mp->thread, NULL);
    weft__sysmon_stop();
    /* The goroutines still waiting never run again: take their sudogs off
     * the objects they wait on before their memory goes. */
    weft__cancelwaits();
    weft__lockcycle_shutdown();          /* their mutex waits too (lockcycle.c) */
    weft__debugserver_shutdown(true);    /* after cancelwaits: a stop may wait on a server */
    G *gp = (G *)AO_load(&weft__allg);
    while (gp) {
        G *next = gp->allglink;
        weft__stackfree_own(gp->stack);
        free(gp->w.timer);
        free(gp->locals);
        free(gp->ancestors);
        weft__race_freeg(gp);
        free(gp);
        gp = next;
    }
    AO_store(&weft__allg, 0);
    weft__stacktab_freeall();     /* the Gs' ancestors pointed into it */
    weft__stackfreeall();
    weft__sudogfreeall();
    weft__netpoll_fini();
    weft__symtab_fini();
    weft__unwind_fini();
    M *mp = sched.allm;
    while (mp) {
        M *next = mp->alllink;
        weft__mfree(mp);
        mp = next;
    }
    weft__pfreeall();
    AO_t goidgen = AO_load(&sched.goidgen);
    memset(&sched, 0, sizeof sched);
    AO_store(&sched.goidgen, goidgen);   /* goids are never reused */
    weft__lockinit(&sched.lock, LOCKRANK_SCHED);      /* as sched.c's initialiser */
    weft__lockinit(&sched.gflock, LOCKRANK_GFREE);
    weft__lockinit(&sched.worldsema, LOCKRANK_WORLDSEMA);
    weft__lockinit(&sched.sudoglock, LOCKRANK_SUDOG);
}

int weft_main(void (*fn)(void *), void *arg)
{
    if (!fn)
        return -EINVAL;
    if (!AO_compare_and_swap_full(&sched.booted, 0, 1))
        return -EBUSY;
    int err = schedinit(false);
    M *m0 = NULL;
    if (err == 0) {
        m0 = weft__allocm();
        if (!m0)
            err = -ENOMEM;
    }
    if (err < 0) {
        AO_store_release(&sched.booted, 0);
        return err;
    }
    m0->ism0 = true;
    sched.m0 = m0;
    weft__minit(m0);
    /* M0 gets a signal stack for the overflow handler; the caller's is
     * restored on return. */
    sigaltstack(NULL, &m0_oldaltstack);
    weft__sigaltstack_init(m0);
    /* Before any signal handler can walk a stack (hogwarn, a crash). */
    weft__unwind_prepare();
    weft__lock(&sched.lock);
    weft__acquirep(m0, weft__pidleget());
    weft__unlock(&sched.lock);
    AO_store_release(&sched.booted, 2);
    err = weft__sysmon_start();
    G *mg = NULL;
    if (err == 0)
        mg = weft__newproc(fn, arg, weft__stack_default, "main",
                           (uintptr_t)__builtin_return_address(0), NEWPROC_MAIN, &err);
    if (!mg) {
        weft__printf(2, "weft_main: cannot start main goroutine (errno %d)\n", -err);
        _exit(2);
    }
    weft__schedule();

    /* main returned. */
    weft__race_acquire(mg);
    /* The shutdown frees and closes what the goroutines used; weft's own
     * synchronisation (every M joined) orders that, out of TSan's sight. */
    weft__race_ignore_begin();
    weft__cpuprof_shutdown();
    bool clean = shutdown_wait();
    weft__trace_shutdown();
    weft__sigaltstack_fini(m0);
    if (m0_oldaltstack.ss_sp && !(m0_oldaltstack.ss_flags & SS_DISABLE))
        sigaltstack(&m0_oldaltstack, NULL);
    weft__setg(NULL);
    if (clean)
        freeall();      /* booted returns to 0 with the rest of sched */
    else
        weft__debugserver_shutdown(false);   /* the ports at least */
    weft__race_ignore_end();
    return 0;
}
