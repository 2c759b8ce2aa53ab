/*
 * local.c — per-goroutine storage, the safe replacement for _Thread_local
 * inside goroutines (a G may resume on another thread after any weft call).
 */
#include <stdlib.h>

#include "runtime.h"

static AO_t nkeys;                                  /* atomic: keys handed out */
static void (*dtors[WEFT_LOCAL_KEYS])(void *);      /* written before the key is returned */

int weft_local_key(void (*dtor)(void *))
{
    for (;;) {
        AO_t n = AO_load(&nkeys);
        if (n >= WEFT_LOCAL_KEYS)
            return -EAGAIN;
        dtors[n] = dtor;
        /* CAS-full: claims slot n and publishes its destructor. */
        if (AO_compare_and_swap_full(&nkeys, n, n + 1))
            return (int)n;
    }
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
    AO_t n = AO_load(&nkeys);
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
