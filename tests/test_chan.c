/*
 * test_chan.c — channels and select with Go's semantics: order, element
 * sizes, close, panics, random choice in select, nil channels, polling,
 * timeouts, lost wake-ups under stress, many producers and consumers, and
 * plain threads talking to goroutines.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"

/* ---- order ------------------------------------------------------------------------ */

static weft_chan *oc;
static long order_n;
static void order_sender(void *arg)
{
    (void)arg;
    for (long i = 0; i < order_n; i++)
        cr_assert_eq(weft_chan_send(oc, &i), 0);
    weft_chan_close(oc);
}

static void order_main(void *arg)
{
    size_t cap = (size_t)(uintptr_t)arg;
    weft_maxprocs(2);
    order_n = 10000;
    oc = weft_chan_new(sizeof(long), cap);
    cr_assert_not_null(oc);
    cr_assert_eq(weft_chan_cap(oc), cap);
    cr_assert_gt(weft_go(order_sender, NULL), 0);
    long v, want = 0;
    while (weft_chan_recv(oc, &v)) {
        cr_assert_eq(v, want, "got %ld, want %ld", v, want);
        want++;
    }
    cr_assert_eq(want, order_n);
    cr_assert_eq(v, 0, "a recv on a closed, drained channel zeroes elem");
    weft_chan_free(oc);
}

Test(chan, unbuffered_keeps_order, .timeout = 30)
{
    cr_assert_eq(weft_main(order_main, (void *)(uintptr_t)0), 0);
}

Test(chan, buffered_keeps_order, .timeout = 30)
{
    cr_assert_eq(weft_main(order_main, (void *)(uintptr_t)7), 0);
}

static void bufsemantics_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(weft_chan_trysend(c, &i), WEFT_OK);
    int x = 99;
    cr_assert_eq(weft_chan_trysend(c, &x), WEFT_WOULDBLOCK, "full");
    cr_assert_eq(weft_chan_len(c), 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(weft_chan_tryrecv(c, &x), WEFT_OK);
        cr_assert_eq(x, i);
    }
    cr_assert_eq(weft_chan_tryrecv(c, &x), WEFT_WOULDBLOCK, "empty");
    cr_assert_eq(weft_chan_len(c), 0);
    weft_chan *u = weft_chan_new(sizeof(int), 0);
    cr_assert_eq(weft_chan_trysend(u, &x), WEFT_WOULDBLOCK, "no receiver");
    cr_assert_eq(weft_chan_tryrecv(u, &x), WEFT_WOULDBLOCK, "no sender");
    cr_assert_eq(weft_chan_trysend(NULL, &x), WEFT_WOULDBLOCK);
    cr_assert_eq(weft_chan_tryrecv(NULL, &x), WEFT_WOULDBLOCK);
    weft_chan_close(u);
    x = 5;
    cr_assert_eq(weft_chan_tryrecv(u, &x), WEFT_CLOSED);
    cr_assert_eq(x, 0);
    cr_assert_eq(weft_chan_len(NULL), 0);
    cr_assert_eq(weft_chan_cap(NULL), 0);
    weft_chan_free(c);
    weft_chan_free(u);
    weft_chan_free(NULL);
}

Test(chan, try_ops_len_cap, .timeout = 30)
{
    cr_assert_eq(weft_main(bufsemantics_main, NULL), 0);
}

Test(chan, absurd_sizes_are_null)
{
    cr_assert_null(weft_chan_new((size_t)1 << 20, 1), "elem > 64 KiB");
    cr_assert_null(weft_chan_new(8, SIZE_MAX / 4));
    weft_chan *z = weft_chan_new(0, (size_t)1 << 40);
    cr_assert_not_null(z, "zero-size elements need no buffer");
    weft_chan_free(z);
}

/* ---- element sizes --------------------------------------------------------------- */

typedef struct { unsigned char b[100]; } big;
static weft_chan *bigc, *zc;

static void big_sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++) {
        big v;
        memset(v.b, i & 0xff, sizeof v.b);
        v.b[99] = (unsigned char)(i * 7);
        weft_chan_send(bigc, &v);
    }
    for (int i = 0; i < 1000; i++)
        weft_chan_send(zc, NULL);
    weft_chan_close(zc);
}

static void sizes_main(void *arg)
{
    size_t cap = (size_t)(uintptr_t)arg;
    weft_maxprocs(2);
    bigc = weft_chan_new(sizeof(big), cap);
    zc = weft_chan_new(0, cap);
    weft_go(big_sender, NULL);
    for (int i = 0; i < 1000; i++) {
        big v;
        cr_assert(weft_chan_recv(bigc, &v));
        for (int k = 0; k < 99; k++)
            cr_assert_eq(v.b[k], i & 0xff);
        cr_assert_eq(v.b[99], (unsigned char)(i * 7));
    }
    int n = 0;
    while (weft_chan_recv(zc, NULL))
        n++;
    cr_assert_eq(n, 1000);
    weft_chan_free(bigc);
    weft_chan_free(zc);
}

Test(chan, element_sizes_100_and_0_unbuffered, .timeout = 30)
{
    cr_assert_eq(weft_main(sizes_main, (void *)(uintptr_t)0), 0);
}

Test(chan, element_sizes_100_and_0_buffered, .timeout = 30)
{
    cr_assert_eq(weft_main(sizes_main, (void *)(uintptr_t)16), 0);
}

/* ---- close ------------------------------------------------------------------------ */

static weft_chan *cc;
static atomic_int closed_seen;

static void blocked_receiver(void *arg)
{
    (void)arg;
    long v = 42;
    cr_assert_not(weft_chan_recv(cc, &v));
    cr_assert_eq(v, 0);
    atomic_fetch_add(&closed_seen, 1);
}

static void close_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    cc = weft_chan_new(sizeof(long), 4);
    for (long i = 1; i <= 3; i++)
        weft_chan_send(cc, &i);
    weft_chan_close(cc);
    long v;
    for (long i = 1; i <= 3; i++) {
        cr_assert(weft_chan_recv(cc, &v), "close drains the buffer first");
        cr_assert_eq(v, i);
    }
    v = 7;
    cr_assert_not(weft_chan_recv(cc, &v));
    cr_assert_eq(v, 0);
    cr_assert_not(weft_chan_recv(cc, NULL));
    weft_chan_free(cc);

    /* Receivers blocked at close time all wake with false. */
    cc = weft_chan_new(sizeof(long), 0);
    for (int i = 0; i < 10; i++)
        weft_go(blocked_receiver, NULL);
    for (int i = 0; i < 100; i++)
        weft_yield();
    weft_chan_close(cc);
    while (atomic_load(&closed_seen) < 10)
        weft_yield();
    weft_chan_free(cc);
}

Test(chan, close_drains_then_returns_false_zeroed, .timeout = 30)
{
    cr_assert_eq(weft_main(close_main, NULL), 0);
}

static void send_closed_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    weft_chan_close(c);
    int x = 1;
    weft_chan_send(c, &x);
}

Test(chan, send_on_closed_panics, .exit_code = 2, .timeout = 30)
{
    weft_main(send_closed_main, NULL);
}

static void trysend_closed_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 1);
    weft_chan_close(c);
    int x = 1;
    weft_chan_trysend(c, &x);
}

Test(chan, trysend_on_closed_panics, .exit_code = 2, .timeout = 30)
{
    weft_main(trysend_closed_main, NULL);
}

static void close_closed_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    weft_chan_close(c);
    weft_chan_close(c);
}

Test(chan, double_close_panics, .exit_code = 2, .timeout = 30)
{
    weft_main(close_closed_main, NULL);
}

Test(chan, close_of_nil_panics, .exit_code = 2, .timeout = 30)
{
    weft_chan_close(NULL);
}

static weft_chan *bsc;
static void blocked_sender(void *arg)
{
    (void)arg;
    int x = 1;
    weft_chan_send(bsc, &x);    /* closed while waiting: panics */
}

static void close_wakes_sender_main(void *arg)
{
    (void)arg;
    bsc = weft_chan_new(sizeof(int), 0);
    weft_go(blocked_sender, NULL);
    for (int i = 0; i < 100; i++)
        weft_yield();
    weft_chan_close(bsc);
    for (;;)
        weft_yield();
}

Test(chan, close_with_blocked_sender_panics, .exit_code = 2, .timeout = 30)
{
    weft_main(close_wakes_sender_main, NULL);
}

/* ---- select -------------------------------------------------------------------------- */

static void fairness_main(void *arg)
{
    (void)arg;
    weft_chan *a = weft_chan_new(sizeof(int), 1);
    weft_chan *b = weft_chan_new(sizeof(int), 1);
    int counts[2] = { 0, 0 };
    int one = 1, va, vb;
    for (int i = 0; i < 10000; i++) {
        if (weft_chan_len(a) == 0)
            weft_chan_send(a, &one);
        if (weft_chan_len(b) == 0)
            weft_chan_send(b, &one);
        weft_case cs[3] = {
            { .ch = a, .dir = WEFT_RECV, .elem = &va },
            { .ch = NULL, .dir = WEFT_RECV, .elem = NULL },  /* never fires */
            { .ch = b, .dir = WEFT_RECV, .elem = &vb },
        };
        int r = weft_select(cs, 3, -1);
        cr_assert(r == 0 || r == 2, "select returned %d", r);
        cr_assert(cs[r].ok);
        counts[r == 2]++;
    }
    cr_assert(counts[0] >= 4000 && counts[0] <= 6000, "a chosen %d of 10000", counts[0]);
    cr_assert(counts[1] >= 4000 && counts[1] <= 6000, "b chosen %d of 10000", counts[1]);
    weft_chan_free(a);
    weft_chan_free(b);
}

Test(chan, select_chooses_uniformly_among_ready_cases, .timeout = 30)
{
    cr_assert_eq(weft_main(fairness_main, NULL), 0);
}

static void poll_main(void *arg)
{
    (void)arg;
    weft_chan *a = weft_chan_new(sizeof(int), 0);
    weft_chan *b = weft_chan_new(sizeof(int), 1);
    int x = 3, y;
    int64_t t0 = weft_nanotime();
    weft_case cs[3] = {
        { .ch = a, .dir = WEFT_RECV, .elem = &y },
        { .ch = a, .dir = WEFT_SEND, .elem = &x },
        { .ch = NULL, .dir = WEFT_SEND, .elem = &x },
    };
    cr_assert_eq(weft_select(cs, 3, 0), -1, "nothing ready: poll returns -1");
    cr_assert_eq(weft_select(NULL, 0, 0), -1);
    cr_assert_lt(weft_nanotime() - t0, 100 * 1000 * 1000);
    /* A buffered send case is ready. */
    weft_case sc[2] = {
        { .ch = a, .dir = WEFT_RECV, .elem = &y },
        { .ch = b, .dir = WEFT_SEND, .elem = &x },
    };
    cr_assert_eq(weft_select(sc, 2, 0), 1);
    cr_assert(sc[1].ok);
    cr_assert_eq(weft_chan_len(b), 1);
    /* Closed channel: a recv case is ready with ok = false. */
    weft_chan_close(a);
    y = 9;
    cr_assert_eq(weft_select(cs, 1, 0), 0);
    cr_assert_not(cs[0].ok);
    cr_assert_eq(y, 0);
    /* Bad arguments. */
    weft_case bad = { .ch = b, .dir = 7, .elem = &x };
    cr_assert_eq(weft_select(&bad, 1, 0), -EINVAL);
    cr_assert_eq(weft_select(NULL, -1, 0), -EINVAL);
    weft_chan_free(a);
    weft_chan_free(b);
}

Test(chan, select_poll_and_closed_and_einval, .timeout = 30)
{
    cr_assert_eq(weft_main(poll_main, NULL), 0);
}

/* A blocking select woken by a sender on one of its channels, while a nil
 * case and another idle channel stay silent. */
static weft_chan *sa, *sb;
static void late_sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++)
        weft_yield();
    int v = 77;
    weft_chan_send(sb, &v);
}

static void select_block_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    for (int round = 0; round < 200; round++) {
        sa = weft_chan_new(sizeof(int), 0);
        sb = weft_chan_new(sizeof(int), 0);
        weft_go(late_sender, NULL);
        int va = -1, vb = -1;
        weft_case cs[3] = {
            { .ch = sa, .dir = WEFT_RECV, .elem = &va },
            { .ch = NULL, .dir = WEFT_RECV, .elem = &va },
            { .ch = sb, .dir = WEFT_RECV, .elem = &vb },
        };
        int r = weft_select(cs, 3, -1);
        cr_assert_eq(r, 2);
        cr_assert_eq(vb, 77);
        cr_assert(cs[2].ok);
        cr_assert_eq(va, -1);
        weft_chan_free(sa);
        weft_chan_free(sb);
    }
}

Test(chan, blocking_select_wakes_on_the_right_case, .timeout = 30)
{
    cr_assert_eq(weft_main(select_block_main, NULL), 0);
}

/* Select timeouts: in a goroutine (runtime timer) and on a plain thread. */
static void timeout_main(void *arg)
{
    (void)arg;
    weft_chan *a = weft_chan_new(sizeof(int), 0);
    int y;
    weft_case cs[2] = {
        { .ch = a, .dir = WEFT_RECV, .elem = &y },
        { .ch = NULL, .dir = WEFT_SEND, .elem = &y },
    };
    int64_t t0 = weft_nanotime();
    cr_assert_eq(weft_select(cs, 2, 20 * 1000 * 1000), -1);
    int64_t dt = weft_nanotime() - t0;
    cr_assert_geq(dt, 20 * 1000 * 1000);
    cr_assert_lt(dt, 2000 * 1000 * 1000LL);
    t0 = weft_nanotime();
    cr_assert_eq(weft_select(NULL, 0, 5 * 1000 * 1000), -1, "no case: sleeps the timeout");
    cr_assert_geq(weft_nanotime() - t0, 5 * 1000 * 1000);
    weft_chan_free(a);
}

Test(chan, select_timeout_in_goroutine, .timeout = 30)
{
    cr_assert_eq(weft_main(timeout_main, NULL), 0);
}

Test(chan, select_timeout_on_plain_thread, .timeout = 30)
{
    weft_chan *a = weft_chan_new(sizeof(int), 0);
    int y;
    weft_case cs[1] = { { .ch = a, .dir = WEFT_RECV, .elem = &y } };
    int64_t t0 = weft_nanotime();
    cr_assert_eq(weft_select(cs, 1, 10 * 1000 * 1000), -1);
    cr_assert_geq(weft_nanotime() - t0, 10 * 1000 * 1000);
    weft_chan_free(a);
}

/* Timeouts racing real wake-ups: every value sent is received exactly once,
 * whether the select times out or not. */
static weft_chan *rc;
static atomic_long race_sent;
static void race_sender(void *arg)
{
    long n = (long)(intptr_t)arg;
    for (long i = 1; i <= n; i++) {
        weft_chan_send(rc, &i);
        atomic_fetch_add(&race_sent, i);
    }
    weft_chan_close(rc);
}

static void timeout_race_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    rc = weft_chan_new(sizeof(long), 0);
    long n = 3000;
    weft_go(race_sender, (void *)(intptr_t)n);
    long sum = 0, v, timeouts = 0;
    for (;;) {
        weft_case cs[1] = { { .ch = rc, .dir = WEFT_RECV, .elem = &v } };
        int r = weft_select(cs, 1, 2000 + (int64_t)(weft__fastrand() % 20000));
        if (r < 0) {
            timeouts++;
            continue;
        }
        if (!cs[0].ok)
            break;
        sum += v;
    }
    cr_assert_eq(sum, n * (n + 1) / 2, "sum %ld (%ld timeouts)", sum, timeouts);
    weft_chan_free(rc);
}

Test(chan, select_timeouts_race_wakeups_without_loss, .timeout = 60)
{
    cr_assert_eq(weft_main(timeout_race_main, NULL), 0);
}

/* Very short timeouts: the timer often fires before the goroutine has
 * committed to parking (and sometimes before it enqueued at all). */
static void short_timeout_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_chan *a = weft_chan_new(sizeof(int), 0);
    int y;
    for (int i = 0; i < 20000; i++) {
        weft_case cs[1] = { { .ch = a, .dir = WEFT_RECV, .elem = &y } };
        cr_assert_eq(weft_select(cs, 1, 1 + (int64_t)(weft__fastrand() % 3000)), -1);
    }
    weft_chan_free(a);
}

Test(chan, select_very_short_timeouts, .timeout = 60)
{
    cr_assert_eq(weft_main(short_timeout_main, NULL), 0);
}

/* More cases than fit on the stack, many on the same channels (each lock
 * taken once), polled and blocking. */
static weft_chan *mc[3];
static void many_sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        weft_yield();
    int v = 5;
    weft_chan_send(mc[1], &v);
}

static void many_cases_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    for (int i = 0; i < 3; i++)
        mc[i] = weft_chan_new(sizeof(int), i == 2 ? 1 : 0);
    int vals[200];
    weft_case cs[200];
    for (int i = 0; i < 200; i++)
        cs[i] = (weft_case){ .ch = mc[i % 2], .dir = (i % 4 == 3) ? WEFT_SEND : WEFT_RECV,
                             .elem = &vals[i] };
    cr_assert_eq(weft_select(cs, 200, 0), -1);
    cs[150] = (weft_case){ .ch = mc[2], .dir = WEFT_SEND, .elem = &vals[150] };
    vals[150] = 11;
    cr_assert_eq(weft_select(cs, 200, 0), 150, "the only ready case");
    cs[150].ch = NULL;
    for (int round = 0; round < 50; round++) {
        weft_go(many_sender, NULL);
        for (int i = 0; i < 200; i++)
            vals[i] = -1;
        int r = weft_select(cs, 200, -1);
        cr_assert_geq(r, 0);
        cr_assert_eq(cs[r].ch, mc[1]);
        cr_assert_eq(cs[r].dir, WEFT_RECV);
        cr_assert_eq(vals[r], 5);
    }
    int got;
    cr_assert(weft_chan_recv(mc[2], &got));
    cr_assert_eq(got, 11);
    for (int i = 0; i < 3; i++)
        weft_chan_free(mc[i]);
}

Test(chan, select_many_cases_with_shared_channels, .timeout = 60)
{
    cr_assert_eq(weft_main(many_cases_main, NULL), 0);
}

/* ---- stress ------------------------------------------------------------------------------ */

static weft_chan *ping, *pong;
static long rounds;

static void ponger(void *arg)
{
    (void)arg;
    long v;
    while (weft_chan_recv(ping, &v)) {
        v++;
        weft_chan_send(pong, &v);
    }
}

static void pingpong_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    ping = weft_chan_new(sizeof(long), 0);
    pong = weft_chan_new(sizeof(long), 0);
    weft_go(ponger, NULL);
    long v = 0;
    for (long i = 0; i < rounds; i++) {
        weft_chan_send(ping, &v);
        cr_assert(weft_chan_recv(pong, &v));
    }
    cr_assert_eq(v, rounds);
    weft_chan_close(ping);
}

Test(chan, pingpong_million_round_trips_two_ps, .timeout = 120)
{
    rounds = 1000000;
    cr_assert_eq(weft_main(pingpong_main, NULL), 0);
}

#define NPROD 16
#define NCONS 8
#define PER_PROD 20000
static weft_chan *work, *results;

static void producer(void *arg)
{
    long base = (long)(intptr_t)arg * PER_PROD;
    for (long i = 1; i <= PER_PROD; i++) {
        long v = base + i;
        weft_chan_send(work, &v);
    }
    long done = -1;
    weft_chan_send(results, &done);
}

static void consumer(void *arg)
{
    (void)arg;
    long v, sum = 0;
    while (weft_chan_recv(work, &v))
        sum += v;
    weft_chan_send(results, &sum);
}

static void prodcons_main(void *arg)
{
    size_t cap = (size_t)(uintptr_t)arg;
    weft_maxprocs(4);
    work = weft_chan_new(sizeof(long), cap);
    results = weft_chan_new(sizeof(long), 0);
    for (int i = 0; i < NCONS; i++)
        weft_go(consumer, NULL);
    for (int i = 0; i < NPROD; i++)
        weft_go(producer, (void *)(intptr_t)i);
    long v;
    for (int i = 0; i < NPROD; i++) {
        weft_chan_recv(results, &v);
        cr_assert_eq(v, -1);
    }
    weft_chan_close(work);
    long total = 0;
    for (int i = 0; i < NCONS; i++) {
        weft_chan_recv(results, &v);
        total += v;
    }
    long n = (long)NPROD * PER_PROD;
    cr_assert_eq(total, n * (n + 1) / 2);
    weft_chan_free(work);
    weft_chan_free(results);
}

Test(chan, producers_consumers_unbuffered, .timeout = 60)
{
    cr_assert_eq(weft_main(prodcons_main, (void *)(uintptr_t)0), 0);
}

Test(chan, producers_consumers_buffered, .timeout = 60)
{
    cr_assert_eq(weft_main(prodcons_main, (void *)(uintptr_t)64), 0);
}

/* Many selecting goroutines on shared channels: each value goes to exactly
 * one of them, whichever case wakes it. */
static weft_chan *sx, *sy, *sdone;
static void selector(void *arg)
{
    (void)arg;
    long sum = 0, v;
    bool xopen = true, yopen = true;
    while (xopen || yopen) {
        weft_case cs[2] = {
            { .ch = xopen ? sx : NULL, .dir = WEFT_RECV, .elem = &v },
            { .ch = yopen ? sy : NULL, .dir = WEFT_RECV, .elem = &v },
        };
        int r = weft_select(cs, 2, -1);
        if (!cs[r].ok) {
            if (r == 0) xopen = false; else yopen = false;
            continue;
        }
        sum += v;
    }
    weft_chan_send(sdone, &sum);
}

static void xsender(void *arg)
{
    weft_chan *c = arg;
    for (long i = 1; i <= 50000; i++)
        weft_chan_send(c, &i);
    weft_chan_close(c);
}

static void select_stress_main(void *arg)
{
    (void)arg;
    weft_maxprocs(4);
    sx = weft_chan_new(sizeof(long), 0);
    sy = weft_chan_new(sizeof(long), 3);
    sdone = weft_chan_new(sizeof(long), 0);
    for (int i = 0; i < 8; i++)
        weft_go(selector, NULL);
    weft_go(xsender, sx);
    weft_go(xsender, sy);
    long total = 0, v;
    for (int i = 0; i < 8; i++) {
        weft_chan_recv(sdone, &v);
        total += v;
    }
    cr_assert_eq(total, 2 * (50000L * 50001 / 2));
}

Test(chan, many_selectors_share_values_exactly_once, .timeout = 60)
{
    cr_assert_eq(weft_main(select_stress_main, NULL), 0);
}

/* ---- plain threads ---------------------------------------------------------------------- */

static weft_chan *to_g, *from_g;
static atomic_int thread_ok;

static void doubler(void *arg)
{
    (void)arg;
    long v;
    while (weft_chan_recv(to_g, &v)) {
        v *= 2;
        weft_chan_send(from_g, &v);
    }
    weft_chan_close(from_g);
}

static void *plain_thread(void *arg)
{
    (void)arg;
    for (long i = 0; i < 20000; i++) {
        cr_assert_eq(weft_chan_send(to_g, &i), 0);
        long v;
        cr_assert(weft_chan_recv(from_g, &v));
        cr_assert_eq(v, 2 * i);
    }
    /* and through select, blocking */
    for (long i = 0; i < 2000; i++) {
        weft_case s = { .ch = to_g, .dir = WEFT_SEND, .elem = &i };
        cr_assert_eq(weft_select(&s, 1, -1), 0);
        long v;
        weft_case r = { .ch = from_g, .dir = WEFT_RECV, .elem = &v };
        cr_assert_eq(weft_select(&r, 1, -1), 0);
        cr_assert_eq(v, 2 * i);
    }
    weft_chan_close(to_g);
    long v;
    cr_assert_not(weft_chan_recv(from_g, &v));
    atomic_store(&thread_ok, 1);
    return NULL;
}

static void thread_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    to_g = weft_chan_new(sizeof(long), 0);
    from_g = weft_chan_new(sizeof(long), 0);
    weft_go(doubler, NULL);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, plain_thread, NULL), 0);
    /* Wait without blocking the M in pthread_join for long stretches. */
    while (!atomic_load(&thread_ok))
        weft_yield();
    pthread_join(t, NULL);
    weft_chan_free(to_g);
    weft_chan_free(from_g);
}

Test(chan, plain_thread_talks_to_goroutine, .timeout = 60)
{
    cr_assert_eq(weft_main(thread_main, NULL), 0);
}

/* ---- deadlock ------------------------------------------------------------------------------ */

static void recv_forever_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(int), 0);
    int v;
    weft_chan_recv(c, &v);      /* nobody can ever send: Go's deadlock */
}

Test(chan, recv_nobody_sends_is_deadlock, .exit_code = 2, .timeout = 30)
{
    weft_main(recv_forever_main, NULL);
}

static void select_nil_main(void *arg)
{
    (void)arg;
    weft_case cs[1] = { { .ch = NULL, .dir = WEFT_RECV } };
    weft_select(cs, 1, -1);     /* only nil cases: blocks forever */
}

Test(chan, select_only_nil_cases_is_deadlock, .exit_code = 2, .timeout = 30)
{
    weft_main(select_nil_main, NULL);
}

/* ---- a NULL element to send ------------------------------------------------------ */

static void nullelem_main(void *arg)
{
    (void)arg;
    weft_chan *c = weft_chan_new(sizeof(long), 1);
    cr_assert_eq(weft_chan_send(c, NULL), -EINVAL, "no value to send: not a stale slot");
    cr_assert_eq(weft_chan_trysend(c, NULL), -EINVAL);
    weft_case cs[1] = { { c, WEFT_SEND, NULL, false } };
    cr_assert_eq(weft_select(cs, 1, 0), -EINVAL);
    cr_assert_eq(weft_chan_len(c), 0, "nothing was sent");
    long v = 7;
    cr_assert_eq(weft_chan_send(c, &v), 0);
    cr_assert(weft_chan_recv(c, NULL), "a NULL receive buffer still discards");
    weft_chan_free(c);
    /* Zero-size elements carry no value: NULL is the way to send them. */
    weft_chan *z = weft_chan_new(0, 1);
    cr_assert_eq(weft_chan_send(z, NULL), 0);
    cr_assert(weft_chan_recv(z, NULL));
    weft_chan_free(z);
}

Test(chan, sending_a_null_element_is_einval, .timeout = 30)
{
    cr_assert_eq(weft_main(nullelem_main, NULL), 0);
}
