/*
 * handoff.h — an unbuffered channel of longs for kernel threads, written the
 * textbook way with one mutex and two condition variables: a send waits
 * until a receiver has *taken* the value (the semantics of an unbuffered
 * weft_chan or Go chan), a receive waits until a value is there.  Senders
 * that find a value still waiting queue behind it.  Used by pingpong.c.
 *
 * The condition variables are signalled after the mutex is released (the
 * state they announce is changed under it, so no wake-up is lost): on one
 * CPU a woken thread preempts its waker, and signalling with the mutex held
 * sent it straight back to sleep on that mutex, doubling the switches per
 * round trip (8.6 µs instead of 4.2 µs here).
 */
#ifndef WEFT_PTHREAD_HANDOFF_H
#define WEFT_PTHREAD_HANDOFF_H

#include "pthread_common.h"

struct handoff {
    pthread_mutex_t mu;
    pthread_cond_t filled;      /* a value is there to take */
    pthread_cond_t taken;       /* the value was taken (the slot is free) */
    int full;
    long value;
    unsigned long puts, takes;  /* values put and taken so far */
};

#define HANDOFF_INIT { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, \
                       PTHREAD_COND_INITIALIZER, 0, 0, 0, 0 }

static inline void handoff_send(struct handoff *h, long v)
{
    pthread_mutex_lock(&h->mu);
    while (h->full)
        pthread_cond_wait(&h->taken, &h->mu);
    h->value = v;
    h->full = 1;
    unsigned long mine = ++h->puts;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_signal(&h->filled);
    pthread_mutex_lock(&h->mu);
    while (h->takes < mine)
        pthread_cond_wait(&h->taken, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static inline long handoff_recv(struct handoff *h)
{
    pthread_mutex_lock(&h->mu);
    while (!h->full)
        pthread_cond_wait(&h->filled, &h->mu);
    long v = h->value;
    h->full = 0;
    h->takes++;
    /* Both the sender of this value and any sender queued for the slot
     * wait on `taken`. */
    pthread_mutex_unlock(&h->mu);
    pthread_cond_broadcast(&h->taken);
    return v;
}

#endif
