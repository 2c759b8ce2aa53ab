/*
 * test_lockrank.c — the lock-rank checker of the WEFT_LOCKRANK build
 * (lock.c, the order in lockrank.h): locks taken against the order, twice,
 * without a rank, or released by a thread that does not hold them throw
 * with a message naming the locks; the orders the table allows, several
 * locks of one rank in address order, trylocks and crash output pass.
 * Built only with -DWEFT_LOCKRANK=ON.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

/* Runs f in a child process with its stderr captured in err; returns the
 * wait status. */
static int run_child(void (*f)(void), char *err, size_t len)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        f();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    char scratch[4096];
    while ((r = read(p[0], n < len - 1 ? err + n : scratch,
                     n < len - 1 ? len - 1 - n : sizeof scratch)) > 0)
        if (n < len - 1)
            n += (size_t)r;
    err[n] = 0;
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return st;
}

static bool died_with(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 2; }

/* The line the checker prints for `held` held while acquiring `acq`. */
static const char *ordering_line(int held, int acq, char *buf, size_t len)
{
    snprintf(buf, len, "runtime: lock ordering problem: %s (rank %d) held while acquiring %s (rank %d)",
             weft__lockrank_name(held), held, weft__lockrank_name(acq), acq);
    return buf;
}

static char err[65536];

/* ---- the wrong order throws, naming both locks ------------------------------- */

static weft__mutex schedlike = WEFT__MUTEX_INIT(LOCKRANK_SCHED);
static weft__mutex chanlike = WEFT__MUTEX_INIT(LOCKRANK_HCHAN);
static weft__mutex timerlike = WEFT__MUTEX_INIT(LOCKRANK_TIMERS);
static weft__mutex worldlike = WEFT__MUTEX_INIT(LOCKRANK_WORLDSEMA);

static void sched_then_chan(void)
{
    weft__lock(&schedlike);
    weft__lock(&chanlike);      /* a channel is never locked under sched.lock */
}

Test(lockrank, wrong_order_throws_naming_both_locks, .timeout = 60)
{
    int st = run_child(sched_then_chan, err, sizeof err);
    char want[256];
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, ordering_line(LOCKRANK_SCHED, LOCKRANK_HCHAN, want, sizeof want)),
              "no \"%s\" in:\n%s", want, err);
    cr_assert(strstr(err, "sched.lock (rank") && strstr(err, "chan (rank"), "%s", err);
    cr_assert(strstr(err, "fatal error: lock ordering problem"), "%s", err);
    cr_assert(strstr(err, "runtime: this thread holds 1 lock:"), "the held locks are listed:\n%s", err);
}

Test(lockrank, right_order_is_silent_and_releases_in_any_order)
{
    weft__lock(&worldlike);
    weft__lock(&schedlike);
    weft__lock(&timerlike);     /* worldsema < sched.lock < timers, transitively */
    int ranks[8];
    cr_assert_eq(weft__lockrank_held(ranks, 8), 3);
    cr_assert_eq(ranks[0], LOCKRANK_WORLDSEMA);
    cr_assert_eq(ranks[1], LOCKRANK_SCHED);
    cr_assert_eq(ranks[2], LOCKRANK_TIMERS);
    weft__unlock(&schedlike);   /* not the innermost: releases need no order */
    cr_assert_eq(weft__lockrank_held(ranks, 8), 2);
    cr_assert_eq(ranks[1], LOCKRANK_TIMERS);
    weft__unlock(&worldlike);
    weft__unlock(&timerlike);
    cr_assert_eq(weft__lockrank_held(ranks, 8), 0);
    weft__lock(&chanlike);      /* nothing held: anything goes */
    weft__unlock(&chanlike);
}

/* ---- several locks of one rank ---------------------------------------------- */

#define NCHANS 200                  /* more than the inline list holds */
static weft__mutex chans[NCHANS];

static void label_chans(void)
{
    for (int i = 0; i < NCHANS; i++)
        weft__lockinit(&chans[i], LOCKRANK_HCHAN);
}

Test(lockrank, one_rank_several_at_once_in_address_order)
{
    label_chans();
    for (int i = 0; i < NCHANS; i++)
        weft__lock(&chans[i]);
    int ranks[1];
    cr_assert_eq(weft__lockrank_held(ranks, 1), NCHANS);
    for (int i = NCHANS - 1; i >= 0; i--)
        weft__unlock(&chans[i]);
    cr_assert_eq(weft__lockrank_held(ranks, 1), 0);
}

static void chans_downwards(void)
{
    label_chans();
    weft__lock(&chans[1]);
    weft__lock(&chans[0]);
}

Test(lockrank, one_rank_against_address_order_throws, .timeout = 60)
{
    int st = run_child(chans_downwards, err, sizeof err);
    char want[256];
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, ordering_line(LOCKRANK_HCHAN, LOCKRANK_HCHAN, want, sizeof want)), "%s", err);
    cr_assert(strstr(err, "increasing address order"), "%s", err);
}

static weft__mutex sched2 = WEFT__MUTEX_INIT(LOCKRANK_SCHED);

static void two_scheds(void)
{
    weft__lock(&schedlike);
    weft__lock(&sched2);
}

Test(lockrank, a_rank_that_does_not_list_itself_is_held_once, .timeout = 60)
{
    int st = run_child(two_scheds, err, sizeof err);
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, "one lock of this rank at a time"), "%s", err);
}

static void relock(void)
{
    weft__lock(&chanlike);
    weft__lock(&chanlike);      /* would wait for itself forever */
}

Test(lockrank, taking_a_held_lock_again_throws_instead_of_hanging, .timeout = 60)
{
    int st = run_child(relock, err, sizeof err);
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, "the same lock"), "%s", err);
}

/* ---- labels and releases ------------------------------------------------------ */

static void unlabelled(void)
{
    weft__mutex l = { 0 };
    weft__lock(&l);
}

Test(lockrank, a_lock_without_a_rank_throws, .timeout = 60)
{
    int st = run_child(unlabelled, err, sizeof err);
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, "has no rank"), "%s", err);
    cr_assert(strstr(err, "fatal error: lock without a rank"), "%s", err);
}

static void *lock_chanlike(void *arg)
{
    (void)arg;
    weft__lock(&chanlike);
    return NULL;
}

static void unlock_elsewhere(void)
{
    pthread_t t;
    pthread_create(&t, NULL, lock_chanlike, NULL);
    pthread_join(t, NULL);
    weft__unlock(&chanlike);    /* locked, but by the other thread */
}

Test(lockrank, releasing_a_lock_this_thread_does_not_hold_throws, .timeout = 60)
{
    int st = run_child(unlock_elsewhere, err, sizeof err);
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, "runtime: unlock of chan (rank"), "%s", err);
    cr_assert(strstr(err, "which this thread does not hold"), "%s", err);
    cr_assert(strstr(err, "fatal error: unlock of a lock not held"), "%s", err);
}

/* The weft__mutex inside a weft_cond (sync.c's condlock). */
static weft__mutex condmutex(const weft_cond *c)
{
    weft__mutex l;
    memcpy(&l, &c->lock, sizeof l);
    return l;
}

Test(lockrank, a_cond_is_labelled_at_its_first_use)
{
    weft_cond c = WEFT_COND_INIT;
    weft_mutex m = WEFT_MUTEX_INIT;
    cr_assert_eq(condmutex(&c).sleepers >> WEFT__LOCKRANK_SHIFT, LOCKRANK_NONE);
    weft_mutex_lock(&m);
    cr_assert_eq(weft_cond_timedwait(&c, &m, 1000), -ETIMEDOUT);   /* takes the list lock */
    weft_mutex_unlock(&m);
    cr_assert_eq(condmutex(&c).sleepers >> WEFT__LOCKRANK_SHIFT, LOCKRANK_NOTIFYLIST);
    cr_assert_eq(condmutex(&c).sleepers & WEFT__SLEEPERS_MASK, 0);
    cr_assert_eq(condmutex(&c).key, 0);
}

/* ---- trylock and crash output -------------------------------------------------- */

Test(lockrank, trylock_is_recorded_but_not_order_checked)
{
    weft__lock(&schedlike);
    cr_assert(weft__trylock(&chanlike), "against the order, but it cannot wait");
    int ranks[4];
    cr_assert_eq(weft__lockrank_held(ranks, 4), 2);
    cr_assert_eq(ranks[1], LOCKRANK_HCHAN);
    weft__unlock(&chanlike);
    weft__unlock(&schedlike);
    cr_assert_eq(weft__lockrank_held(ranks, 4), 0);
}

static void lock_under_a_trylock(void)
{
    cr_assert(weft__trylock(&timerlike));
    weft__lock(&schedlike);     /* waits: checked against the trylocked timers */
}

Test(lockrank, a_lock_taken_under_a_trylock_is_checked, .timeout = 60)
{
    int st = run_child(lock_under_a_trylock, err, sizeof err);
    char want[256];
    cr_assert(died_with(st), "status %#x; stderr:\n%s", st, err);
    cr_assert(strstr(err, ordering_line(LOCKRANK_TIMERS, LOCKRANK_SCHED, want, sizeof want)), "%s", err);
}

static void crash_output(void)
{
    pthread_t t;
    pthread_create(&t, NULL, lock_chanlike, NULL);
    pthread_join(t, NULL);
    /* As startpanic: crash output is in progress (a throw now would wait
     * forever for the first one to finish, so the child would hang). */
    AO_store(&weft__panicking, 1);
    weft__unlock(&chanlike);        /* not ours: ignored */
    weft__lock(&schedlike);
    weft__lock(&chanlike);          /* wrong order: recorded, not thrown */
    weft__lock(&sched2);            /* a second sched.lock: not thrown either */
    weft__unlock(&schedlike);
    weft__unlock(&sched2);
    weft__unlock(&chanlike);
}

Test(lockrank, crash_output_is_never_turned_into_a_rank_throw, .timeout = 60)
{
    int st = run_child(crash_output, err, sizeof err);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x; stderr:\n%s", st, err);
    cr_assert_str_empty(err);
}

Test(lockrank, every_rank_has_a_name_and_the_table_points_down)
{
    for (int r = 1; r < LOCKRANK_COUNT; r++) {
        const char *n = weft__lockrank_name(r);
        cr_assert(n && *n && strcmp(n, "bad rank") != 0, "rank %d has no name", r);
        uint32_t after = weft__lockrank_after(r);
        for (int b = 0; b < LOCKRANK_COUNT; b++)
            if (after & ((uint32_t)1 << b))
                cr_assert(b > 0 && b <= r, "%s listed before %s", weft__lockrank_name(b), n);
    }
}
