/*
 * local.c — per-goroutine storage, the safe replacement for _Thread_local
 * inside goroutines (a G may resume on another thread after any weft call).
 */
#include <pthread.h>
#include <stdlib.h>

#include "runtime.h"

static AO_t nkeys;                                  /* atomic: keys handed out */
static void (*dtors[WEFT_LOCAL_KEYS])(void *);      /* written before the key is published */
static pthread_mutex_t keylock = PTHREAD_MUTEX_INITIALIZER;   /* serialises key creation */

/* Key creation is rare, and may run on any thread, before boot too: a plain
 * mutex serialises it.  (A lock-free claim of slot n cannot publish n's
 * destructor with the claim: two creators racing for n would both write
 * dtors[n], and the winner could get the loser's destructor.) */
int weft_local_key(void (*dtor)(void *))
{
    pthread_mutex_lock(&keylock);
    AO_t n = AO_load(&nkeys);       /* keylock orders writers: no order needed */
    int key = -EAGAIN;
    if (n < WEFT_LOCAL_KEYS) {
        dtors[n] = dtor;
        /* Release: publishes dtors[n] before the key is usable; pairs
         * with the loads of nkeys in get/set/destroy, which read dtors[]
         * only below it. */
        AO_store_release(&nkeys, n + 1);
        key = (int)n;
    }
    pthread_mutex_unlock(&keylock);
    return key;
}

void *weft_local_get(int key)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem || key < 0 || (AO_t)key >= AO_load(&nkeys) || !gp->locals)
        return NULL;
    return gp->locals[key];
}

int weft_local_set(int key, void *v)
{
    if (key < 0 || (AO_t)key >= AO_load(&nkeys))
        return -EINVAL;
    G *gp = weft__getg();
    if (!gp || gp->issystem)
        return -EPERM;
    if (!gp->locals) {
        gp->locals = calloc(WEFT_LOCAL_KEYS, sizeof(void *));
        if (!gp->locals)
            return -ENOMEM;
    }
    gp->locals[key] = v;
    return 0;
}

/* Runs the destructors of gp's values (on gp's own stack, at its end).  As
 * with pthread keys, a destructor that sets a value again gets more rounds. */
void weft__locals_destroy(G *gp)
{
    if (!gp->locals)
        return;
    AO_t n = AO_load_acquire(&nkeys);     /* pairs with weft_local_key's release */
    for (int round = 0; round < 4; round++) {
        bool any = false;
        for (AO_t k = 0; k < n; k++) {
            void *v = gp->locals[k];
            if (v && dtors[k]) {
                gp->locals[k] = NULL;
                dtors[k](v);
                any = true;
            }
        }
        if (!any)
            break;
    }
    free(gp->locals);
    gp->locals = NULL;
}
