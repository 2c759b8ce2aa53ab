/*
 * smoke_sched.c — standalone scheduler smoke test through the public API
 * only (weft.h): plain C, no Criterion, so it also runs cross-built under
 * qemu-aarch64 (tests/aarch64/run.sh).
 *
 * Boots with 2 Ps, starts NG goroutines that each yield a few times and then
 * mark themselves done, resizes GOMAXPROCS to 3 and then 1 while they run,
 * and runs a goroutine locked to its thread (weft_lock_thread) that checks
 * it never changes OS thread across yields.  Prints
 * "smoke_sched: N passed, M failed"; exit status 1 on any failure.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft.h>

#define NG 10000
#define YIELDS 3
#define LOCKED_MIN_YIELDS 200
#define WAIT_LIMIT_NS (240LL * 1000000000LL)   /* generous: qemu is slow */

/* ---- tiny harness --------------------------------------------------------- */

enum {
    T_BOOT,
    T_IDS,
    T_MAXPROCS,
    T_SPAWN,
    T_ALL_RAN_ONCE,
    T_GOID_STABLE,
    T_LOCKED_THREAD,
    T_NUM_GOROUTINE,
    T_COUNT
};
static const char *const test_names[T_COUNT] = {
    "boot", "ids", "maxprocs", "spawn", "all_ran_once", "goid_stable",
    "locked_thread", "num_goroutine",
};
/* Checks run on many threads: counters are atomic. */
static atomic_ulong checks[T_COUNT], failures[T_COUNT];

#define CHECK(t, cond)                                                          \
    do {                                                                        \
        atomic_fetch_add(&checks[t], 1);                                        \
        if (!(cond) && atomic_fetch_add(&failures[t], 1) < 5)                   \
            fprintf(stderr, "%s:%d: %s: check failed: %s\n", __FILE__, __LINE__, \
                    test_names[t], #cond);                                      \
    } while (0)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- the goroutines ------------------------------------------------------- */

static atomic_int runs[NG];         /* times goroutine i finished: must be 1 */
static int64_t seen_id[NG];         /* weft_id() inside goroutine i */
static int64_t goid[NG];            /* what weft_go returned for it */
static atomic_int done;             /* goroutines finished */

static void worker(void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    int64_t id = weft_id();

    CHECK(T_GOID_STABLE, id > 1);
    for (int k = 0; k < YIELDS; k++) {
        weft_yield();
        CHECK(T_GOID_STABLE, weft_id() == id);
    }
    seen_id[i] = id;
    atomic_fetch_add(&runs[i], 1);
    atomic_fetch_add(&done, 1);     /* seq_cst: publishes seen_id[i] */
}

static atomic_int locked_done;
static atomic_int locked_yields;

static void locked(void *arg)
{
    (void)arg;
    weft_lock_thread();
    pthread_t self = pthread_self();
    int64_t id = weft_id();
    int64_t start = now_ns();
    /* Keep yielding while the workers run and GOMAXPROCS changes, at least
     * LOCKED_MIN_YIELDS times. */
    for (int k = 0; k < LOCKED_MIN_YIELDS || atomic_load(&done) < NG; k++) {
        weft_yield();
        CHECK(T_LOCKED_THREAD, pthread_equal(pthread_self(), self));
        CHECK(T_LOCKED_THREAD, weft_id() == id);
        atomic_fetch_add(&locked_yields, 1);
        if (now_ns() - start > WAIT_LIMIT_NS)
            break;
    }
    weft_unlock_thread();
    atomic_store(&locked_done, 1);
}

/* ---- goroutine 1 ------------------------------------------------------------ */

static void wait_until(atomic_int *v, int target, int test, const char *what)
{
    int64_t start = now_ns();
    while (atomic_load(v) < target) {
        if (now_ns() - start > WAIT_LIMIT_NS) {
            fprintf(stderr, "smoke_sched: timed out waiting for %s (%d of %d)\n",
                    what, atomic_load(v), target);
            CHECK(test, 0);
            return;
        }
        weft_yield();
    }
}

static int main_ran;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void gomain(void *arg)
{
    (void)arg;
    main_ran = 1;
    CHECK(T_BOOT, weft_id() == 1);

    weft_maxprocs(2);
    CHECK(T_MAXPROCS, weft_maxprocs(0) == 2);
    CHECK(T_NUM_GOROUTINE, weft_num_goroutine() == 1);

    int64_t lid = weft_go(locked, NULL);
    CHECK(T_SPAWN, lid > 1);

    for (size_t i = 0; i < NG; i++) {
        goid[i] = weft_go(worker, (void *)(uintptr_t)i);
        CHECK(T_SPAWN, goid[i] > 1);
        if (i == NG / 3) {
            CHECK(T_MAXPROCS, weft_maxprocs(3) == 2);
            CHECK(T_MAXPROCS, weft_maxprocs(0) == 3);
            CHECK(T_NUM_GOROUTINE, weft_num_goroutine() > 1);
        } else if (i == 2 * NG / 3) {
            CHECK(T_MAXPROCS, weft_maxprocs(1) == 3);
            CHECK(T_MAXPROCS, weft_maxprocs(0) == 1);
        }
        if (i % 64 == 0)
            weft_yield();                   /* let them run while we spawn */
    }
    CHECK(T_MAXPROCS, weft_maxprocs(2) == 1);

    wait_until(&done, NG, T_ALL_RAN_ONCE, "the workers");
    wait_until(&locked_done, 1, T_LOCKED_THREAD, "the locked goroutine");
    CHECK(T_LOCKED_THREAD, atomic_load(&locked_yields) >= LOCKED_MIN_YIELDS);

    /* Every worker ran exactly once, under the goid weft_go returned. */
    CHECK(T_ALL_RAN_ONCE, atomic_load(&done) == NG);
    int wrong = 0, wrong_id = 0;
    for (size_t i = 0; i < NG; i++) {
        wrong += atomic_load(&runs[i]) != 1;
        wrong_id += seen_id[i] != goid[i];
    }
    CHECK(T_ALL_RAN_ONCE, wrong == 0);
    CHECK(T_IDS, wrong_id == 0);
    /* goids are never reused.  (They need not grow in spawn order: as in Go,
     * each P hands them out from its own cached batch.) */
    int64_t *sorted = malloc(sizeof goid);
    CHECK(T_IDS, sorted != NULL);
    if (sorted != NULL) {
        memcpy(sorted, goid, sizeof goid);
        qsort(sorted, NG, sizeof *sorted, cmp_i64);
        int dup = 0;
        for (size_t i = 1; i < NG; i++)
            dup += sorted[i] == sorted[i - 1];
        CHECK(T_IDS, dup == 0);
        CHECK(T_IDS, bsearch(&lid, sorted, NG, sizeof *sorted, cmp_i64) == NULL);
        free(sorted);
    }

    /* Finished goroutines stop counting (they may still be on their way
     * out when their last store lands, hence the wait). */
    int64_t start = now_ns();
    while (weft_num_goroutine() != 1 && now_ns() - start < WAIT_LIMIT_NS)
        weft_yield();
    CHECK(T_NUM_GOROUTINE, weft_num_goroutine() == 1);
    CHECK(T_BOOT, weft_id() == 1);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    CHECK(T_IDS, weft_id() == 0);                 /* outside any goroutine */
    CHECK(T_BOOT, weft_main(NULL, NULL) == -EINVAL);
    CHECK(T_BOOT, weft_main(gomain, NULL) == 0);
    CHECK(T_BOOT, main_ran == 1);
    CHECK(T_IDS, weft_id() == 0);
    weft_yield();                                 /* outside: sched_yield() */

    int passed = 0, failed = 0;
    for (int t = 0; t < T_COUNT; t++) {
        unsigned long f = atomic_load(&failures[t]), c = atomic_load(&checks[t]);
        if (f == 0 && c > 0) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "smoke_sched: FAIL %s (%lu of %lu checks failed)\n",
                    test_names[t], f, c);
        }
    }
    printf("smoke_sched: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
