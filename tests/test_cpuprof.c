/*
 * test_cpuprof.c — the CPU profiler: argument errors, Go's
 * TestCPUProfileMultithreaded (two goroutines burning CPU in two functions
 * on two Ps both get their share, and the profile's total matches the CPU
 * time at 100, 500 and 1000 Hz), a stress run while goroutines spawn,
 * switch, migrate, sleep and make syscalls on every P, and `go tool pprof`
 * reading the result.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include "pprof_reader.h"
#include "runtime.h"

static tprof *readprofile(FILE *f)
{
    size_t ngz, n;
    uint8_t *gz = slurp(fileno(f), &ngz);
    uint8_t *raw = gunzip(gz, ngz, &n);
    tprof *t = decode(raw, n);
    free(gz);
    free(raw);
    check_valid(t);
    return t;
}

/* Does sample s have a frame in function name? */
static bool onstack(const tprof *t, const tsample *s, const char *name)
{
    for (int i = 0; i < s->nloc; i++) {
        const tloc *l = locbyid(t, s->loc[i]);
        const char *fn = l ? locname(t, l) : NULL;     /* NULL: an address without a name */
        if (fn && strcmp(fn, name) == 0)
            return true;
    }
    return false;
}

static int64_t cputime_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* ---- errors ------------------------------------------------------------------------ */

static void errors_main(void *arg)
{
    (void)arg;
    FILE *f = tmpfile();
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 0), -EINVAL);
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 10001), -EINVAL);
    cr_assert_eq(weft_cpuprofile_start(-1, 100), -EBADF);
    /* read-only: refused now, not found out at the first write */
    int ro = open("/dev/null", O_RDONLY);
    cr_assert_geq(ro, 0);
    cr_assert_eq(weft_cpuprofile_start(ro, 100), -EBADF);
    close(ro);
    cr_assert_eq(weft_cpuprofile_stop(), -EINVAL, "stop without start");
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 100), 0);
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 100), -EBUSY);
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    cr_assert_eq(weft_cpuprofile_stop(), -EINVAL);
    /* and again: a second profile in the same run */
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 10000), 0);
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    fclose(f);
}

Test(cpuprof, bad_arguments_and_states, .timeout = 60)
{
    cr_assert_eq(weft_cpuprofile_start(1, 100), -ESRCH, "no runtime");
    cr_assert_eq(weft_main(errors_main, NULL), 0);
}

/* ---- two hogs on two Ps ------------------------------------------------------------ */

static atomic_int hog_stop;
static atomic_long hog_sink;
static weft_wg hogs = WEFT_WG_INIT;
static int64_t hog1_id, hog2_id;

static __attribute__((noinline)) long churn(long x)
{
    unsigned long u = (unsigned long)x;     /* wraps, as an LCG should */
    for (int i = 0; i < 1000; i++)
        u = u * 6364136223846793005UL + 1442695040888963407UL;
    return (long)u;
}

static __attribute__((noinline)) void cpu_hog1(void *arg)
{
    (void)arg;
    long x = 1;
    /* A scheduling point now and then: preemption is cooperative, and the
     * main goroutine's timer runs on one of these two Ps. */
    for (long i = 1; !atomic_load(&hog_stop); i++)
        if ((x = churn(x)) && i % 1024 == 0)
            weft_yield();
    atomic_fetch_add(&hog_sink, x);
    weft_wg_done(&hogs);
}

static __attribute__((noinline)) void cpu_hog2(void *arg)
{
    (void)arg;
    long x = 2;
    for (long i = 1; !atomic_load(&hog_stop); i++)
        if ((x = churn(x) ^ 1) && i % 1024 == 0)
            weft_yield();
    atomic_fetch_add(&hog_sink, x);
    weft_wg_done(&hogs);
}

/* Two hogs on two Ps for 2 s, profiled at hz: both hogs get their share,
 * every sample is labelled with its goroutine, and the profile's total
 * (the sum of the cpu values, samples x period) matches the CPU time the
 * process used.  At rates above the kernel's tick (250 Hz here) a thread's
 * CPU-clock timer expires several times between two signals; without
 * weighting each signal by the expirations it stands for, 1000 Hz saw a
 * quarter of the CPU time and 500 Hz half. */
static void hogs_main(void *arg)
{
    int hz = (int)(intptr_t)arg;
    weft_maxprocs(2);
    FILE *f = tmpfile();
    int64_t cpu0 = cputime_ns();
    cr_assert_eq(weft_cpuprofile_start(fileno(f), hz), 0);
    weft_wg_add(&hogs, 2);
    hog1_id = weft_go(cpu_hog1, NULL);
    hog2_id = weft_go(cpu_hog2, NULL);
    weft_sleep(2000LL * 1000 * 1000);
    atomic_store(&hog_stop, 1);
    weft_wg_wait(&hogs);
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    int64_t cpu = cputime_ns() - cpu0;

    tprof *t = readprofile(f);
    fclose(f);
    cr_assert_eq(t->nst, 2);
    cr_assert_str_eq(S(t, t->st[0][0]), "samples");
    cr_assert_str_eq(S(t, t->st[1][0]), "cpu");
    cr_assert_str_eq(S(t, t->st[1][1]), "nanoseconds");
    cr_assert_eq(t->period, 1000000000 / hz);
    int64_t total = 0, totalns = 0, in1 = 0, in2 = 0;
    char id1[24], id2[24];
    snprintf(id1, sizeof id1, "%lld", (long long)hog1_id);
    snprintf(id2, sizeof id2, "%lld", (long long)hog2_id);
    for (int i = 0; i < t->nsmp; i++) {
        const tsample *s = &t->smp[i];
        cr_assert_eq(s->val[1], s->val[0] * t->period);
        total += s->val[0];
        totalns += s->val[1];
        if (onstack(t, s, "cpu_hog1")) {
            in1 += s->val[0];
            cr_assert(s->nlabel == 1 && strcmp(S(t, s->lkey), "goroutine") == 0 &&
                      strcmp(S(t, s->lstr), id1) == 0, "cpu_hog1 sample labelled with its goroutine");
        }
        if (onstack(t, s, "cpu_hog2")) {
            in2 += s->val[0];
            cr_assert(s->nlabel == 1 && strcmp(S(t, s->lstr), id2) == 0);
        }
    }
    cr_log_info("%d Hz: %lld samples (cpu_hog1 %lld, cpu_hog2 %lld) = %.3f s, CPU time %.3f s: ratio %.3f",
                hz, (long long)total, (long long)in1, (long long)in2, totalns / 1e9, cpu / 1e9,
                (double)totalns / (double)cpu);
    cr_assert_geq(in1 * 100, total * 30, "cpu_hog1 has %lld of %lld samples", (long long)in1, (long long)total);
    cr_assert_geq(in2 * 100, total * 30, "cpu_hog2 has %lld of %lld samples", (long long)in2, (long long)total);
    cr_assert(totalns * 4 >= cpu * 3 && totalns * 4 <= cpu * 5,
              "%d Hz: the profile holds %.3f s for %.3f s of CPU time (want within 25%%)", hz,
              totalns / 1e9, cpu / 1e9);
    tprof_free(t);
}

Test(cpuprof, two_hogs_on_two_ps_both_get_their_share, .timeout = 60)
{
    cr_assert_eq(weft_main(hogs_main, (void *)(intptr_t)100), 0);
}

Test(cpuprof, total_matches_cpu_time_at_500_hz, .timeout = 60)
{
    cr_assert_eq(weft_main(hogs_main, (void *)(intptr_t)500), 0);
}

Test(cpuprof, total_matches_cpu_time_at_1000_hz, .timeout = 60)
{
    cr_assert_eq(weft_main(hogs_main, (void *)(intptr_t)1000), 0);
}

/* ---- stress: profile while everything happens -------------------------------------- */

static atomic_int stress_stop;
static atomic_long stress_ops;

static void leaf(void *arg)
{
    (void)arg;
    weft_yield();
    atomic_fetch_add(&stress_ops, 1);
}

static void stresser(void *arg)
{
    long k = (long)(intptr_t)arg;
    while (!atomic_load(&stress_stop)) {
        switch (k++ % 5) {
        case 0:
            for (int i = 0; i < 50; i++)
                weft_go(leaf, NULL);
            break;
        case 1:
            weft_yield();
            break;
        case 2:
            weft_sleep(100 * 1000);
            break;
        case 3:
            weft_syscall_enter();
            usleep(50);
            weft_syscall_exit();
            break;
        case 4:
            weft_lock_thread();
            churn(k);
            weft_unlock_thread();
            break;
        }
        atomic_fetch_add(&stress_ops, 1);
    }
    weft_wg_done(&hogs);
}

static void stress_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    FILE *f = tmpfile();
    cr_assert_eq(weft_cpuprofile_start(fileno(f), 1000), 0);
    weft_wg_add(&hogs, 8);
    for (int i = 0; i < 8; i++)
        weft_go(stresser, (void *)(intptr_t)i);
    for (int i = 0; i < 6; i++) {
        weft_sleep(500LL * 1000 * 1000);
        weft_maxprocs(1 + i % 2 + 1);     /* 2, 3, 2, 3, ... : migrations */
    }
    atomic_store(&stress_stop, 1);
    weft_wg_wait(&hogs);
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    tprof *t = readprofile(f);     /* check_valid: every sample decodes */
    fclose(f);
    int64_t total = 0;
    for (int i = 0; i < t->nsmp; i++)
        total += t->smp[i].val[0];
    cr_log_info("stress: %ld ops, %lld samples", atomic_load(&stress_ops), (long long)total);
    cr_assert_gt(total, 0);
    cr_assert_gt(atomic_load(&stress_ops), 1000);
    tprof_free(t);
}

Test(cpuprof, stress_while_goroutines_spawn_switch_migrate_sleep_and_syscall, .timeout = 120)
{
    cr_assert_eq(weft_main(stress_main, NULL), 0);
}

/* ---- go tool pprof reads it ---------------------------------------------------------- */

static char profpath[] = "/tmp/weft-cpuprof-XXXXXX";

static void gotool_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    int fd = mkstemp(profpath);
    cr_assert_geq(fd, 0);
    cr_assert_eq(weft_cpuprofile_start(fd, 200), 0);
    weft_wg_add(&hogs, 1);
    weft_go(cpu_hog1, NULL);
    weft_sleep(1000LL * 1000 * 1000);
    atomic_store(&hog_stop, 1);
    weft_wg_wait(&hogs);
    cr_assert_eq(weft_cpuprofile_stop(), 0);
    close(fd);
}

Test(cpuprof, go_tool_pprof_reads_it, .timeout = 120)
{
    if (system("command -v go >/dev/null 2>&1") != 0)
        cr_skip_test("go is not installed (Debian: golang-go)");
    cr_assert_eq(weft_main(gotool_main, NULL), 0);
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd /tmp && HOME=/tmp GOCACHE=/tmp/weft-gocache PPROF_TMPDIR=/tmp go tool pprof -top %s 2>&1",
             profpath);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    unlink(profpath);
    cr_assert_eq(st, 0, "go tool pprof failed:\n%s", out);
    cr_assert_not_null(strstr(out, "Type: cpu"), "%s", out);
    cr_assert_not_null(strstr(out, "cpu_hog1"), "%s", out);
    cr_assert_not_null(strstr(out, "churn"), "%s", out);
}
