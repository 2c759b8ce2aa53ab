/*
 * sema.h — the waiter record and semaphores shared by sync.c (and usable by
 * any blocking primitive): a waiter is a goroutine (parked) or a plain
 * thread (sleeping on its note).
 */
#ifndef WEFT_SEMA_H
#define WEFT_SEMA_H

#include "runtime.h"

typedef struct weft__waiter {
    G *gp;                      /* the parked goroutine, NULL for a plain thread */
    weft__note note;            /* a plain thread sleeps here */
    uint32_t *addr;             /* semaphore it waits on (sema.c) */
    uint32_t ticket;            /* weft_cond ticket */
    AO_t done;                  /* atomic: woken by a release/notify, not a timeout */
    struct weft__waiter *next, *prev;   /* the queue's lock */
} weft__waiter;

void weft__waiter_init(weft__waiter *w);
/* Blocks the caller; `held` is unlocked once it can no longer miss a wake. */
void weft__waiter_block(weft__waiter *w, weft__mutex *held, weft__waitreason r);
/* Same, for a goroutine, with fire(gp, arg) armed as a timeout after ns.
 * Returns false, with `held` STILL LOCKED, if no timer could be armed.
 * Whoever dequeues the waiter (a wake or fire) decides the outcome. */
bool weft__waiter_block_timeout(weft__waiter *w, weft__mutex *held, weft__waitreason r,
                                int64_t ns, void (*fire)(G *gp, void *arg), void *arg);
void weft__waiter_wake(weft__waiter *w);

void weft__semacquire(uint32_t *addr, bool lifo, weft__waitreason r);
void weft__semrelease(uint32_t *addr, bool handoff);

#endif
