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

int64_t weft__nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t weft_nanotime(void) { return weft__nanotime(); }

pid_t weft__gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* Sleeps while *addr == val, at most ns (ns < 0: forever).  The futex word is
 * the low 32 bits of the AO_t (little-endian on both our architectures). */
int weft__futexwait(AO_t *addr, uint32_t val, int64_t ns)
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

void weft__futexwake(AO_t *addr, int32_t cnt)
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

static struct sigaction old_segv, old_bus;
static AO_t signals_installed;

/* SIGSEGV/SIGBUS on the M's alternate stack.  A fault inside the running
 * goroutine's guard region is a stack overflow: say so and exit 2.  Anything
 * else goes back to whatever handler was there before us (the default one
 * kills the process with the signal, as the fault re-executes). */
static void fault_handler(int sig, siginfo_t *si, void *uctx)
{
    G *gp = weft__getg();
    uintptr_t addr = (uintptr_t)si->si_addr;
    if (gp && !gp->issystem && weft__stack_guard_hit(gp, addr)) {
        weft__printf(2, "runtime: goroutine %lld stack [%p, %p) exceeded (fault addr %p)\n",
                     (long long)gp->goid, (void *)gp->stacklo, (void *)gp->stackhi,
                     (void *)addr);
        weft__printf(2, "fatal error: goroutine %lld stack overflow\n", (long long)gp->goid);
        _exit(2);
    }
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uctx);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: reinstall it and return; the fault happens again and
     * the kernel kills us with the right signal (and a core, if enabled). */
    signal(sig, SIG_DFL);
}

void weft__signals_init(void)
{
    /* CAS-full: one installer; the old actions are written before anyone
     * could take a fault we handle. */
    if (!AO_compare_and_swap_full(&signals_installed, 0, 1))
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}
