/*
 * netpoll.c — the network poller: epoll, edge-triggered, one registration
 * per fd, integrated with the scheduler (Go's netpoll.go + netpoll_epoll.go).
 *
 * weft_read & co. put the fd in non-blocking mode, try the call, and on
 * EAGAIN park the goroutine on the fd's pollDesc.  The poller is run
 *   - non-blocking by findrunnable, before it steals;
 *   - blocking by an M that has nothing else to do (it drops its P and
 *     sleeps in epoll_wait until the next timer), one M at a time;
 *   - by sysmon when nobody has polled for 10 ms.
 * Readied goroutines go to the polling M's P, or the global queue.
 *
 * Each pollDesc has two "edges" (ready flags) and at most one waiter per
 * direction, under the pollDesc's lock; a readiness event either wakes the
 * waiter or records the edge for the next wait.  weft_close wakes both
 * waiters with -EBADF before closing the fd.  Close fds that weft waits on
 * with weft_close: a plain close(2) leaves a stale registration for a
 * reused fd number.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime.h"

typedef struct pwaiter {
    G *gp;
    int result;             /* 0 ready, -EBADF closed, -ETIMEDOUT */
} pwaiter;

typedef struct polldesc {
    weft__mutex lock;
    int fd;
    bool registered;        /* lock */
    bool closing;           /* lock */
    bool rready, wready;    /* lock: an edge arrived with nobody waiting */
    pwaiter *rw, *ww;       /* lock: the parked reader / writer */
} polldesc;

static weft__mutex pdlock = WEFT__MUTEX_INIT(LOCKRANK_POLLTABLE);   /* protects the table's growth */
static polldesc **pds;              /* pdlock to grow; entries never move */
static int npds;
static int epfd = -1;
static int breakfd = -1;            /* eventfd that interrupts a blocking poll */
static AO_t pollinit;               /* atomic: 0 no, 1 initializing, 2 ready */
AO_t weft__netpoll_waiters;         /* atomic: parked Gs (poll only if > 0) */
AO_t weft__netpoll_lastpoll;        /* atomic: nanotime of the last poll, 0 while an M blocks in it */

static int netpoll_init(void)
{
    for (;;) {
        /* load-acquire: pairs with the store-release of 2 below (epfd is set) */
        AO_t s = AO_load_acquire(&pollinit);
        if (s == 2)
            return 0;
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
    if (fd >= npds) {
        int n = npds ? npds : 64;
        while (n <= fd)
            n *= 2;
        polldesc **np = realloc(pds, (size_t)n * sizeof *np);
        if (!np) {
            weft__unlock(&pdlock);
            return -ENOMEM;
        }
        memset(np + npds, 0, (size_t)(n - npds) * sizeof *np);
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
        pd->registered = true;
        pd->closing = false;
        pd->rready = pd->wready = false;
    }
    weft__unlock(&pd->lock);
    *out = pd;
    return 0;
}

static bool park_commit(G *gp, void *arg)
{
    (void)gp;
    weft__unlock(arg);
    return true;
}

typedef struct { polldesc *pd; pwaiter *w; bool write; } pdtimeout;

static void pd_fire(G *gp, void *arg)
{
    pdtimeout *t = arg;
    weft__lock(&t->pd->lock);
    pwaiter **slot = t->write ? &t->pd->ww : &t->pd->rw;
    if (*slot == t->w) {
        *slot = NULL;
        t->w->result = -ETIMEDOUT;
        AO_fetch_and_sub1(&weft__netpoll_waiters);
        weft__unlock(&t->pd->lock);
        weft__ready(gp, false);
        return;
    }
    weft__unlock(&t->pd->lock);
}

/* Waits until fd is readable (write = false) or writable, at most ns
 * (ns < 0: forever).  0, -EBADF, -ETIMEDOUT, -EBUSY (another G waits). */
static int pdwait(polldesc *pd, bool write, int64_t ns)
{
    G *gp = weft__getg();
    if (!gp || gp->issystem) {
        /* A plain thread: block it in poll(2). */
        AO_store(&sched.foreign, 1);   /* a flag; read under sched.lock by checkdead */
        struct pollfd p = { .fd = pd->fd, .events = (short)(write ? POLLOUT : POLLIN) };
        int ms = ns < 0 ? -1 : (int)((ns + 999999) / 1000000);
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
    if (ns == 0) {
        weft__unlock(&pd->lock);
        return -ETIMEDOUT;
    }
    pwaiter **slot = write ? &pd->ww : &pd->rw;
    if (*slot) {
        weft__unlock(&pd->lock);
        return -EBUSY;
    }
    pwaiter w = { .gp = gp, .result = 0 };
    *slot = &w;
    /* fetch_and_add_full: the count is visible before we park, so an M about
     * to sleep sees a waiter and polls (a stale read only delays a poll
     * until sysmon's). */
    AO_fetch_and_add1_full(&weft__netpoll_waiters);
    void *timer = NULL;
    pdtimeout t = { pd, &w, write };
    if (ns > 0) {
        timer = weft__timeout_arm(gp, ns, pd_fire, &t);
        if (!timer) {
            *slot = NULL;
            AO_fetch_and_sub1(&weft__netpoll_waiters);
            weft__unlock(&pd->lock);
            return -ENOMEM;
        }
    }
    weft__park(park_commit, &pd->lock, waitReasonIOWait);
    weft__timeout_disarm(timer);
    return w.result;
}

/* pd->lock held: wakes the waiter in *slot with result, or records an edge. */
static G *wakeone(polldesc *pd, pwaiter **slot, bool *edge, int result)
{
    pwaiter *w = *slot;
    if (!w) {
        if (result == 0)
            *edge = true;
        return NULL;
    }
    *slot = NULL;
    w->result = result;
    /* fetch_and_sub: a counter hint (we hold pd->lock for the waiter itself) */
    AO_fetch_and_sub1(&weft__netpoll_waiters);
    (void)pd;
    return w->gp;
}

/* Polls epoll once, waiting at most ns (0: don't wait, < 0: forever), and
 * readies the goroutines whose fds are ready.  Returns how many. */
int weft__netpoll(int64_t ns)
{
    if (AO_load_acquire(&pollinit) != 2)
        return 0;
    struct epoll_event evs[128];
    int ms = ns < 0 ? -1 : ns == 0 ? 0 : (int)((ns + 999999) / 1000000);
    int n = epoll_wait(epfd, evs, 128, ms);
    /* store: a timestamp hint for findrunnable and sysmon; it also ends the
     * "M blocked in epoll" state (0) set by the CAS in findrunnable */
    AO_store(&weft__netpoll_lastpoll, (AO_t)weft__nanotime());
    int woken = 0;
    for (int i = 0; i < n; i++) {
        polldesc *pd = evs[i].data.ptr;
        if (!pd) {
            uint64_t v;
            ssize_t r = read(breakfd, &v, sizeof v);
            (void)r;
            continue;
        }
        uint32_t e = evs[i].events;
        G *rg = NULL, *wg = NULL;
        weft__lock(&pd->lock);
        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            rg = wakeone(pd, &pd->rw, &pd->rready, 0);
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            wg = wakeone(pd, &pd->ww, &pd->wready, 0);
        weft__unlock(&pd->lock);
        if (rg) {
            weft__ready(rg, false);
            woken++;
        }
        if (wg) {
            weft__ready(wg, false);
            woken++;
        }
    }
    return woken;
}

/* Interrupts an M blocked in weft__netpoll. */
void weft__netpoll_break(void)
{
    if (AO_load_acquire(&pollinit) != 2)
        return;
    uint64_t one = 1;
    ssize_t r = write(breakfd, &one, sizeof one);
    (void)r;
}

void weft__netpoll_fini(void)
{
    if (AO_load(&pollinit) != 2)
        return;
    for (int i = 0; i < npds; i++)
        free(pds[i]);
    free(pds);
    pds = NULL;
    npds = 0;
    close(epfd);
    close(breakfd);
    epfd = breakfd = -1;
    /* plain stores: shutdown, every other thread has exited */
    AO_store(&weft__netpoll_waiters, 0);
    AO_store(&pollinit, 0);
}

/* ---- the I/O calls ----------------------------------------------------------- */

ssize_t weft_read(int fd, void *b, size_t n)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    for (;;) {
        ssize_t r = read(fd, b, n);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !pd)
            return -errno;
        if ((err = pdwait(pd, false, -1)) < 0)
            return err;
    }
}

ssize_t weft_write(int fd, const void *b, size_t n)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)b + done, n - done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN || !pd)
            return done ? (ssize_t)done : -errno;
        if ((err = pdwait(pd, true, -1)) < 0)
            return done ? (ssize_t)done : err;
    }
    return (ssize_t)done;
}

int weft_accept(int fd, struct sockaddr *sa, socklen_t *len)
{
    polldesc *pd = NULL;
    int err = getpd(fd, &pd);
    if (err < 0)
        return err;
    for (;;) {
        int c = accept4(fd, sa, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0)
            return c;
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno != EAGAIN || !pd)
            return -errno;
        if ((err = pdwait(pd, false, -1)) < 0)
            return err;
    }
}

int weft_connect(int fd, const struct sockaddr *sa, socklen_t len)
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
    if ((err = pdwait(pd, true, -1)) < 0)
        return err;
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        return -errno;
    return -soerr;
}

int weft_wait_fd(int fd, int events, int64_t timeout_ns)
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
    err = pdwait(pd, (events & WEFT_WRITE) != 0, timeout_ns < 0 ? -1 : timeout_ns);
    return err < 0 ? err : events;
}

int weft_close(int fd)
{
    if (fd < 0)
        return -EBADF;
    polldesc *pd = NULL;
    weft__lock(&pdlock);
    if (fd < npds)
        pd = pds[fd];
    weft__unlock(&pdlock);
    if (pd) {
        weft__lock(&pd->lock);
        G *rg = NULL, *wg = NULL;
        if (pd->registered) {
            pd->closing = true;
            rg = wakeone(pd, &pd->rw, &pd->rready, -EBADF);
            wg = wakeone(pd, &pd->ww, &pd->wready, -EBADF);
            epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
            pd->registered = false;
        }
        if (close(fd) != 0) {
            int e = -errno;
            weft__unlock(&pd->lock);
            return e;
        }
        pd->closing = false;
        weft__unlock(&pd->lock);
        if (rg)
            weft__ready(rg, false);
        if (wg)
            weft__ready(wg, false);
        return 0;
    }
    return close(fd) == 0 ? 0 : -errno;
}
