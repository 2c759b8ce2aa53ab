/*
 * schedview.c — the scheduler as diag/ sees it (diag/schedview.h): read-only
 * snapshots of G, M, P and sched, and the per-M block diag/ owns.
 *
 * Everything here is a reader: nothing is called on the scheduler's hot
 * paths, nothing here writes scheduler state, and every shared field is
 * read once (AO_load for the atomic ones; the others are word-sized and
 * owned by one writer, so a racy read sees an old or a new value, never a
 * torn one).  Which of those reads are exact depends on what the caller
 * holds; schedview.h says which.
 */
#include <stddef.h>

#include "chan.h"
#include "runtime.h"

/* The view's G status numbers are Go's, as the core's are. */
_Static_assert((int)VGidle == (int)Gidle && (int)VGrunnable == (int)Grunnable &&
               (int)VGrunning == (int)Grunning && (int)VGsyscall == (int)Gsyscall &&
               (int)VGwaiting == (int)Gwaiting && (int)VGdead == (int)Gdead,
               "schedview.h's G status numbers must match runtime.h's");

/* ---- the scheduler as a whole ----------------------------------------------- */

/* load-acquire: pairs with boot's store-release of 2, so the scheduler's
 * structures are initialised when we see it */
bool weft__view_running(void) { return AO_load_acquire(&sched.booted) == 2; }

/* a flag read as a hint: no ordering needed */
bool weft__view_exiting(void) { return AO_load(&sched.exiting) != 0; }

void weft__view_lock(void) { weft__lock(&sched.lock); }
bool weft__view_trylock(void) { return weft__trylock(&sched.lock); }
void weft__view_unlock(void) { weft__unlock(&sched.lock); }

void weft__view_sched(weft__schedsnap *out)
{
    out->uptime = weft__nanotime() - sched.starttime;
    /* load-acquire: pairs with procresize's store-release of the new
     * count after the new allp */
    out->gomaxprocs = (uint32_t)AO_load_acquire(&weft__gomaxprocs);
    out->idleprocs = (uint32_t)AO_load(&sched.npidle);
    out->threads = sched.mnext - sched.nmexited + (sched.sysmon_started ? 1 : 0);
    out->spinning = (uint32_t)AO_load(&sched.nmspinning);
    out->needspinning = (uint32_t)AO_load(&sched.needspinning);
    out->idlethreads = sched.nmidle;
    out->runqueue = (uint32_t)AO_load(&sched.runqsize);
    out->gcwaiting = AO_load(&sched.gcwaiting) != 0;
    out->nmidlelocked = sched.nmidlelocked;
    out->stopwait = sched.stopwait;
    out->sysmon = sched.sysmon_started;
    out->sysmonwait = sched.sysmonwait;
}

/* a clock hint, written by sysmon with a plain store: no ordering needed */
int64_t weft__view_coarsetime(void) { return (int64_t)AO_load(&weft__coarsetime); }

/* ---- Ps ------------------------------------------------------------------------- */

static int64_t mid(M *m) { return m ? m->id : -1; }

bool weft__view_p(uint32_t i, weft__pview *out)
{
    if (i >= (uint32_t)AO_load_acquire(&weft__gomaxprocs))     /* pairs as in view_sched */
        return false;
    P *pp = weft__allp[i];
    out->id = pp->id;
    out->status = (int)AO_load(&pp->status);
    out->schedtick = pp->schedtick;
    out->syscalltick = (uint32_t)AO_load(&pp->syscalltick);
    out->m = mid(pp->m);
    out->runqsize = weft__runqsize(pp);
    out->gfreecnt = pp->gfreecnt;
    out->timerslen = pp->ntimers;
    return true;
}

/* ---- Ms ------------------------------------------------------------------------- */

M *weft__view_allm(M *prev)
{
    /* load-acquire of the head pairs with allocm's store-release: an M we
     * see is fully initialised, and so is every older one it links to */
    return prev ? prev->alllink : (M *)AO_load_acquire((AO_t *)&sched.allm);
}

void weft__view_m(M *m, weft__mview *out)
{
    P *pp = m->p;
    G *cg = m->curg, *lg = m->lockedg;
    out->m = m;
    out->id = m->id;
    out->procid = m->procid;
    out->exited = m->exited;
    out->p = pp ? pp->id : -1;
    out->curg = cg ? cg->goid : -1;
    out->lockedg = lg ? lg->goid : -1;
    out->spinning = m->spinning;
    out->blocked = AO_load(&m->blocked) != 0;
    out->createstack = m->createstack;
    out->ncreatestack = m->ncreatestack;
}

weft__mdiag *weft__view_mdiag(M *m) { return &m->diag; }

weft__mdiag *weft__view_mdiag_self(void)
{
    G *gp = weft__getg();
    return gp && gp->m ? &gp->m->diag : NULL;
}

/* ---- Gs ------------------------------------------------------------------------- */

G *weft__view_allg(G *prev)
{
    /* load-acquire of the head pairs with allgadd's store-release, as in
     * view_allm */
    return prev ? prev->allglink : (G *)AO_load_acquire(&weft__allg);
}

static const char *gstatusname(AO_t st)
{
    static const char *const names[] = { "idle", "runnable", "running", "syscall", "waiting",
                                         "moribund", "dead" };
    return st < sizeof names / sizeof names[0] ? names[st] : "???";
}

/* Go's wait-reason strings (runtime2.go waitReasonStrings); the debug
 * descriptor (debuginfo.c) points tools at this table. */
const char *const weft__waitreason_names[waitReasonCount] = {
    [waitReasonZero] = "",
    [waitReasonIOWait] = "IO wait",
    [waitReasonSemacquire] = "semacquire",
    [waitReasonSleep] = "sleep",
    [waitReasonChanReceiveNilChan] = "chan receive (nil chan)",
    [waitReasonChanSendNilChan] = "chan send (nil chan)",
    [waitReasonSelectNoCases] = "select (no cases)",
    [waitReasonSelect] = "select",
    [waitReasonChanReceive] = "chan receive",
    [waitReasonChanSend] = "chan send",
    [waitReasonSyncCondWait] = "sync.Cond.Wait",
    [waitReasonSyncMutexLock] = "sync.Mutex.Lock",
    [waitReasonSyncRWMutexRLock] = "sync.RWMutex.RLock",
    [waitReasonSyncRWMutexLock] = "sync.RWMutex.Lock",
    [waitReasonSyncWaitGroupWait] = "sync.WaitGroup.Wait",
    [waitReasonPreempted] = "preempted",
    [waitReasonStoppingTheWorld] = "stopping the world",
    [waitReasonLockedThread] = "locked thread",
};

const char *weft__waitreason_str(int r)
{
    if (r < 0 || r >= waitReasonCount)
        return "unknown wait reason";
    return weft__waitreason_names[r];
}

/* The public calls that park with wait reason r, for messages about a
 * park that must not happen (one inside a syscall bracket). */
const char *weft__waitreason_call(int r)
{
    static const char *const calls[waitReasonCount] = {
        [waitReasonIOWait] = "weft_read/weft_write/weft_accept/weft_connect/weft_wait_fd",
        [waitReasonSemacquire] = "a semaphore wait",
        [waitReasonSleep] = "weft_sleep",
        [waitReasonChanReceiveNilChan] = "weft_chan_recv on a NULL channel",
        [waitReasonChanSendNilChan] = "weft_chan_send on a NULL channel",
        [waitReasonSelectNoCases] = "weft_select with no cases",
        [waitReasonSelect] = "weft_select",
        [waitReasonChanReceive] = "weft_chan_recv",
        [waitReasonChanSend] = "weft_chan_send",
        [waitReasonSyncCondWait] = "weft_cond_wait",
        [waitReasonSyncMutexLock] = "weft_mutex_lock",
        [waitReasonSyncRWMutexRLock] = "weft_rwmutex_rlock",
        [waitReasonSyncRWMutexLock] = "weft_rwmutex_lock",
        [waitReasonSyncWaitGroupWait] = "weft_wg_wait",
    };
    if (r < 0 || r >= waitReasonCount || !calls[r])
        return "a park";
    return calls[r];
}

/* Where gp's frames start, for the status st read once by the caller.  A
 * saved context is read from gp's own stack, so its SP must lie inside
 * it: a stale SP then costs a wrong walk, never a fault. */
WEFT_NO_ASAN static void gwalk(G *gp, AO_t st, weft__gview *out)
{
    out->walk = VGwalk_none;
    out->pc = out->fp = out->sp = out->copy = 0;
    if (st == Gsyscall) {
        out->pc = gp->syscallpc;
        out->fp = gp->syscallfp;
        out->sp = gp->syscallsp;
        if (out->pc)
            out->walk = VGwalk_syscall;
        return;
    }
    if (st != Grunnable && st != Gwaiting)
        return;
    uintptr_t sp = (uintptr_t)gp->sp;
    weft__stack *s = gp->stack;
    if (sp == 0 && gp->stacklo != 0 && s) {
        /* Parked with a compacted stack (stack.c): its frames are read in
         * the copy, never in place, where a read would bring the stack
         * back.  Being compacted or restored right now: no walk. */
        int cs = STACK_STATE(AO_load_acquire(&s->cstate));  /* load-acquire: as stack.c's readers */
        sp = s->savedsp;
        if (cs == STACK_COMPACTED) {
            uintptr_t copy = weft__stack_addr(gp, sp);
            if (copy == sp)
                return;     /* restored since */
            out->copy = copy;
        } else if (cs != STACK_RESIDENT && cs != STACK_PENDING) {
            return;
        }
    }
    if (sp == 0 && st == Grunnable) {
        /* It has not run yet: it has no frame, only its function (g.c) */
        out->walk = VGwalk_fresh;
        out->pc = (uintptr_t)gp->fn;
        return;
    }
    if (sp < gp->stacklo || sp + 64 > gp->stackhi)
        return;
    weft__ctx_frame((void *)(out->copy ? out->copy : sp), &out->pc, &out->fp);
    if (out->fp == 0) {
        /* weft__ctx_init's frame: it has never run */
        out->walk = VGwalk_fresh;
        out->pc = (uintptr_t)gp->fn;
    } else {
        out->walk = VGwalk_saved;
        out->sp = sp;
    }
}

void weft__view_g(G *gp, weft__gview *out)
{
    AO_t st = AO_load(&gp->atomicstatus);
    M *m = gp->m, *lm = gp->lockedm;
    out->g = gp;
    out->goid = gp->goid;
    out->status = (int)st;
    out->statusname = gstatusname(st);
    out->waitreason = weft__waitreason_str(gp->waitreason);
    out->waitsince = gp->waitsince;
    out->gopc = gp->gopc;
    out->parentgoid = gp->parentgoid;
    out->name = gp->name;
    out->ismain = gp->ismain;
    out->locked = lm != NULL;
    out->lockedm = mid(lm);
    out->m = m;
    out->mid = mid(m);
    out->stacklo = gp->stacklo;
    out->stackhi = gp->stackhi;
    out->ancestors = gp->ancestors;
    out->nancestors = gp->ancestors ? gp->nancestors : 0;
    gwalk(gp, st, out);
}

/* The object behind one queued sudog. */
static void waitobj(const weft__sudog *sg, weft__waitobj *o)
{
    uintptr_t a = (uintptr_t)sg->obj;
    *o = (weft__waitobj){ .addr = a, .kind = VWAIT_OTHER };
    switch (sg->reason) {
    case waitReasonChanReceive:
    case waitReasonChanSend:
    case waitReasonSelect: {
        weft_chan *c = sg->obj;
        o->kind = VWAIT_CHAN;
        /* A select's direction is the queue it sits on (q is cleared once
         * it lost its race: then neither). */
        weft__waitq *q = sg->q;
        o->dir = sg->reason == waitReasonChanReceive ? VDIR_RECV
                 : sg->reason == waitReasonChanSend  ? VDIR_SEND
                 : q == &c->recvq                    ? VDIR_RECV
                 : q == &c->sendq                    ? VDIR_SEND
                                                     : VDIR_NONE;
        o->len = AO_load(&c->qcount);   /* racy, as weft_chan_len */
        o->cap = c->dataqsiz;
        o->closed = c->closed;          /* racy: a hint for the reader */
        break;
    }
    case waitReasonSyncMutexLock:
        o->kind = VWAIT_MUTEX;
        o->addr = a - offsetof(weft_mutex, sema);
        break;
    case waitReasonSyncRWMutexRLock:
        o->kind = VWAIT_RWMUTEX;
        o->addr = a - offsetof(weft_rwmutex, readersem);
        break;
    case waitReasonSyncRWMutexLock:
        o->kind = VWAIT_RWMUTEX;
        o->addr = a - offsetof(weft_rwmutex, writersem);
        break;
    case waitReasonSyncWaitGroupWait:
        o->kind = VWAIT_WAITGROUP;
        o->addr = a - offsetof(weft_wg, sema);
        break;
    case waitReasonSyncCondWait:
        o->kind = VWAIT_COND;
        break;
    case waitReasonIOWait:
        o->kind = VWAIT_FD;
        break;
    default:
        break;
    }
}

int weft__view_gwaits(G *gp, weft__waitobj *out, int max)
{
    if (AO_load(&gp->atomicstatus) != Gwaiting)
        return 0;
    int n = 0;
    /* Bounded: a racy walk of a list the owner relinks could loop. */
    for (const weft__sudog *sg = gp->w.waiting; sg && n < 1024; sg = sg->waitlink, n++)
        if (n < max)
            waitobj(sg, &out[n]);
    return n;
}

static int qlen(const weft__waitq *q)
{
    int n = 0;
    for (const weft__sudog *sg = q->first; sg; sg = sg->next)
        n++;
    return n;
}

bool weft__view_stillwaiting(G *gp, int64_t since)
{
    /* load-acquire: pairs with the waker's store of the status, so a G seen
     * still waiting had not begun a new wait (waitsince) before it */
    return AO_load_acquire(&gp->atomicstatus) == Gwaiting && gp->waitsince == since;
}

bool weft__view_chanwaiters(G *gp, int64_t since, uintptr_t addr, weft__waitobj *out, int *nrecv, int *nsend)
{
    weft_chan *c = (weft_chan *)addr;
    /* store-full: pairs with weft_chan_free's load-full (chan.c): our
     * check below that gp still waits on c is ordered after it */
    AO_store_full(&weft__chan_inspecting, addr);
    bool ok = weft__view_stillwaiting(gp, since);
    if (ok) {
        ok = false;
        int n = 0;  /* bounded, as weft__view_gwaits */
        for (const weft__sudog *sg = gp->w.waiting; sg && !ok && n < 1024; sg = sg->waitlink, n++)
            ok = sg->obj == c;
    }
    if (ok) {
        weft__lock(&c->lock);
        *nrecv = qlen(&c->recvq);
        *nsend = qlen(&c->sendq);
        out->len = AO_load(&c->qcount);     /* under the lock: exact */
        out->cap = c->dataqsiz;
        out->closed = c->closed;
        weft__unlock(&c->lock);
    }
    /* store-release: our reads of c come before a free that sees 0 */
    AO_store_release(&weft__chan_inspecting, 0);
    return ok;
}

void weft__view_self(weft__selfview *out)
{
    G *gp = weft__getg();
    out->g = gp && !gp->issystem ? gp : NULL;
    out->m = gp ? gp->m : NULL;
    out->stacklo = gp ? gp->stacklo : 0;
    out->stackhi = gp ? gp->stackhi : 0;
}
