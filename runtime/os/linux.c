/*
 * os/linux.c — everything Linux-specific: futexes, clocks, CPU count,
 * thread ids, signal stacks and the stack-overflow signal handler.
 */

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/unwind.h"

int64_t weft__nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft_nanotime(void) { return weft__nanotime(); }

pid_t weft__gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* Sleeps while the 32-bit word at addr == val, at most ns (ns < 0: forever).
 * For an AO_t that is its low half (little-endian on both our architectures). */
int weft__futexwait(void *addr, uint32_t val, int64_t ns)
{
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    return r < 0 ? -errno : 0;
}

void weft__futexwake(void *addr, int32_t cnt)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, cnt, NULL, NULL, 0);
}

int weft__ncpu(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ---- signals -------------------------------------------------------------- */

#define ALTSTACK_SIZE (64 * 1024)

int weft__sigaltstack_init(M *m)
{
    void *p = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    stack_t ss = { .ss_sp = p, .ss_size = ALTSTACK_SIZE, .ss_flags = 0 };
    if (sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        munmap(p, ALTSTACK_SIZE);
        return -e;
    }
    m->altstack = p;
    m->altstacksize = ALTSTACK_SIZE;
    return 0;
}

void weft__sigaltstack_fini(M *m)
{
    if (!m->altstack)
        return;
    stack_t ss = { .ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE };
    sigaltstack(&ss, NULL);
    munmap(m->altstack, m->altstacksize);
    m->altstack = NULL;
}

/* Fatal signals: the old actions, to chain to a handler the program had
 * installed before weft booted. */
static const int fatalsigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGQUIT };
#define NFATAL (int)(sizeof fatalsigs / sizeof fatalsigs[0])
static struct sigaction oldact[NFATAL];
static AO_t signals_installed;

static struct sigaction *oldaction(int sig)
{
    for (int i = 0; i < NFATAL; i++)
        if (fatalsigs[i] == sig)
            return &oldact[i];
    return NULL;
}

/* SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGQUIT, on the M's alternate stack.
 * A fault in a compacted stack brings it back; a fault inside the running
 * goroutine's guard region is a stack overflow;
 * any other fault, and SIGQUIT, is reported Go's way by panic.c (which
 * exits 2).  A handler the program installed before weft booted comes
 * first (SIGQUIT: only ours when it had none). */
static void fatal_handler(int sig, siginfo_t *si, void *uctx)
{
    G *gp = weft__getg();
    uintptr_t addr = (uintptr_t)si->si_addr;
    /* An access to a parked goroutine's compacted stack (stack.c), from
     * any thread: the stack is back, the access is retried. */
    if (sig == SIGSEGV && weft__stack_fault(addr))
        return;
    if ((sig == SIGSEGV || sig == SIGBUS) && gp && !gp->issystem && weft__stack_guard_hit(gp, addr)) {
        weft__printf(2, "runtime: goroutine %lld stack [%p, %p) exceeded (fault addr %p)\n",
                     (long long)gp->goid, (void *)gp->stacklo, (void *)gp->stackhi,
                     (void *)addr);
        weft__printf(2, "fatal error: goroutine %lld stack overflow\n", (long long)gp->goid);
        _exit(2);
    }
    /* A program's own handler gets faults of threads that are not weft's
     * (Go forwards signals on non-Go threads the same way); on an M, weft
     * reports them. */
    struct sigaction *old = gp && sig != SIGQUIT ? NULL : oldaction(sig);
    if (old && (old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uctx);
        return;
    }
    if (old && !(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL &&
        old->sa_handler != SIG_IGN && old->sa_handler) {
        old->sa_handler(sig);
        return;
    }
    weft__sigpanic(sig, si, uctx);     /* never returns */
}

/* ---- capturing another M's stack ------------------------------------------------
 * capreq: 0 idle, 1 requested, 3 claimed by the handler, 2 done. */
#define CAPSIG SIGURG   /* as Go's preemption signal: ignored by default, harmless if stray */
static weft__mutex caplock = WEFT__MUTEX_INIT(LOCKRANK_CAPTURE);

static bool inside(uintptr_t sp, uintptr_t lo, uintptr_t hi) { return lo && sp >= lo && sp < hi; }

int weft__sigstack(void *uctx, uintptr_t *pcs, int max, int64_t *goid)
{
    G *gp = weft__getg();
    M *m = gp ? gp->m : NULL;
    uintptr_t pc, fp;
    weft__sigctx(uctx, &pc, &fp);
    uintptr_t sp = weft__sigctx_sp(uctx);
    *goid = 0;
    if (max <= 0)
        return 0;
    /* Which stack are we on?  The G's, or the scheduler's (g0): TLS and
     * the stack pointer disagree for a moment inside a switch.  The stack
     * pointer says, not the frame pointer: in code built without frame
     * pointers that is just another register. */
    uintptr_t lo = 0, hi = 0;
    if (gp && !gp->issystem && inside(sp, gp->stacklo, gp->stackhi)) {
        lo = gp->stacklo, hi = gp->stackhi, *goid = gp->goid;
    } else if (m && inside(sp, m->g0->stacklo, m->g0->stackhi)) {
        lo = m->g0->stacklo, hi = m->g0->stackhi;
    }
    if (!lo) {
        pcs[0] = pc;
        return 1;
    }
    weft__unwinder u;
    weft__unwind_init_sigctx(&u, uctx, lo, hi);
    return weft__unwind_pcs(&u, pcs, max);
}

static void capture_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)si;
    int saved = errno;
    G *gp = weft__getg();
    M *m = gp ? gp->m : NULL;
    /* CAS-full 1 -> 3: claim the request (pairs with the requester's
     * store-release of 1, so we see a request that is really meant for
     * us, and with its CAS 1 -> 0 on timeout: exactly one of us wins). */
    if (m && AO_compare_and_swap_full(&m->capreq, 1, 3)) {
        m->capn = weft__sigstack(uctx, m->cappcs, 64, &m->capgoid);
        /* store-release: publishes cappcs/capn/capgoid to the requester's
         * load-acquire of capreq == 2. */
        AO_store_release(&m->capreq, 2);
    }
    errno = saved;
}

/* ---- the CPU profiler's timers --------------------------------------------------- */

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

static void sigprof_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    int saved = errno;
    /* SI_TIMER: ours (not a setitimer someone else runs).  The kernel
     * checks CPU-clock timers once per scheduler tick, so above the tick
     * rate one signal stands for several expirations; si_overrun counts
     * the ones beyond the first (timer_getoverrun(2), without a syscall). */
    if (si->si_code == SI_TIMER)
        weft__cpuprof_signal(uctx, 1 + (si->si_overrun > 0 ? (int64_t)si->si_overrun : 0));
    errno = saved;
}

void weft__sigprof_install(void)
{
    static AO_t installed;
    /* CAS-full: installed once, before any timer can fire */
    if (!AO_compare_and_swap_full(&installed, 0, 1))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = sigprof_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
}

int weft__proftimer_start(M *m, int hz)
{
    clockid_t clk;
    if (pthread_getcpuclockid(m->thread, &clk) != 0)
        return -ESRCH;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_notify_thread_id = m->procid;
    if (timer_create(clk, &sev, &m->diag.proftimer) != 0)
        return -errno;
    /* A random first expiry, as Go: threads that live shorter than one
     * period are still sampled in proportion. */
    int64_t period = 1000000000LL / hz;
    int64_t first = 1 + (int64_t)(weft__fastrand() % (uint32_t)period);
    struct itimerspec its = {
        .it_interval = { .tv_sec = period / 1000000000, .tv_nsec = period % 1000000000 },
        .it_value = { .tv_sec = first / 1000000000, .tv_nsec = first % 1000000000 },
    };
    if (timer_settime(m->diag.proftimer, 0, &its, NULL) != 0) {
        int e = -errno;
        timer_delete(m->diag.proftimer);
        return e;
    }
    return 0;
}

void weft__proftimer_stop(M *m)
{
    timer_delete(m->diag.proftimer);
}

int weft__sigcapture(M *m, uintptr_t *pcs, int max, int64_t *goid, int64_t timeout_ns, bool crash)
{
    if (crash) {
        if (!weft__trylock(&caplock))
            return -1;
    } else {
        weft__lock(&caplock);
    }
    int n = -1;
    if (m->procid == 0 || m->exited)
        goto out;
    /* store-release: the handler's CAS sees a complete request. */
    AO_store_release(&m->capreq, 1);
    if (syscall(SYS_tgkill, getpid(), m->procid, CAPSIG) != 0) {
        AO_store(&m->capreq, 0);
        goto out;
    }
    int64_t deadline = weft__nanotime() + timeout_ns;
    for (;;) {
        /* load-acquire: pairs with the handler's store-release of 2 */
        AO_t st = AO_load_acquire(&m->capreq);
        if (st == 2)
            break;
        if (st == 1 && weft__nanotime() > deadline &&
            AO_compare_and_swap_full(&m->capreq, 1, 0))
            goto out;   /* never delivered (thread gone, signal blocked) */
        sched_yield();  /* st == 3: the handler is writing; it takes microseconds */
    }
    n = m->capn < max ? m->capn : max;
    memcpy(pcs, m->cappcs, (size_t)n * sizeof pcs[0]);
    *goid = m->capgoid;
    AO_store(&m->capreq, 0);    /* only we touch it now */
out:
    weft__unlock(&caplock);
    return n;
}

void weft__signals_init(void)
{
    /* CAS-full: one installer; the old actions are written before anyone
     * could take a fault we handle. */
    if (!AO_compare_and_swap_full(&signals_installed, 0, 1))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fatal_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < NFATAL; i++) {
        if (fatalsigs[i] == SIGQUIT) {
            /* Only take SIGQUIT if nobody else wants it (Go's behaviour
             * for a program that did not ask for it). */
            struct sigaction cur;
            if (sigaction(SIGQUIT, NULL, &cur) != 0 || cur.sa_handler != SIG_DFL) {
                oldact[i] = cur;
                continue;
            }
        }
        sigaction(fatalsigs[i], &sa, &oldact[i]);
    }
    struct sigaction cap;
    memset(&cap, 0, sizeof cap);
    cap.sa_sigaction = capture_handler;
    cap.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigemptyset(&cap.sa_mask);
    sigaction(CAPSIG, &cap, NULL);
}
