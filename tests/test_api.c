/*
 * test_api.c — the lifecycle API's contract: argument checking, negative
 * errno returns, attributes, per-G storage, weft_exit, calls from outside
 * any goroutine.
 */
#define _GNU_SOURCE     /* pthread_getname_np */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"

static void nop(void *arg) { (void)arg; }

Test(api, bad_arguments_are_einval_outside_the_runtime)
{
    cr_assert_eq(weft_main(NULL, NULL), -EINVAL);
    cr_assert_eq(weft_go(NULL, NULL), -EINVAL);
    weft_attr tiny = { .stack_size = 1 };
    cr_assert_eq(weft_go_attr(&tiny, nop, NULL), -EINVAL);
    weft_attr huge = { .stack_size = (size_t)1 << 40 };
    cr_assert_eq(weft_go_attr(&huge, nop, NULL), -EINVAL);
    weft_attr below = { .stack_size = WEFT_STACK_MIN - 1 };
    cr_assert_eq(weft_go_attr(&below, nop, NULL), -EINVAL);
    cr_assert_eq(weft_id(), 0);
    cr_assert_eq(weft_num_goroutine(), 0, "nothing runs before boot");
    cr_assert_eq(weft_local_set(0, NULL), -EINVAL, "no key allocated yet");
}

static atomic_long named_ran;
static void named(void *arg)
{
    (void)arg;
    G *gp = weft__getg();
    cr_assert_str_eq(gp->name, "worker");
    cr_assert_geq(gp->stackhi - gp->stacklo + 64, weft__stack_default);
    atomic_fetch_add(&named_ran, 1);
}

static void attr_main(void *arg)
{
    (void)arg;
    weft_attr a = { .name = "worker" };     /* stack_size 0 = default */
    cr_assert_gt(weft_go_attr(&a, named, NULL), 0);
    cr_assert_gt(weft_go_attr(NULL, nop, NULL), 0, "NULL attr = defaults");
    cr_assert_eq(weft_go(NULL, NULL), -EINVAL);
    weft_attr tiny = { .stack_size = 100 };
    cr_assert_eq(weft_go_attr(&tiny, nop, NULL), -EINVAL);
    cr_assert_eq(weft_main(nop, NULL), -EBUSY, "weft_main inside weft_main");
    while (atomic_load(&named_ran) < 1)
        weft_yield();
}

Test(api, attributes_and_errors_inside_the_runtime, .timeout = 30)
{
    cr_assert_eq(weft_main(attr_main, NULL), 0);
}

/* ---- per-G storage ------------------------------------------------------------- */

static int key1, key2;
static atomic_long dtor_calls, dtor_sum, ls_done;

static void dtor(void *v)
{
    atomic_fetch_add(&dtor_sum, (long)(intptr_t)v);
    atomic_fetch_add(&dtor_calls, 1);
}

static void ls_worker(void *arg)
{
    long i = (long)(intptr_t)arg;
    cr_assert_null(weft_local_get(key1), "a new G starts with no values");
    cr_assert_eq(weft_local_set(key1, (void *)(intptr_t)(i + 1)), 0);
    for (int k = 0; k < 20; k++) {
        weft_yield();   /* may move to another thread: the value follows the G */
        cr_assert_eq((long)(intptr_t)weft_local_get(key1), i + 1);
    }
    cr_assert_null(weft_local_get(key2));
    atomic_fetch_add(&ls_done, 1);
}

static void ls_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    for (long i = 0; i < 100; i++)
        weft_go(ls_worker, (void *)(intptr_t)i);
    while (atomic_load(&ls_done) < 100)
        weft_yield();
    /* Destructors run as each G ends; give the last ones their exit (the
     * other thread may be descheduled for a while on a loaded machine). */
    int64_t give_up = weft_nanotime() + 20LL * 1000 * 1000 * 1000;
    while (atomic_load(&dtor_calls) < 100 && weft_nanotime() < give_up)
        weft_sleep(100 * 1000);
    cr_assert_eq(atomic_load(&dtor_calls), 100);
    cr_assert_eq(atomic_load(&dtor_sum), 100 * 101 / 2, "sum %ld calls %ld", atomic_load(&dtor_sum), atomic_load(&dtor_calls));
    cr_assert_eq(weft_local_get(-1), NULL);
    cr_assert_eq(weft_local_set(9999, NULL), -EINVAL);
}

Test(api, local_storage_follows_the_goroutine, .timeout = 30)
{
    key1 = weft_local_key(dtor);
    key2 = weft_local_key(NULL);
    cr_assert_geq(key1, 0);
    cr_assert_eq(key2, key1 + 1);
    cr_assert_eq(weft_local_set(key1, (void *)1), -EPERM, "outside a goroutine");
    cr_assert_null(weft_local_get(key1));
    cr_assert_eq(weft_main(ls_main, NULL), 0);
}

Test(api, local_keys_run_out_with_eagain)
{
    int k = 0;
    for (int i = 0; i < WEFT_LOCAL_KEYS; i++)
        k = weft_local_key(NULL);
    cr_assert_eq(k, WEFT_LOCAL_KEYS - 1);
    cr_assert_eq(weft_local_key(NULL), -EAGAIN);
}

/* Two threads create keys at once, each with its own destructor: every key
 * must keep its creator's destructor.  (Keys are per process, so each round
 * runs in a child.) */
static int race_keys[2][WEFT_LOCAL_KEYS / 2];
static atomic_int race_go, race_bad, race_calls;

static void race_dtor0(void *v) { atomic_fetch_add(&race_calls, 1); if ((intptr_t)v != 1) atomic_fetch_add(&race_bad, 1); }
static void race_dtor1(void *v) { atomic_fetch_add(&race_calls, 1); if ((intptr_t)v != 2) atomic_fetch_add(&race_bad, 1); }

static void *race_creator(void *arg)
{
    int t = (int)(intptr_t)arg;
    atomic_fetch_add(&race_go, 1);
    while (atomic_load(&race_go) < 2)
        ;
    for (int i = 0; i < WEFT_LOCAL_KEYS / 2; i++)
        race_keys[t][i] = weft_local_key(t ? race_dtor1 : race_dtor0);
    return NULL;
}

static void race_main(void *arg)
{
    (void)arg;
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < WEFT_LOCAL_KEYS / 2; i++)
            weft_local_set(race_keys[t][i], (void *)(intptr_t)(t + 1));
}   /* the destructors run as main ends */

Test(api, concurrent_key_creation_keeps_each_destructor, .timeout = 120)
{
    for (int round = 0; round < 100; round++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            pthread_t th[2];
            for (int t = 0; t < 2; t++)
                pthread_create(&th[t], NULL, race_creator, (void *)(intptr_t)t);
            for (int t = 0; t < 2; t++)
                pthread_join(th[t], NULL);
            if (weft_main(race_main, NULL) != 0)
                _exit(3);
            _exit(atomic_load(&race_calls) == WEFT_LOCAL_KEYS && atomic_load(&race_bad) == 0 ? 0 : 1);
        }
        int st = 0;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "round %d: a key got the other creator's destructor (status 0x%x)", round, st);
    }
}

/* ---- weft_exit ---------------------------------------------------------------- */

static atomic_long ex_before, ex_after, ex_dtor;
static int ex_key;

static void ex_dtorf(void *v)
{
    (void)v;
    atomic_fetch_add(&ex_dtor, 1);
}

static void ex_inner(void)
{
    weft_exit();
}

static void ex_worker(void *arg)
{
    (void)arg;
    weft_local_set(ex_key, (void *)1);
    atomic_fetch_add(&ex_before, 1);
    ex_inner();
    atomic_fetch_add(&ex_after, 1);     /* never reached */
}

static void ex_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++)
        weft_go(ex_worker, NULL);
    while (atomic_load(&ex_dtor) < 50)
        weft_yield();
    cr_assert_eq(atomic_load(&ex_before), 50);
    cr_assert_eq(atomic_load(&ex_after), 0);
}

Test(api, weft_exit_ends_the_goroutine_and_runs_destructors, .timeout = 30)
{
    ex_key = weft_local_key(ex_dtorf);
    cr_assert_eq(weft_main(ex_main, NULL), 0);
}

/* ---- maxprocs -------------------------------------------------------------------- */

static void mp_main(void *arg)
{
    (void)arg;
    cr_assert_eq(weft_maxprocs(0), 3, "WEFT_MAXPROCS=3 is honoured");
    cr_assert_eq(weft_maxprocs(-5), 3, "n <= 0 only reads");
    cr_assert_eq(weft_maxprocs(1), 3);
    cr_assert_eq(weft_maxprocs(0), 1);
    cr_assert_eq(weft_maxprocs(2), 1);
}

Test(api, maxprocs_from_env_and_at_run_time, .timeout = 30)
{
    setenv("WEFT_MAXPROCS", "3", 1);
    cr_assert_eq(weft_main(mp_main, NULL), 0);
}

static void mpmax_main(void *arg)
{
    (void)arg;
    int now = weft_maxprocs(0);
    cr_assert_eq(weft_maxprocs(100000), -EINVAL);
    cr_assert_eq(weft_maxprocs(WEFT_MAXPROCS_MAX + 1), -EINVAL);
    cr_assert_eq(weft_maxprocs(0), now, "a rejected value changes nothing");
}

/* Above the documented maximum is an error, not a silent clamp; before
 * boot too. */
Test(api, maxprocs_above_the_maximum_is_einval, .timeout = 30)
{
    int before = weft_maxprocs(0);
    cr_assert_eq(weft_maxprocs(100000), -EINVAL);
    cr_assert_eq(weft_maxprocs(0), before);
    cr_assert_eq(weft_main(mpmax_main, NULL), 0);
}

/* Surrounding whitespace is rejected the same way on either side, for
 * both variables (as Go's strconv.Atoi reads GOMAXPROCS). */
Test(api, env_values_with_whitespace_are_rejected_alike, .timeout = 30)
{
    static const char *const bad[] = { " 3", "3 ", "\t3", "3\n", " 3 " };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            /* A fresh process: the variables are read once. */
            char stack[32];     /* the same blanks around 128k */
            const char *three = strchr(bad[i], '3');
            snprintf(stack, sizeof stack, "%.*s128k%s", (int)(three - bad[i]), bad[i], three + 1);
            setenv("WEFT_MAXPROCS", bad[i], 1);
            setenv("WEFT_STACK", stack, 1);
            int ok = weft_maxprocs(0) == weft__ncpu() && weft_main(nop, NULL) == 0 &&
                     weft__stack_default == WEFT_STACK_DEFAULT;
            _exit(ok ? 0 : 1);
        }
        int st;
        cr_assert_eq(waitpid(pid, &st, 0), pid);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "\"%s\" was accepted", bad[i]);
    }
}

Test(api, bad_env_values_are_ignored_with_a_warning, .timeout = 30)
{
    setenv("WEFT_MAXPROCS", "lots", 1);
    setenv("WEFT_STACK", "1", 1);
    cr_assert_eq(weft_main(nop, NULL), 0);
    cr_assert_eq(weft__stack_default, WEFT_STACK_DEFAULT);
}

Test(api, weft_stack_env_sets_the_default, .timeout = 30)
{
    setenv("WEFT_STACK", "128k", 1);
    cr_assert_eq(weft_main(nop, NULL), 0);
    cr_assert_eq(weft__stack_default, 128 * 1024);
}

/* ---- misuse panics ------------------------------------------------------------- */

static void bad_exit(void *arg)
{
    (void)arg;
    weft_syscall_exit();    /* without enter */
}

Test(api, syscall_exit_without_enter_panics, .exit_code = 2, .timeout = 30)
{
    weft_main(bad_exit, NULL);
}

Test(api, weft_exit_outside_a_goroutine_panics, .exit_code = 2)
{
    weft_exit();
}

Test(api, outside_goroutines_calls_are_harmless)
{
    weft_yield();
    weft_lock_thread();
    weft_unlock_thread();
    weft_syscall_enter();
    weft_syscall_exit();
    cr_assert_gt(weft_nanotime(), 0);
}

/* Before the runtime boots there are no goroutines and no Ms: the
 * profiles are empty, and say so as the contract does (0 records, all of
 * them fit). */
Test(api, profiles_before_boot_are_empty_not_errors)
{
    bool ok = false;
    cr_assert_eq(weft_goroutine_profile(NULL, 0, &ok), 0);
    cr_assert(ok, "0 records fit in 0");
    ok = false;
    cr_assert_eq(weft_threadcreate_profile(NULL, 0, &ok), 0);
    cr_assert(ok);
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(weft_profile_write("goroutine", fileno(f), 1), 0);
    cr_assert_eq(weft_profile_write("threadcreate", fileno(f), 1), 0);
    cr_assert_eq(weft_profile_write("goroutine", fileno(f), 0), 0);
    char buf[256] = { 0 };
    rewind(f);
    cr_assert_gt(fread(buf, 1, sizeof buf - 1, f), 0);
    cr_assert_eq(strncmp(buf, "goroutine profile: total 0\nthreadcreate profile: total 0\n", 57), 0, "%s", buf);
    fclose(f);
}

/* ---- thread names ------------------------------------------------------------- */


static bool has_thread_named(const char *want)
{
    DIR *d = opendir("/proc/self/task");
    cr_assert_not_null(d);
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = { 0 };
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        found = strcmp(comm, want) == 0;
    }
    closedir(d);
    return found;
}

static atomic_int names_spinning;

static void names_spin(void *arg)
{
    (void)arg;
    atomic_fetch_add(&names_spinning, 1);
    while (atomic_load(&names_spinning) < 3)
        weft_yield();
}

static void names_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    weft_go(names_spin, NULL);
    weft_go(names_spin, NULL);
    while (atomic_load(&names_spinning) < 2)
        weft_yield();
    /* The second M names itself when its thread starts running, which a
     * loaded machine may delay. */
    int64_t give_up = weft_nanotime() + 20LL * 1000 * 1000 * 1000;
    while (!has_thread_named("weft-M1") && weft_nanotime() < give_up)
        weft_sleep(1000 * 1000);
    cr_assert(has_thread_named("weft-sysmon"), "no weft-sysmon thread");
    cr_assert(has_thread_named("weft-M1"), "no weft-M1 thread");
    atomic_store(&names_spinning, 3);
}

/* The runtime's threads are named for gdb, top -H and perf; the program's
 * own thread (M0) keeps its name. */
Test(api, runtime_threads_are_named, .timeout = 30)
{
    char before[32] = { 0 }, after[32] = { 0 };
    cr_assert_eq(pthread_getname_np(pthread_self(), before, sizeof before), 0);
    cr_assert_eq(weft_main(names_main, NULL), 0);
    cr_assert_eq(pthread_getname_np(pthread_self(), after, sizeof after), 0);
    cr_assert_str_eq(before, after);
}
