/*
 * nosigpipe.c — see nosigpipe.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "nosigpipe.h"

ssize_t weft__write_nosigpipe(int fd, const void *b, size_t n)
{
    sigset_t pipeset, old, pending;
    sigemptyset(&pipeset);
    sigaddset(&pipeset, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipeset, &old);
    /* Already blocked by the program: a SIGPIPE pending now is its own,
     * and stays.  Otherwise none can be pending (it would have been
     * delivered). */
    bool wasblocked = sigismember(&old, SIGPIPE);
    bool waspending = false;
    if (wasblocked && sigpending(&pending) == 0)
        waspending = sigismember(&pending, SIGPIPE);
    ssize_t r = write(fd, b, n);
    int e = errno;
    if (r < 0 && e == EPIPE && !waspending) {
        static const struct timespec zero;
        while (sigtimedwait(&pipeset, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    if (!wasblocked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = e;
    return r;
}

int weft__writeall(int fd, const void *b, size_t n)
{
    const char *p = b;
    while (n > 0) {
        ssize_t w = weft__write_nosigpipe(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int weft__fd_writable(int fd)
{
    int fl = fd < 0 ? -1 : fcntl(fd, F_GETFL);
    return fl < 0 || (fl & O_ACCMODE) == O_RDONLY ? -EBADF : 0;
}
