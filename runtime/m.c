/*
 * m.c — machines (OS threads): creation, thread start-up and exit.
 *
 * Ms are created on demand (startm finds no idle one) and never destroyed
 * while the runtime runs; an M without work parks on its note.  Each M
 * records the stack of the code that made it create (Go's createstack),
 * which the threadcreate profile shows.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "race.h"
#include "diag/unwind.h"

#define M_THREAD_STACK (256 * 1024)

__thread uintptr_t weft__mcause_pcs[M_CREATESTACK];
__thread int weft__mcause_n;

M *weft__allocm(void)
{
    M *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    G *g0 = calloc(1, sizeof *g0);
    if (!g0) {
        free(m);
        return NULL;
    }
    weft__race_untrack(m, sizeof *m);     /* weft's own (race.h) */
    weft__race_untrack(g0, sizeof *g0);
    g0->issystem = true;
    g0->m = m;
    AO_store(&g0->atomicstatus, Grunning);
    m->g0 = g0;
    if (weft__mcause_n > 0) {
        /* sysmon is handing off the P of a goroutine stuck in a syscall:
         * that goroutine is why this M exists */
        m->ncreatestack = weft__mcause_n;
        memcpy(m->createstack, weft__mcause_pcs, (size_t)weft__mcause_n * sizeof(uintptr_t));
    } else {
        /* the code that asked for a thread, from the caller of newm on */
        G *gp = weft__getg();
        m->ncreatestack = weft__callers(2, gp ? gp->stacklo : 0, gp ? gp->stackhi : 0,
                                        m->createstack, M_CREATESTACK);
    }
    weft__lock(&sched.lock);
    m->id = sched.mnext++;
    m->alllink = sched.allm;
    /* store-release: racy readers of allm (dumps, the profiler's writer,
     * sysmon) see a fully initialised M */
    AO_store_release((AO_t *)&sched.allm, (AO_t)m);
    weft__unlock(&sched.lock);
    return m;
}

/* Called on the new thread before it schedules. */
void weft__minit(M *m)
{
    weft__setg(m->g0);
    m->procid = weft__gettid();
    m->thread = pthread_self();
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            m->g0->stacklo = (uintptr_t)addr;
            m->g0->stackhi = (uintptr_t)addr + size;
        }
        pthread_attr_destroy(&attr);
    }
    if (!m->ism0)
        weft__sigaltstack_init(m);
    weft__cpuprof_minit(m);
    weft__race_minit(m->g0);
}

static void munit(M *m)
{
    if (!m->ism0)
        weft__sigaltstack_fini(m);
    weft__setg(NULL);
}

static void *mthread(void *arg)
{
    M *m = arg;
    /* Named for gdb, top -H, perf and weftprof (15 characters at most).
     * M0 is the program's own thread and keeps the program's name. */
    char name[16];
    snprintf(name, sizeof name, "weft-M%lld", (long long)m->id);
    pthread_setname_np(pthread_self(), name);
    weft__mstart(m);
    /* The runtime is exiting. */
    munit(m);
    weft__lock(&sched.lock);
    m->exited = true;
    sched.nmexited++;
    weft__unlock(&sched.lock);
    return NULL;
}

int weft__newm(P *pp, bool spinning)
{
    M *m = weft__allocm();
    if (!m)
        return -ENOMEM;
    m->nextp = pp;
    m->spinning = spinning;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, M_THREAD_STACK);
    int r = pthread_create(&m->thread, &attr, mthread, m);
    pthread_attr_destroy(&attr);
    if (r != 0) {
        /* The M was counted (allocm): count it as exited, or checkdead
         * would take it for a running M for ever. */
        weft__lock(&sched.lock);
        m->thread = 0;          /* never started: nothing to join */
        m->exited = true;
        sched.nmexited++;
        m->nextp = NULL;
        m->spinning = false;
        weft__unlock(&sched.lock);
        return -r;
    }
    return 0;
}

void weft__mfree(M *m)
{
    weft__cpuprof_mfree(m);
    weft__schedtrace_mfree(m);
    free(m->g0);
    free(m);
}
