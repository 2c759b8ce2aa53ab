/*
 * test_epipe.c — a write to a peer that went away is -EPIPE, as weft.h
 * promises, never a SIGPIPE that kills the process; and the program's own
 * write(2) calls still behave as the program set them up (weft changes no
 * signal disposition and leaves no signal blocked or pending).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "weft.h"

/* SIGPIPE is not blocked, not pending, and still has its default action. */
static void sigpipe_untouched(void)
{
    sigset_t mask, pending;
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
    cr_assert_not(sigismember(&mask, SIGPIPE), "SIGPIPE left blocked");
    cr_assert_eq(sigpending(&pending), 0);
    cr_assert_not(sigismember(&pending, SIGPIPE), "a SIGPIPE left pending");
    struct sigaction sa;
    cr_assert_eq(sigaction(SIGPIPE, NULL, &sa), 0);
    cr_assert_eq(sa.sa_handler, SIG_DFL, "the disposition changed");
}

static void socket_main(void *arg)
{
    (void)arg;
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_write(sv[0], "hello", 5), -EPIPE);
    weft_close(sv[0]);
    sigpipe_untouched();
}

Test(epipe, a_write_to_a_closed_socket_is_epipe, .timeout = 30)
{
    cr_assert_eq(weft_main(socket_main, NULL), 0);
}

static void pipe_main(void *arg)
{
    (void)arg;
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_write(p[1], "hello", 5), -EPIPE);
    sigpipe_untouched();
    /* The profile writers too. */
    cr_assert_eq(weft_profile_write("goroutine", p[1], 1), -EPIPE);
    cr_assert_eq(weft_profile_write("goroutine", p[1], 2), -EPIPE);
    cr_assert_eq(weft_profile_write("threadcreate", p[1], 0), -EPIPE);
    sigpipe_untouched();
    weft_close(p[1]);
}

Test(epipe, a_write_to_a_pipe_without_reader_is_epipe, .timeout = 30)
{
    cr_assert_eq(weft_main(pipe_main, NULL), 0);
}

/* A plain thread's weft_write too (it has no P and no poller wait). */
Test(epipe, a_plain_threads_write_is_epipe_too, .timeout = 30)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    cr_assert_eq(weft_write(p[1], "x", 1), -EPIPE);
    cr_assert_eq(weft_profile_write("goroutine", p[1], 1), -EPIPE);
    sigpipe_untouched();
    close(p[1]);
}

/* The program blocked SIGPIPE itself and has one pending: it stays. */
Test(epipe, a_programs_own_pending_sigpipe_is_left_alone, .timeout = 30)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    cr_assert_eq(pthread_kill(pthread_self(), SIGPIPE), 0);
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    cr_assert_eq(weft_write(p[1], "x", 1), -EPIPE);
    sigset_t pending;
    cr_assert_eq(sigpending(&pending), 0);
    cr_assert(sigismember(&pending, SIGPIPE), "the program's SIGPIPE was taken");
    close(p[1]);
}

static void plain_write_main(void *arg)
{
    (void)arg;
    int p[2];
    cr_assert_eq(pipe(p), 0);
    close(p[0]);
    cr_assert_eq(weft_write(p[1], "x", 1), -EPIPE);
    ssize_t r = write(p[1], "x", 1);    /* the program's own: dies as ever */
    (void)r;
}

/* weft_write changed nothing for the program's own write(2). */
Test(epipe, the_programs_plain_write_still_gets_sigpipe, .signal = SIGPIPE, .timeout = 30)
{
    weft_main(plain_write_main, NULL);
}
