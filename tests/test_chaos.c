/*
 * test_chaos.c — random spawn / yield / exit / lock_thread / syscall /
 * maxprocs on all Ps; afterwards every goroutine must have run to its end
 * exactly once.  Bounded: a fixed number of goroutines, a fixed seed per G.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

#define CHAOS_GS 100000

static atomic_uchar *finished;
static atomic_long nspawned, nfinished;
static atomic_long goid_dupes;

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void chaos(void *arg);

static void spawn_one(void)
{
    long i = atomic_fetch_add(&nspawned, 1);
    if (i >= CHAOS_GS) {
        atomic_fetch_sub(&nspawned, 1);
        return;
    }
    int64_t r = weft_go(chaos, (void *)(intptr_t)i);
    if (r <= 0)
        abort();
}

static void finish(long i)
{
    if (atomic_fetch_add(&finished[i], 1) != 0)
        atomic_fetch_add(&goid_dupes, 1);
    atomic_fetch_add(&nfinished, 1);
}

static void chaos(void *arg)
{
    long i = (long)(intptr_t)arg;
    uint32_t s = (uint32_t)i * 2654435761u + 1;
    int steps = (int)(rnd(&s) % 8);
    for (int k = 0; k < steps; k++) {
        switch (rnd(&s) % 8) {
        case 0:
        case 1:
            spawn_one();
            spawn_one();
            break;
        case 2:
        case 3:
            weft_yield();
            break;
        case 4:
            /* Rare: every locked G waiting in a run queue holds a thread. */
            if (rnd(&s) % 8 != 0)
                break;
            weft_lock_thread();
            weft_yield();
            weft_unlock_thread();
            break;
        case 5:
            weft_syscall_enter();
            usleep(rnd(&s) % 50);
            weft_syscall_exit();
            break;
        case 6:
            if (rnd(&s) % 4 == 0) {
                finish(i);
                weft_exit();
            }
            break;
        case 7:
            if (i % 5000 == 0)
                weft_maxprocs(1 + (int)(rnd(&s) % 4));
            break;
        }
    }
    finish(i);
}

static void chaos_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    /* Keep seeding until all are spawned (a branch may die out early). */
    while (atomic_load(&nspawned) < CHAOS_GS) {
        spawn_one();
        weft_yield();
    }
    while (atomic_load(&nfinished) < CHAOS_GS)
        weft_yield();
}

Test(chaos, every_goroutine_runs_to_completion_exactly_once, .timeout = 300)
{
    finished = calloc(CHAOS_GS, 1);
    cr_assert_eq(weft_main(chaos_main, NULL), 0);
    cr_assert_eq(atomic_load(&goid_dupes), 0);
    for (int i = 0; i < CHAOS_GS; i++)
        cr_assert_eq(atomic_load(&finished[i]), 1, "G %d finished %d times", i, atomic_load(&finished[i]));
    free(finished);
}
