/*
 * test_preempt.c — a goroutine that calls weft in a loop without ever
 * parking still lets the other goroutines on its P run.  weft cannot
 * preempt a goroutine as Go does; sysmon asks it to yield after 10 ms, and
 * every call that returns without parking is a scheduling point that
 * honours the request.  (An accept loop retrying on EMFILE once livelocked
 * a 1-P server this way: the goroutines that would have closed fds never
 * ran.)
 *
 * Each test runs on one P: main starts a spinner, which loops on one call
 * that never parks until main, queued behind it on the same P, gets to run
 * and tells it to stop.  Without the scheduling point the test hangs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "weft.h"

typedef int (*spinop)(void);

static atomic_int stop, started;
static spinop op;
static int devnull = -1, sock = -1;
static weft_chan *full, *empty;
static weft_mutex mu = WEFT_MUTEX_INIT;

static void spinner(void *arg)
{
    weft_wg *wg = arg;
    atomic_store(&started, 1);
    long calls = 0;
    while (!atomic_load(&stop)) {
        cr_assert_geq(op(), 0, "the call failed unexpectedly");
        calls++;
    }
    cr_assert_gt(calls, 0);
    weft_wg_done(wg);
}

static void mainfn(void *arg)
{
    (void)arg;
    devnull = open("/dev/null", O_RDWR);
    cr_assert_geq(devnull, 0);
    sock = socket(AF_UNIX, SOCK_STREAM, 0);     /* not listening: accept fails at once */
    cr_assert_geq(sock, 0);
    full = weft_chan_new(sizeof(int), 1);
    int one = 1;
    cr_assert_eq(weft_chan_send(full, &one), 0);
    empty = weft_chan_new(sizeof(int), 1);
    weft_mutex_lock(&mu);                       /* the spinner's trylock fails */
    weft_wg wg = WEFT_WG_INIT;
    weft_wg_add(&wg, 1);
    cr_assert_gt(weft_go(spinner, &wg), 0);
    while (!atomic_load(&started))
        weft_yield();
    /* We run again only if the spinner lets us. */
    atomic_store(&stop, 1);
    weft_mutex_unlock(&mu);
    weft_wg_wait(&wg);
    weft_chan_free(full);
    weft_chan_free(empty);
    close(sock);
    close(devnull);
}

static void run(spinop o)
{
    op = o;
    weft_maxprocs(1);
    cr_assert_eq(weft_maxprocs(0), 1);
    cr_assert_eq(weft_main(mainfn, NULL), 0);
}

static int do_read(void)
{
    char b[8];
    return weft_read(devnull, b, sizeof b) == 0 ? 0 : -1;  /* EOF at once */
}

static int do_write(void)
{
    return weft_write(devnull, "x", 1) == 1 ? 0 : -1;
}

static int do_accept(void)
{
    return weft_accept(sock, NULL, NULL) == -EINVAL ? 0 : -1;
}

static int do_connect(void)
{
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "/nonexistent/weft-test.sock" };
    int r = weft_connect(s, (struct sockaddr *)&a, sizeof a);
    weft_close(s);
    return r == -ENOENT ? 0 : -1;
}

static int do_wait_fd(void)
{
    return weft_wait_fd(devnull, WEFT_READ, 0) == WEFT_READ ? 0 : -1;
}

static int do_trysend(void)
{
    int v = 2;
    return weft_chan_trysend(full, &v) == WEFT_WOULDBLOCK ? 0 : -1;
}

static int do_tryrecv(void)
{
    int v;
    return weft_chan_tryrecv(empty, &v) == WEFT_WOULDBLOCK ? 0 : -1;
}

static int do_select_poll(void)
{
    int v = 3, w;
    weft_case cs[2] = { { .ch = full, .dir = WEFT_SEND, .elem = &v },
                        { .ch = empty, .dir = WEFT_RECV, .elem = &w } };
    return weft_select(cs, 2, 0) == -1 ? 0 : -1;     /* nothing ready */
}

static int do_trylock(void)
{
    if (weft_mutex_trylock(&mu)) {
        weft_mutex_unlock(&mu);     /* main let go: it is stopping us */
        return atomic_load(&stop) ? 0 : -1;
    }
    return 0;
}

Test(preempt, a_read_loop_that_never_waits_lets_others_run, .timeout = 30) { run(do_read); }
Test(preempt, a_write_loop_that_never_waits_lets_others_run, .timeout = 30) { run(do_write); }
Test(preempt, an_accept_loop_failing_at_once_lets_others_run, .timeout = 30) { run(do_accept); }
Test(preempt, a_connect_loop_failing_at_once_lets_others_run, .timeout = 30) { run(do_connect); }
Test(preempt, a_wait_fd_poll_loop_lets_others_run, .timeout = 30) { run(do_wait_fd); }
Test(preempt, a_trysend_loop_lets_others_run, .timeout = 30) { run(do_trysend); }
Test(preempt, a_tryrecv_loop_lets_others_run, .timeout = 30) { run(do_tryrecv); }
Test(preempt, a_select_poll_loop_lets_others_run, .timeout = 30) { run(do_select_poll); }
Test(preempt, a_trylock_loop_lets_others_run, .timeout = 30) { run(do_trylock); }
