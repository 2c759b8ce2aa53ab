/*
 * nosigpipe.h — write(2) that reports a broken pipe as -EPIPE instead of
 * killing the process with SIGPIPE.
 *
 * weft promises -EPIPE from weft_write and from the profile and dump
 * writers, and must not change how the program's own write(2) calls
 * behave, so it neither ignores SIGPIPE nor installs a handler (either
 * would change a disposition the program owns).  Sockets need nothing:
 * send(2) takes MSG_NOSIGNAL.  For anything else (a pipe, a FIFO, a
 * terminal) this does what libcurl and OpenSSH do per call, but per
 * thread: block SIGPIPE in this thread only for the write, and if the
 * write raised one (EPIPE) that was not already pending, consume it with
 * sigtimedwait before restoring the mask.  A broken pipe makes SIGPIPE
 * thread-directed, so no other thread's signal is taken.
 *
 * Stands alone (no runtime): the profile.proto writer uses it too.
 */
#ifndef WEFT_NOSIGPIPE_H
#define WEFT_NOSIGPIPE_H

#include <stddef.h>
#include <sys/types.h>

/* One write(2) of fd; -1 with errno as write(2), EPIPE without a signal. */
ssize_t weft__write_nosigpipe(int fd, const void *b, size_t n);

/* Writes all n bytes (retrying short writes and EINTR): 0 or -errno. */
int weft__writeall(int fd, const void *b, size_t n);

/* 0 if fd is open for writing, else -EBADF (the check weft_trace_start,
 * weft_flightrecorder_write and weft_cpuprofile_start make before they
 * take anything: an fd opened read-only fails at once, not at the first
 * write, long after). */
int weft__fd_writable(int fd);

#endif
