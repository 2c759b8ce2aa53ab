/*
 * chan.h — a channel's insides, shared by chan.c (send, receive, close)
 * and select.c.
 */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include "park.h"
#include "race.h"

struct weft_chan {
    weft__mutex lock;
    AO_t qcount;            /* lock to write (AO_store); read racily by weft_chan_len.
                             * Every AO_load of it under the lock is a plain
                             * read of a lock-protected word: the lock orders it. */
    size_t dataqsiz;        /* const: capacity */
    size_t elemsize;        /* const */
    char *buf;              /* const: dataqsiz * elemsize bytes (NULL if 0) */
    size_t sendx, recvx;    /* lock */
    bool closed;            /* lock */
    weft__waitq recvq, sendq; /* lock: sudogs of blocked receivers / senders */
};

/* The channel SCHEDDEBUG=blockwarn's report is reading (sysmon, through
 * weft__view_chanwaiters), or 0: weft_chan_free waits until it is not
 * this one, so the report never reads a freed channel. */
extern AO_t weft__chan_inspecting;

/* Data movement, written once for channel operations and select (Go's
 * send/recv).  Each is called with c->lock held (and, from select, every
 * other channel lock of the select); the *direct ones take sg off the peer
 * queue's sudog, call unlockf(NULL, arg) — which must release c->lock and
 * whatever else the caller holds — and then wake the peer.  The buffer
 * ones leave the unlocking to the caller. */
void weft__chan_senddirect(weft_chan *c, weft__sudog *sg, const void *ep,
                           weft__unlockf unlockf, void *arg);
void weft__chan_recvdirect(weft_chan *c, weft__sudog *sg, void *ep,
                           weft__unlockf unlockf, void *arg);
void weft__chan_sendbuf(weft_chan *c, const void *ep);   /* room in the ring */
void weft__chan_recvbuf(weft_chan *c, void *ep);         /* something in the ring */
void weft__chan_elemclear(weft_chan *c, void *ep);

/* A nil channel, or a select with no case and no timeout: block forever,
 * as Go does. */
_Noreturn void weft__block_forever(weft__waitreason why);

#endif
