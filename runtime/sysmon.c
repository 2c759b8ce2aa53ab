/*
 * sysmon.c — the system monitor: a thread with no P that watches the Ps.
 *
 * It sleeps 20 µs, doubling after 50 idle rounds up to 10 ms, or, once every
 * P is idle, until a P is taken again (sysmonwait below), and each time it
 * wakes:
 *   - retakes the P of an M that has been in a syscall (weft_syscall_enter)
 *     since its previous look, and hands it to another M (handoffp);
 *   - flags the G of a P that has run the same G for more than 10 ms, so the
 *     G yields (to the global queue) at its next scheduling point, and moves
 *     the Gs queued on that P to the global queue, where other Ps find them
 *     even if the flagged G never reaches a scheduling point (weft cannot
 *     preempt it asynchronously as Go does);
 *   - with SCHEDDEBUG=hogwarn=N, reports (once, with its stack) a G that has
 *     run N ms without reaching a scheduling point;
 *   - with SCHEDDEBUG=schedtrace=N, writes a scheduler dump every N ms;
 *   - with SCHEDDEBUG=blockwarn=N, reports (once per wait) a goroutine
 *     parked in one wait for more than N s (blockwarn below).
 */
#include <pthread.h>
#include <string.h>

#include "race.h"
#include "diag/scheddebug.h"
#include "diag/unwind.h"

static AO_t sysmon_stop_flag;
AO_t weft__coarsetime;

/* Backstop for timers: an idle P's due timer wakes an M to run it. */
static void checktimers(int64_t now)
{
    if (AO_load(&sched.npidle) == 0)
        return;
    int64_t next = weft__nexttimer();
    if (next != 0 && next <= now)
        weft__wakep();
}

/* The stack of the goroutine whose syscall holds pp, for the creation
 * stack of any M the hand-off starts (Go records only the creating
 * thread's stack, which here would always be sysmon's).  The goroutine is
 * blocked in its syscall: the frames above its weft_syscall_enter call stay
 * put unless it returns meanwhile, which the syscalltick check catches. */
static void syscallcause(P *pp)
{
    weft__mcause_n = 0;
    AO_t tick = AO_load(&pp->syscalltick);
    for (M *m = (M *)AO_load_acquire((AO_t *)&sched.allm); m; m = m->alllink) {
        G *gp = m->curg;
        if (m->oldp != pp || !gp || AO_load(&gp->atomicstatus) != Gsyscall)
            continue;
        weft__unwinder u;
        weft__unwind_init_regs(&u, gp->syscallpc, gp->syscallsp, gp->syscallfp, gp->stacklo, gp->stackhi);
        int n = weft__unwind_pcs(&u, weft__mcause_pcs, M_CREATESTACK);
        if (AO_load(&pp->syscalltick) == tick)
            weft__mcause_n = n;
        return;
    }
}

/* SCHEDDEBUG=hogwarn=N: pp has run one goroutine for N ms without it
 * reaching a scheduling point.  diag/ says which, with the stack it is
 * running now (captured by signalling its M), once per run of that
 * goroutine (any switch on the P starts the clock again; see retake). */
static void hogwarn(P *pp, int64_t ns)
{
    M *m = pp->m;
    G *gp = m ? m->curg : NULL;
    if (gp)
        weft__hogwarn(m, gp, pp->id, ns);
}

/* SCHEDDEBUG=blockwarn=N: every 10 ms, the next BLOCKWARN_BATCH goroutines
 * of allgs (round robin from where the last look stopped; Gs are never
 * freed, so the cursor stays valid, and new ones are prepended, so they
 * are met at the next wrap).  A G parked in one wait (same waitsince) for
 * more than N s is reported once: blockwarned remembers the wait.  Sleeps
 * are not waits on anything and are left alone.
 *
 * Bounded: at most BLOCKWARN_BATCH Gs read per 10 ms, a few words of
 * each — a few hundred microseconds of sysmon's own thread, never a P.
 * With a million goroutines a round takes 1e6 / 1024 * 10 ms, about 10 s,
 * so a wait is reported between N and N + 10 s after it began; with fewer
 * than 100,000, within N + 1 s. */
#define BLOCKWARN_BATCH 1024
#define BLOCKWARN_EVERY_NS (10 * 1000 * 1000)

static void blockwarn(int64_t now)
{
    static G *cursor;           /* sysmon: the next G to look at; NULL: start over */
    static int64_t last;        /* sysmon: when it last looked */
    static bool looked;         /* ... since it started (clocks count from boot) */
    if (looked && now - last < BLOCKWARN_EVERY_NS)
        return;
    looked = true;
    last = now;
    int64_t limit = weft__debug.blockwarn * 1000000000LL;
    G *gp = cursor;
    bool wrapped = false;
    for (int i = 0; i < BLOCKWARN_BATCH; i++) {
        if (!gp) {
            if (wrapped)
                break;      /* fewer Gs than a batch: each once */
            wrapped = true;
            gp = (G *)AO_load_acquire(&weft__allg);    /* as weft__view_allg */
            if (!gp)
                break;
        }
        /* Racy reads (sysmon owns none of these): a wait that changes
         * under us is checked again before anything is printed. */
        if (AO_load(&gp->atomicstatus) == Gwaiting && gp->waitreason != waitReasonSleep) {
            int64_t since = gp->waitsince;
            if (since > 0 && now - since > limit && gp->blockwarned != since) {
                gp->blockwarned = since;
                weft__blockwarn(gp, since, now);
            }
        }
        gp = gp->allglink;
    }
    cursor = gp;
}

static uint32_t retake(int64_t now)
{
    uint32_t n = 0;
    checktimers(now);
    uint32_t np = (uint32_t)AO_load_acquire(&weft__gomaxprocs);
    for (uint32_t i = 0; i < np; i++) {
        P *pp = weft__allp[i];
        /* load-acquire: pairs with the store-release in syscall_enter */
        AO_t s = AO_load_acquire(&pp->status);
        if (s == Psyscall) {
            uint32_t t = (uint32_t)AO_load(&pp->syscalltick);
            if (pp->sysmontick_syscall != t) {
                pp->sysmontick_syscall = t;
                pp->sysmonwhen = now;
                continue;
            }
            /* Nothing to run and someone looking for work: leave it for a
             * while (Go's rule), so short syscalls don't bounce Ps. */
            if (weft__runqempty(pp) && AO_load(&sched.runqsize) == 0 &&
                AO_load(&sched.nmspinning) + AO_load(&sched.npidle) > 0 &&
                pp->sysmonwhen + 10 * 1000 * 1000 > now)
                continue;
            /* CAS-full: races with syscall_exit's fast path; exactly one wins */
            if (AO_compare_and_swap_full(&pp->status, Psyscall, Pidle)) {
                if (unlikely(weft__tracing())) weft__trace_procstop(pp);
                AO_fetch_and_add1(&pp->syscalltick);
                n++;
                syscallcause(pp);
                weft__handoffp(pp);
                weft__mcause_n = 0;
            }
        } else if (s == Prunning) {
            uint32_t t = pp->schedtick;    /* racy read; a torn tick only delays a flag */
            if (pp->sysmontick_sched != t) {
                pp->sysmontick_sched = t;
                pp->sysmonwhen = now;
            } else if (pp->sysmonwhen + FORCE_PREEMPT_NS <= now) {
                M *mp = pp->m;
                G *gp = mp ? mp->curg : NULL;
                if (gp)
                    AO_store(&gp->preempt, 1);
                pp->sysmonwhen = now;   /* don't re-flag every tick */
                /* The flag only works at the G's next scheduling point,
                 * which may never come; free the Gs queued behind it, and
                 * make sure an M looks at the global queue, where a G it
                 * preempted before may wait (a hint read: wakep does
                 * nothing if no P is idle). */
                if (weft__runqrescue(pp) > 0 || AO_load(&sched.runqsize) > 0) {
                    n++;
                    weft__wakep();
                }
            }
            if (weft__debug.hogwarn > 0) {
                /* Per goroutine, not per time slice (a runnext G inherits
                 * its slice): any switch starts the clock again. */
                uint32_t sw = pp->switchtick;   /* racy read, as schedtick's */
                if (pp->hogtick != sw || pp->hogsince == 0) {
                    pp->hogtick = sw;
                    pp->hogsince = now;
                } else if (pp->hogreported != sw + 1 &&
                           now - pp->hogsince >= weft__debug.hogwarn * 1000000LL) {
                    pp->hogreported = sw + 1;
                    hogwarn(pp, now - pp->hogsince);
                }
            }
        }
    }
    return n;
}

/* Go's sysmonwait: when every P is idle nothing needs watching (no
 * goroutine runs, no P waits in a syscall, and the timers and the network
 * have an idle M each, asleep until the next timer or blocked in
 * epoll_wait), so sysmon sleeps until a P is taken off the idle list
 * (sched.c's sysmonwake) instead of waking every 10 ms for nothing: an
 * idle program costs no CPU and no wake-ups.  Only once sysmon has backed
 * off to its longest tick (the caller's condition): a program that goes
 * idle and busy again many times a second then wakes sysmon at most once
 * per tick, as often as the tick would have (after a wake-up the caller
 * sleeps a whole tick before it looks again).  Not with SCHEDDEBUG's
 * schedtrace, whose dumps are due on time (Go's rule too), nor with
 * blockwarn: a program whose every goroutine waits is what it is for. */
static void sysmonwait(void)
{
    if (weft__debug.schedtrace > 0 || weft__debug.blockwarn > 0)
        return;
    /* load-acquire, both: only a hint; the condition is checked again
     * under sched.lock, which the idle-list updates hold */
    if (AO_load(&sched.npidle) != AO_load_acquire(&weft__gomaxprocs))
        return;
    weft__lock(&sched.lock);
    if (AO_load(&sched.npidle) != AO_load(&weft__gomaxprocs) || AO_load(&sched.exiting) ||
        AO_load(&sysmon_stop_flag)) {
        weft__unlock(&sched.lock);
        return;
    }
    sched.sysmonwait = true;
    sched.nsysmonwait++;
    weft__unlock(&sched.lock);
    weft__notesleep(&sched.sysmonnote);
    weft__lock(&sched.lock);
    sched.sysmonwait = false;   /* already, unless the wake-up is the shutdown's */
    /* The end of main stores exiting (under sched.lock) before it wakes
     * us: if we do not see it here, its wake-up comes after this clear.
     * (weft__sysmon_stop's flag is not under the lock, but it only ever
     * follows the end of main.) */
    if (!AO_load(&sched.exiting) && !AO_load(&sysmon_stop_flag))
        weft__noteclear(&sched.sysmonnote);
    weft__unlock(&sched.lock);
}

static void *sysmon(void *arg)
{
    (void)arg;
    int64_t delay = 0;      /* µs */
    uint32_t idle = 0;
    /* The first dump comes at the first tick.  Not "lasttrace = 0": the
     * monotonic clock counts from boot, so on a machine up for less than
     * one period that would hold the first dump back until it has been. */
    bool traced = false;
    int64_t lasttrace = 0;
    int64_t maxdelay = 10 * 1000;
    if (weft__debug.schedtrace > 0 && weft__debug.schedtrace * 1000LL < maxdelay)
        maxdelay = weft__debug.schedtrace * 1000LL;   /* dumps on time */
    while (!AO_load(&sysmon_stop_flag) && !AO_load(&sched.exiting)) {
        if (idle == 0)
            delay = 20;
        else if (idle > 50)
            delay *= 2;
        if (delay > maxdelay)
            delay = maxdelay;
        /* Woken from it, sysmon still sleeps its tick before it looks:
         * what woke it may be gone by then, and looking at once would
         * send it straight back to sleep, to be woken again by the next
         * P taken — a wake-up per idle spell instead of per tick. */
        if (delay == maxdelay)
            sysmonwait();
        if (weft__notetsleep(&sched.sysmonnote, delay * 1000))
            break;      /* woken: shutdown */
        int64_t now = weft__nanotime();
        AO_store(&weft__coarsetime, (AO_t)now);   /* a hint: no ordering needed */
        if (weft__debug.schedtrace > 0 &&
            (!traced || lasttrace + weft__debug.schedtrace * 1000000LL <= now)) {
            traced = true;
            lasttrace = now;
            weft_schedtrace(2, weft__debug.scheddetail > 0);
        }
        /* Poll the network if nobody has for 10 ms (everyone busy). */
        AO_t last = AO_load(&weft__netpoll_lastpoll);
        if (AO_load(&weft__netpoll_waiters) > 0 && last != 0 &&
            (int64_t)last + 10 * 1000 * 1000 < now &&
            AO_compare_and_swap_full(&weft__netpoll_lastpoll, last, (AO_t)now)) {
            /* No P here: they go to the global queue, each with an M. */
            weft__glist l;
            weft__netpoll(0, &l);
            weft__injectglist(&l);
        }
        if (weft__debug.blockwarn > 0)
            blockwarn(now);
        if (retake(now) != 0)
            idle = 0;
        else
            idle++;
    }
    return NULL;
}

int weft__sysmon_start(void)
{
    AO_store(&sysmon_stop_flag, 0);
    weft__noteclear(&sched.sysmonnote);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    int r = pthread_create(&sched.sysmon, &attr, sysmon, NULL);
    pthread_attr_destroy(&attr);
    if (r != 0)
        return -r;
    pthread_setname_np(sched.sysmon, "weft-sysmon");    /* for gdb, top -H, perf */
    sched.sysmon_started = true;
    return 0;
}

void weft__sysmon_stop(void)
{
    if (!sched.sysmon_started)
        return;
    weft__race_untrack(&sysmon_stop_flag, sizeof sysmon_stop_flag);   /* weft's own (race.h) */
    AO_store(&sysmon_stop_flag, 1);
    AO_store(&sched.sysmonnote.key, 1);
    weft__futexwake(&sched.sysmonnote.key, 1);
    pthread_join(sched.sysmon, NULL);
    sched.sysmon_started = false;
}
