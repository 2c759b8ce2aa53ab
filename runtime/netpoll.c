/*
 * netpoll.c — the network poller: epoll, edge-triggered, one registration
 * per fd, integrated with the scheduler (Go's netpoll.go + netpoll_epoll.go).
 *
 * weft_read & co. put the fd in non-blocking mode, try the call, and on
 * EAGAIN park the goroutine on the fd's pollDesc.  The poller is run
 *   - non-blocking by findrunnable, before it steals;
 *   - blocking by an M that has nothing else to do (it drops its P and
 *     sleeps in epoll_wait until the next timer), one M at a time: it
 *     swaps netpoll_lastpoll to 0 while it sleeps there, and only it sets
 *     it again;
 *   - by sysmon when nobody has polled for 10 ms.
 * The poll hands back the goroutines it took off their queues; the caller
 * runs one on its own M (after taking a P, if it blocked) and spreads the
 * rest over the idle Ps (sched.c's findrunnable and injectglist).
 *
 * Each pollDesc has two "edges" (ready flags) and two wait queues (readers,
 * writers) of sudogs (park.c), under the pollDesc's lock.  A readiness
 * event wakes the first waiter of its direction, or records the edge for
 * the next wait when nobody waits.  Several goroutines may wait on one fd
 * (a pool of acceptors on one listener, two readers): they queue, and are
 * woken in turn, one per event, as Go's fd mutex serializes them; a
 * goroutine that was woken and leaves (its call succeeded or failed)
 * wakes the next one, since the readiness it consumed may have covered
 * more than its own call (three connections behind one edge).
 * weft_close wakes every waiter with -EBADF before closing the fd.  Close
 * fds that weft waits on with weft_close: a plain close(2) leaves a stale
 * registration for a reused fd number.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag/nosigpipe.h"
#include "park.h"
#include "race.h"

typedef struct polldesc {
    weft__mutex lock;
    int fd;
    bool registered;        /* lock */
    bool closing;           /* lock */
    uint8_t kind;           /* lock, set at registration: how weft_write writes it (fdkind) */
    bool rready, wready;    /* lock: an edge arrived with nobody waiting */
    weft__waitq rq, wq;     /* lock: parked readers / writers */
} polldesc;

/* How a write to the fd avoids SIGPIPE (see diag/nosigpipe.h). */
enum fdkind { FD_OTHER, FD_SOCKET, FD_PIPE };

static weft__mutex pdlock = WEFT__MUTEX_INIT(LOCKRANK_POLLTABLE);   /* protects the table's growth */
static polldesc **pds;              /* pdlock to grow; entries never move */
static size_t npds;                 /* pdlock: entries in pds */
static int epfd = -1;
static int breakfd = -1;            /* eventfd that interrupts a blocking poll */
static AO_t pollinit;               /* atomic: 0 no, 1 initializing, 2 ready */
AO_t weft__netpoll_waiters;         /* atomic: parked Gs (poll only if > 0) */
AO_t weft__netpoll_lastpoll;        /* atomic: nanotime of the last poll, 0 while an M blocks in
                                     * it (a poll that does not block leaves the 0 alone) */

static int netpoll_init(void)
{
    for (;;) {
        /* load-acquire: pairs with the store-release of 2 below (epfd is set) */
        AO_t s = AO_load_acquire(&pollinit);
        if (s == 2) {
            weft__race_acquire(&pollinit);  /* epoll_create1 happens before our epoll_ctl */
            return 0;
        }
        if (s == 0 && AO_compare_and_swap_full(&pollinit, 0, 1))   /* one initializer */
            break;
        sched_yield();
    }
    epfd = epoll_create1(EPOLL_CLOEXEC);
    breakfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || breakfd < 0) {
        int e = -errno;
        if (epfd >= 0)
            close(epfd);
        epfd = -1;
        AO_store_release(&pollinit, 0);
        return e;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    epoll_ctl(epfd, EPOLL_CTL_ADD, breakfd, &ev);
    /* plain store: published by the store-release of pollinit below */
    AO_store(&weft__netpoll_lastpoll, (AO_t)weft__nanotime());
    /* To every user of epfd and breakfd, which ThreadSanitizer's fd
     * interceptors track (race.h). */
    weft__race_release(&pollinit);
    /* store-release: epfd and breakfd are visible to whoever sees 2 */
    AO_store_release(&pollinit, 2);
    return 0;
}

/* The pollDesc of fd, registering fd with epoll on first use. */
static int getpd(int fd, polldesc **out)
{
    if (fd < 0)
        return -EBADF;
    int err = netpoll_init();
    if (err < 0)
        return err;
    weft__lock(&pdlock);
    if ((size_t)fd >= npds) {
        /* An open fd first: the table grows to the fd's number, so a bogus
         * one (INT_MAX) must not reach it.  (Below the table's size, the
         * registration's F_GETFL checks it.) */
        if (fcntl(fd, F_GETFD) < 0) {
            weft__unlock(&pdlock);
            return -EBADF;
        }
        size_t n = npds ? npds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        /* pdlock orders the table's growths, out of TSan's sight (race.h). */
        weft__race_ignore_begin();
        polldesc **np = realloc(pds, n * sizeof *np);
        if (np)
            memset(np + npds, 0, (n - npds) * sizeof *np);
        weft__race_ignore_end();
        if (!np) {
            weft__unlock(&pdlock);
            return -ENOMEM;
        }
        pds = np;
        npds = n;
    }
    polldesc *pd = pds[fd];
    if (!pd) {
        pd = calloc(1, sizeof *pd);
        if (!pd) {
            weft__unlock(&pdlock);
            return -ENOMEM;
        }
        weft__lockinit(&pd->lock, LOCKRANK_POLLDESC);
        pd->fd = fd;
        pds[fd] = pd;
    }
    weft__unlock(&pdlock);
    weft__lock(&pd->lock);
    if (!pd->registered) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            weft__unlock(&pd->lock);
            return -errno;
        }
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = pd };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno != EEXIST) {
            int e = -errno;
            weft__unlock(&pd->lock);
            /* Regular files cannot be polled: they are always ready. */
            return e == -EPERM ? 1 : e;
        }
        struct stat st;
        pd->kind = fstat(fd, &st) != 0 ? FD_OTHER :
                   S_ISSOCK(st.st_mode) ? FD_SOCKET : S_ISFIFO(st.st_mode) ? FD_PIPE : FD_OTHER;
        pd->registered = true;
        pd->closing = false;
        pd->rready = pd->wready = false;
    }
    weft__unlock(&pd->lock);
    *out = pd;
    return 0;
}

static bool pdunlock(G *gp, void *pd)
{
    (void)gp;
    weft__unlock(&((polldesc *)pd)->lock);
    return true;
}

/* Waits until fd is readable (write = false) or writable, until deadline
 * (absolute nanotime; 0: forever; < 0: do not wait).  again: the caller
 * was woken already and found nothing; it keeps its place at the head of
 * the queue, as it has waited longest.  0, -EBADF, -ETIMEDOUT, -ENOMEM. */
static int pdwait(polldesc *pd, bool write, int64_t deadline, bool again)
{
    G *gp = weft__note_plain_thread();
    if (!gp || gp->issystem) {
        /* A plain thread: block it in poll(2). */
        struct pollfd p = { .fd = pd->fd, .events = (short)(write ? POLLOUT : POLLIN) };
        int ms = -1;
        if (deadline) {
            int64_t left = deadline < 0 ? 0 : deadline - weft__nanotime();
            ms = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        int r = poll(&p, 1, ms);
        if (r < 0)
            return -errno;
        return r == 0 ? -ETIMEDOUT : 0;
    }
    weft__lock(&pd->lock);
    if (pd->closing) {
        weft__unlock(&pd->lock);
        return -EBADF;
    }
    bool *edge = write ? &pd->wready : &pd->rready;
    if (*edge) {
        *edge = false;
        weft__unlock(&pd->lock);
        return 0;
    }
    if (deadline < 0) {
        weft__unlock(&pd->lock);
        return -ETIMEDOUT;
    }
    weft__waiter *w = weft__waiter_get(gp, NULL, waitReasonIOWait);
    weft__sudog *sg = weft__acquiresudog(w, NULL);
    sg->obj = pd;
    sg->reason = waitReasonIOWait;
    weft__waitq *q = write ? &pd->wq : &pd->rq;
    if (again)
        weft__waitq_pushfront(q, &pd->lock, sg);
    else
        weft__waitq_push(q, &pd->lock, sg);
    w->waiting = sg;
    /* fetch_and_add_full: the count is visible before we park, so an M about
     * to sleep sees a waiter and polls (a stale read only delays a poll
     * until sysmon's). */
    AO_fetch_and_add1_full(&weft__netpoll_waiters);
    int woke = weft__park(w, pdunlock, pd, waitReasonIOWait, deadline);
    /* fetch_and_sub: a counter hint; we are no longer waiting */
    AO_fetch_and_sub1(&weft__netpoll_waiters);
    w->waiting = NULL;
    int ret = woke < 0 ? woke : woke == 0 ? -ETIMEDOUT : sg->success ? 0 : -EBADF;
    weft__releasesudog(sg);
    return ret;
}

/* A goroutine woken by readiness leaves (its call is done, or failed):
 * the readiness it consumed may cover the next waiter's call too, so wake
 * it; it tries its call and, if there is nothing for it, waits again. */
static void pdpass(polldesc *pd, bool write)
{
    weft__waitq *q = write ? &pd->wq : &pd->rq;
    /* load: a hint; the queue is read again under the lock */
    if (!AO_load((AO_t *)&q->first))
        return;
    weft__lock(&pd->lock);
    weft__sudog *sg = weft__waitq_pop(q);
    if (sg)
        sg->success = true;
    weft__unlock(&pd->lock);
    if (sg)
        weft__wake(sg, false);
}

/* pd->lock held: takes the first waiter of q (marked with ok), or records
 * an edge when nobody waits and the fd became ready. */
static weft__sudog *wakeone(weft__waitq *q, bool *edge, bool ok)
{
    weft__sudog *sg = weft__waitq_pop(q);
    if (sg)
        sg->success = ok;
    else if (ok)
        *edge = true;
    return sg;
}

/* Ends the wait of the goroutine behind sg (taken off its queue, the
 * pollDesc unlocked) by appending it to *l instead of readying it: the
 * caller decides where it runs (weft__injectglist). */
static void glistadd(weft__glist *l, weft__sudog *sg)
{
    weft__waiter *w = sg->w;
    w->param = sg;
    if (unlikely(!w->g)) {
        /* Plain threads wait in poll(2), never on a pollDesc. */
        weft__throw("netpoll: a plain thread on a pollDesc");
    }
    G *gp = w->g;
    gp->schedlink = NULL;
    if (l->tail)
        l->tail->schedlink = gp;
    else
        l->head = gp;
    l->tail = gp;
    l->n++;
}

/* Polls epoll once, waiting at most ns (0: don't wait, < 0: forever), and
 * takes the goroutines whose fds are ready off their queues, into *l
 * (Go's netpoll returns its gList the same way): they are still waiting,
 * and the caller makes them runnable where it wants them — one on its
 * own M, the rest spread over the idle Ps — since readying them here,
 * from an M that may hold no P, would wake another thread to run each.
 * lastpoll is the caller's (see findrunnable and sysmon). */
void weft__netpoll(int64_t ns, weft__glist *l)
{
    l->head = l->tail = NULL;
    l->n = 0;
    if (AO_load_acquire(&pollinit) != 2)
        return;
    weft__race_acquire(&pollinit);
    struct epoll_event evs[128];
    int ms = ns < 0 ? -1 : ns == 0 ? 0 : (int)((ns + 999999) / 1000000);
    int n = epoll_wait(epfd, evs, 128, ms);
    for (int i = 0; i < n; i++) {
        polldesc *pd = evs[i].data.ptr;
        if (!pd) {
            /* The break is for the M blocked here: a poll that does not
             * block leaves it (the eventfd stays readable) for that M to
             * take, as Go's netpoll does.  Taking it here left the
             * blocked M asleep at the end of main for good. */
            if (ns != 0) {
                uint64_t v;
                ssize_t r = read(breakfd, &v, sizeof v);
                (void)r;
            }
            continue;
        }
        uint32_t e = evs[i].events;
        weft__sudog *rs = NULL, *ws = NULL;
        weft__lock(&pd->lock);
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            rs = wakeone(&pd->rq, &pd->rready, true);
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            ws = wakeone(&pd->wq, &pd->wready, true);
        weft__unlock(&pd->lock);
        if (rs)
            glistadd(l, rs);
        if (ws)
            glistadd(l, ws);
    }
}

/* Interrupts an M blocked in weft__netpoll. */
void weft__netpoll_break(void)
{
    if (AO_load_acquire(&pollinit) != 2)
        return;
    weft__race_acquire(&pollinit);
    uint64_t one = 1;
    ssize_t r = write(breakfd, &one, sizeof one);
    (void)r;
}

void weft__netpoll_fini(void)
{
    if (AO_load(&pollinit) != 2)
        return;
    for (size_t i = 0; i < npds; i++)
        free(pds[i]);
    free(pds);
    pds = NULL;
    npds = 0;
    /* Every M has exited (joined): the goroutines' uses of these fds
     * happen before, through weft, which TSan does not see (race.h). */
    weft__race_ignore_begin();
    close(epfd);
    close(breakfd);
    weft__race_ignore_end();
    epfd = breakfd = -1;
    /* plain stores: shutdown, every other thread has exited */
    AO_store(&weft__netpoll_waiters, 0);
    AO_store(&pollinit, 0);
}

/* ---- the I/O calls -----------------------------------------------------------
 * Each tries the call first and waits only on EAGAIN; `woken` records that
 * it consumed a readiness event, so that it hands the turn on (pdpass)
 * when it leaves.  Each public call is also a scheduling point
 * (weft__preemptpoint): a call that does not wait (data was there, or an
 * error such as accept's EMFILE) must still let sysmon's yield request
 * through, or a loop of them starves its P. */

static ssize_t fdread(int fd, void *b, size_t n)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    bool woken = false;
    ssize_t r;
    for (;;) {
        r = read(fd, b, n);
        if (r >= 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !pd) {
            r = -errno;
            break;
        }
        if ((r = pdwait(pd, false, 0, woken)) < 0)
            return r;
        woken = true;
    }
    if (woken)
        pdpass(pd, false);
    return r;
}

/* One write(2) that turns a broken pipe or socket into EPIPE, never a
 * SIGPIPE: weft.h promises -EPIPE. */
static ssize_t write1(polldesc *pd, int fd, const void *b, size_t n)
{
    switch (pd ? pd->kind : FD_OTHER) {
    case FD_SOCKET:
        return send(fd, b, n, MSG_NOSIGNAL);
    case FD_PIPE:
        return weft__write_nosigpipe(fd, b, n);
    default:
        return write(fd, b, n);     /* a file or a terminal: no SIGPIPE */
    }
}

static ssize_t fdwrite(int fd, const void *b, size_t n)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    bool woken = false;
    size_t done = 0;
    ssize_t ret = 0;
    while (done < n) {
        ssize_t r = write1(pd, fd, (const char *)b + done, n - done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !pd) {
            ret = -errno;
            break;
        }
        if ((err = pdwait(pd, true, 0, woken)) < 0)
            return done ? (ssize_t)done : err;
        woken = true;
    }
    if (woken)
        pdpass(pd, true);
    return done ? (ssize_t)done : ret;
}

static int fdaccept(int fd, struct sockaddr *sa, socklen_t *len)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    bool woken = false;
    int c;
    for (;;) {
        c = accept4(fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            break;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN || !pd) {
            c = -errno;
            break;
        }
        if ((c = pdwait(pd, false, 0, woken)) < 0)
            return c;
        woken = true;
    }
    if (woken)
        pdpass(pd, false);
    return c;
}

static int fdconnect(int fd, const struct sockaddr *sa, socklen_t len)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EINTR)
        return -errno;
    if (!pd)
        return -EINVAL;
    if ((err = pdwait(pd, true, 0, false)) < 0)
        return err;
    pdpass(pd, true);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return -errno;
    return -soerr;
}

static int fdwait(int fd, int events, int64_t timeout_ns)
{
    if (!(events & (WEFT_READ | WEFT_WRITE)) || (events & ~(WEFT_READ | WEFT_WRITE)))
        return -EINVAL;
    if ((events & WEFT_READ) && (events & WEFT_WRITE))
        return -EINVAL;     /* one direction per call, as Go's pollDesc */
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    if (!pd)
        return events;      /* regular file: always ready */
    bool write = (events & WEFT_WRITE) != 0;
    int64_t deadline = timeout_ns < 0 ? 0 : timeout_ns == 0 ? -1 : weft__deadline(timeout_ns);
    err = pdwait(pd, write, deadline, false);
    if (err < 0)
        return err;
    /* The caller does its own call, which may leave readiness for the
     * others: let them look too. */
    pdpass(pd, write);
    return events;
}

ssize_t weft_read(int fd, void *b, size_t n)
{
    ssize_t r = fdread(fd, b, n);
    weft__preemptpoint();
    return r;
}

ssize_t weft_write(int fd, const void *b, size_t n)
{
    ssize_t r = fdwrite(fd, b, n);
    weft__preemptpoint();
    return r;
}

int weft_accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    int r = fdaccept(fd, sa, len);
    weft__preemptpoint();
    return r;
}

int weft_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    int r = fdconnect(fd, sa, len);
    weft__preemptpoint();
    return r;
}

int weft_wait_fd(int fd, int events, int64_t timeout_ns)
{
    int r = fdwait(fd, events, timeout_ns);
    weft__preemptpoint();
    return r;
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    polldesc *pd = NULL;
    weft__lock(&pdlock);
    if ((size_t)fd < npds)
        pd = pds[fd];
    weft__unlock(&pdlock);
    if (!pd)
        return close(fd) == 0 ? 0 : -errno;
    /* Take every waiter (linked through next), wake them with -EBADF after
     * unlocking. */
    weft__sudog *head = NULL, **tail = &head, *sg;
    weft__lock(&pd->lock);
    if (pd->registered) {
        pd->closing = true;
        while ((sg = wakeone(&pd->rq, &pd->rready, false)) != NULL ||
               (sg = wakeone(&pd->wq, &pd->wready, false)) != NULL) {
            *tail = sg;
            tail = &sg->next;
        }
        epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
        pd->registered = false;
    }
    int ret = close(fd) == 0 ? 0 : -errno;
    pd->closing = false;
    weft__unlock(&pd->lock);
    weft__wakelist(head, false);
    return ret;
}
