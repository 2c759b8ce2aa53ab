/*
 * weftprof — an external sampling profiler for any running Linux process.
 *
 *   weftprof -p PID [-hz N] [-d SECONDS] [-o FILE.pb.gz] [--top K] [--by-goroutine]
 *   weftprof [-hz N] [-d SECONDS] [-o FILE.pb.gz] [--top K] [--by-goroutine] -- CMD ARGS...
 *
 * Every 1/N s it stops every thread of the target with PTRACE_INTERRUPT,
 * unwinds each with libunwind's ptrace module, notes the goroutine each
 * runs if the target is a weft program (goroutines.c), and resumes them
 * (tracer.c has the protocol).  Stacks are counted as they come (profile.c) and named
 * after the target resumes (symbols.c).  At the end — -d elapsed, Ctrl-C /
 * SIGTERM / SIGHUP, or the target exited — it detaches from every thread,
 * prints the histogram (report.c) and, with -o, writes a gzipped pprof file
 * (pprofout.c) where output.c says, never destroying a file.  The target
 * keeps running as if never traced.
 *
 * The files: main.c (options, the sampling loop), tracer.c (ptrace),
 * sample.c (unwinding), goroutines.c (weft's goroutines), symbols.c
 * (names), profile.c (the stack store),
 * report.c (histogram), pprofout.c (pprof), output.c (the -o file).
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "report.h"
#include "sample.h"
#include "tracer.h"

#define EXIT_USAGE 2
#define WINDOW_TIMEOUT_NS (100 * 1000000LL)   /* a thread not stopped by then sits this sample out */
#define DETACH_TIMEOUT_NS (2 * 1000000000LL)  /* stopping everyone to detach */

static const char usage_text[] =
    "usage: weftprof -p PID [-hz N] [-d SECONDS] [-o FILE.pb.gz] [--top K] [--by-goroutine]\n"
    "       weftprof [-hz N] [-d SECONDS] [-o FILE.pb.gz] [--top K] [--by-goroutine] -- CMD [ARGS...]\n"
    "  -p PID      profile every thread of running process PID\n"
    "  -- CMD      start CMD and profile it until it exits (or -d elapses)\n"
    "  -hz N       samples per second, 1..10000 (default 100)\n"
    "  -d SECONDS  stop after this long (default: until Ctrl-C or the target exits)\n"
    "  -o FILE     also write a gzipped pprof profile (go tool pprof -top FILE); - is stdout\n"
    "  --top K     rows of the histogram to print (default 20)\n"
    "  --by-goroutine  a weft program: also each goroutine's share and top function\n";

typedef struct options {
    pid_t pid;        /* -p, 0 if none */
    char **cmd;       /* after --, NULL if none */
    int hz;           /* -hz */
    double seconds;   /* -d, 0 = no limit */
    const char *out;  /* -o, NULL if none */
    int top;          /* --top */
    bool bygoroutine; /* --by-goroutine */
} options;

/* Everything one run of weftprof holds. */
typedef struct run {
    options opt;
    wp_tracer tracer;
    wp_sampler sampler;
    wp_symbols syms;
    wp_profile prof;
    wp_goroutines gor;    /* the target's goroutines, if it is a weft program */
    void *snap;           /* pprof mappings snapshot (pprofout.c), NULL if none */
    int64_t samples;      /* stops of the whole process */
    int64_t pause_sum;    /* ns the target spent stopped, summed over samples */
    int64_t pause_max;
    int64_t stop_sum;     /* of which waiting for the threads to stop */
    int64_t unwind_sum;   /* of which unwinding them */
    int64_t missed;       /* ticks skipped because sampling ran late (counted by the next sample) */
    bool nomem;
    char comm[64];        /* the target's name, as of its last exec */
} run;

static void usage_error(const char *fmt, const char *what)
{
    fprintf(stderr, "weftprof: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n");
    exit(EXIT_USAGE);
}

/* A whole-string decimal integer in [lo, hi], or exits naming it. */
static long parse_int(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        fprintf(stderr, "weftprof: bad %s '%s': want an integer from %ld to %ld\n", flag, v, lo, hi);
        exit(EXIT_USAGE);
    }
    return x;
}

static double parse_seconds(const char *v)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x) || x <= 0 || x > 1e7) {
        fprintf(stderr, "weftprof: bad -d '%s': want a duration in seconds > 0, e.g. 10 or 0.5\n", v);
        exit(EXIT_USAGE);
    }
    return x;
}

static void parse_options(options *o, int argc, char **argv)
{
    *o = (options){ .hz = 100, .top = 20 };
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            o->cmd = argv + i + 1;
            if (!*o->cmd)
                usage_error("%s needs a command after it", "--");
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (strcmp(a, "--by-goroutine") == 0 || strcmp(a, "-by-goroutine") == 0) {
            o->bygoroutine = true;
            continue;
        }
        /* -flag VALUE or --flag=VALUE */
        char flag[32];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        if (eq && a[0] == '-' && (size_t)(eq - a) < sizeof flag) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
        }
        const char *name = flag + (flag[0] == '-') + (flag[1] == '-');
        if (flag[0] != '-' || (strcmp(name, "p") && strcmp(name, "hz") && strcmp(name, "d") &&
                               strcmp(name, "duration") && strcmp(name, "o") && strcmp(name, "top"))) {
            fprintf(stderr, "weftprof: unknown argument '%s' (see weftprof --help; a command goes after --)\n", a);
            exit(EXIT_USAGE);
        }
        if (!val) {
            if (i + 1 >= argc)
                usage_error("%s needs a value", flag);
            val = argv[++i];
        }
        if (strcmp(name, "p") == 0) {
            char *end;
            errno = 0;
            long p = strtol(val, &end, 10);
            if (!*val || *end || errno || p <= 0 || p > 0x3fffffff)
                usage_error("bad -p '%s': want a process id", val);
            o->pid = (pid_t)p;
        } else if (strcmp(name, "hz") == 0) {
            o->hz = (int)parse_int("-hz", val, 1, 10000);
        } else if (strcmp(name, "d") == 0 || strcmp(name, "duration") == 0) {
            o->seconds = parse_seconds(val);
        } else if (strcmp(name, "o") == 0) {
            if (!*val)
                usage_error("bad -o '%s': want a file name", val);
            o->out = val;
        } else {
            o->top = (int)parse_int("--top", val, 1, 1000000);
        }
    }
    if (o->pid && o->cmd)
        usage_error("%s", "give either -p PID or -- CMD, not both");
    if (!o->pid && !o->cmd) {
        fputs(usage_text, stderr);
        exit(EXIT_USAGE);
    }
}

/* ---- tracer hooks ----------------------------------------------------------- */

/* The name in /proc/PID/comm (tid 0) or /proc/PID/task/TID/comm, "?" if gone. */
static void read_comm(pid_t pid, pid_t tid, char *out, size_t len)
{
    char path[64];
    if (tid)
        snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    else
        snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    snprintf(out, len, "?");
    FILE *f = fopen(path, "re");
    if (f) {
        if (!fgets(out, (int)len, f))
            snprintf(out, len, "?");
        out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
}

static void on_thread_gone(void *arg, wp_thread *th)
{
    run *r = arg;
    sampler_thread_gone(&r->sampler, th);
}

static void on_exec(void *arg)
{
    run *r = arg;
    for (int i = 0; i < r->tracer.nthreads; i++)
        sampler_thread_gone(&r->sampler, &r->tracer.threads[i]);
    sampler_flush(&r->sampler);
    symbols_exec(&r->syms);
    goroutines_exec(&r->gor);
    read_comm(r->tracer.pid, 0, r->comm, sizeof r->comm);  /* already the new program's */
}

static void on_leader_exiting(void *arg, pid_t pid)
{
    run *r = arg;
    /* The last moment the leader's address space can be read. */
    if (r->opt.out)
        r->snap = pprofout_snapshot(pid, r->snap, r->opt.hz);
}

/* ---- sampling ----------------------------------------------------------------- */

/* A live thread of the target to read /proc/TID/maps through (the leader
 * may be a zombie), or 0. */
static pid_t live_tid(wp_tracer *t)
{
    for (int i = 0; i < t->nthreads; i++)
        if (t->threads[i].tid == t->pid && t->threads[i].state != WP_EXITING)
            return t->pid;
    for (int i = 0; i < t->nthreads; i++)
        if (t->threads[i].state != WP_EXITING)
            return t->threads[i].tid;
    return 0;
}

static int thread_name(run *r, wp_thread *th)
{
    if (th->name >= 0)
        return th->name;
    char comm[64];
    read_comm(r->tracer.pid, th->tid, comm, sizeof comm);
    th->name = symbols_intern(&r->syms, comm);
    return th->name;
}

static bool addr_isnew(void *arg, uint64_t key)
{
    return !symbols_known(arg, key);
}

/* One sample, standing for weight ticks. */
static void sample(run *r, int64_t weight)
{
    wp_tracer *t = &r->tracer;
    int64_t t0 = wp_now();
    int stopped = tracer_stop(t, t0 + WINDOW_TIMEOUT_NS);
    int64_t t1 = wp_now();
    uintptr_t pcs[WP_MAXDEPTH];
    uint64_t starts[WP_MAXDEPTH];
    int got = 0;
    for (int i = 0; i < t->nthreads && stopped > 0; i++) {
        wp_thread *th = &t->threads[i];
        if (th->state != WP_STOPPED)
            continue;
        int depth = sampler_unwind(&r->sampler, th, pcs, starts, WP_MAXDEPTH, addr_isnew, &r->syms);
        if (depth <= 0)
            continue;
        int64_t goid = goroutines_current(&r->gor, th->tid);
        int added = profile_add(&r->prof, pcs, depth, thread_name(r, th), goid, r->syms.gen, weight);
        if (added < 0) {
            r->nomem = true;
            break;
        }
        got++;
        for (int j = 0; j < depth; j++)
            if ((added == 1 || starts[j]) && symbols_note(&r->syms, profile_key(pcs, j), starts[j]) < 0)
                r->nomem = true;
    }
    int64_t t2 = wp_now();
    tracer_resume(t);
    int64_t pause = wp_now() - t0;
    if (got) {
        r->prof.samples++;
        r->samples++;
        r->pause_sum += pause;
        r->stop_sum += t1 - t0;
        r->unwind_sum += t2 - t1;
        if (pause > r->pause_max)
            r->pause_max = pause;
    }
    /* Names, and weft's descriptor, are looked up while the target runs
     * again. */
    pid_t tid = live_tid(t);
    if (tid) {
        symbols_resolve(&r->syms, r->sampler.as, tid);
        goroutines_lookup(&r->gor, tid);
    }
}

/* Samples every period until end, a stop signal, the target's exit, or an
 * allocation failure.  Ticks missed while a sample (or weftprof, on a busy
 * machine) ran late are not made up; the next sample stands for all of
 * them, as the runtime's CPU profiler weights a signal by its timer's
 * overruns, so the profile's total is the time sampled at any rate (at
 * 1000 Hz on a busy 2-CPU machine weftprof kept up with a third of the
 * ticks, and the file said a third of the time). */
static void sample_loop(run *r, int64_t period, int64_t end)
{
    wp_tracer *t = &r->tracer;
    int64_t next = wp_now();
    while (!t->gone && !t->stopsig && !r->nomem) {
        tracer_pump(t, next < end ? next : end);
        int64_t now = wp_now();
        if (t->gone || t->stopsig || now >= end)
            break;
        if (now < next)
            continue;
        int64_t due = (now - next) / period + 1;    /* ticks come due, this one included */
        r->missed += due - 1;
        next += due * period;
        sample(r, due);
    }
}

/* The end-of-run line on stderr (tools/README.md explains its fields). */
static void summary(run *r, double seconds, bool alive, int left)
{
    const wp_tracer *t = &r->tracer;
    double n = r->samples ? (double)r->samples : 1;
    fprintf(stderr, "weftprof: %lld samples in %.2f s (%.1f/s); target stopped %.0f us per sample "
            "(%.0f stopping, %.0f unwinding; max %.0f); threads: %ld seen, %ld exited; "
            "%ld signals passed on",
            (long long)r->samples, seconds, seconds > 0 ? (double)r->samples / seconds : 0.0,
            (double)r->pause_sum / n / 1e3, (double)r->stop_sum / n / 1e3,
            (double)r->unwind_sum / n / 1e3, (double)r->pause_max / 1e3,
            t->seen, t->exited, t->forwarded);
    if (r->missed)
        fprintf(stderr, "; %lld ticks missed (sampling slower than -hz %d)",
                (long long)r->missed, r->opt.hz);
    if (t->late)
        fprintf(stderr, "; %ld thread stops late", t->late);
    if (r->gor.found)
        fprintf(stderr, "; %d goroutines seen", r->gor.nnames);
    fprintf(stderr, "\n");
    if (!alive && !r->opt.cmd)
        fprintf(stderr, "weftprof: pid %d exited after %.2f s\n", (int)t->pid, seconds);
    if (left)
        fprintf(stderr, "weftprof: %d threads did not stop in time; the kernel detaches them "
                "when weftprof exits\n", left);
}

/* ---- the command's end (-- CMD) ------------------------------------------------ */

/* After the report: waits for the command, detaching any thread that was
 * still stopping when weftprof detached.  Returns the exit code to pass on. */
static int wait_command(run *r)
{
    wp_tracer *t = &r->tracer;
    int status = t->leader_status;
    if (!t->have_status) {
        /* From here a Ctrl-C is the command's business, and ends weftprof too. */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_SETMASK, &t->oldmask, NULL);
        for (;;) {
            pid_t w = waitpid(-1, &status, __WALL);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return 1;
            }
            if (WIFSTOPPED(status)) {
                int sig = (status >> 16) == 0 ? WSTOPSIG(status) : 0;
                ptrace(PTRACE_DETACH, w, NULL, (void *)(long)sig);
                continue;
            }
            if (w == t->pid)
                break;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the -o file ----------------------------------------------------------------- */

typedef struct pprof_job {
    run *r;
    const wp_report_info *info;
    int64_t skipped;
} pprof_job;

/* output.c's writer: the profile, into the fd it chose. */
static int write_pprof(int fd, void *arg)
{
    pprof_job *j = arg;
    void *snap = j->r->snap;
    j->r->snap = NULL;      /* consumed, whatever happens */
    return pprofout_write(fd, snap, &j->r->prof, &j->r->syms, j->info, j->r->syms.gen, &j->skipped);
}

/* ---- main ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    static run r;
    parse_options(&r.opt, argc, argv);

    /* A hopeless -o is reported before any profiling; nothing is created
     * or opened until the profile is complete (output.h). */
    char err[512];
    if (r.opt.out && output_check(r.opt.out, err, sizeof err) < 0) {
        fprintf(stderr, "weftprof: %s\n", err);
        return EXIT_USAGE;
    }
    /* With -o -, stdout is the profile's: the histogram goes to stderr. */
    FILE *histogram = r.opt.out && output_is_stdout(r.opt.out) ? stderr : stdout;

    wp_tracer_hooks hooks = { on_thread_gone, on_exec, on_leader_exiting, &r };
    tracer_init(&r.tracer, &hooks);
    symbols_init(&r.syms);
    profile_init(&r.prof);
    if (sampler_init(&r.sampler) < 0) {
        fprintf(stderr, "weftprof: libunwind cannot create an address space\n");
        return 1;
    }
    wp_tracer *t = &r.tracer;
    int e = r.opt.cmd ? tracer_spawn(t, r.opt.cmd, err, sizeof err)
                      : tracer_attach(t, r.opt.pid, err, sizeof err);
    if (e < 0) {
        fprintf(stderr, "weftprof: %s\n", err);
        return EXIT_USAGE;
    }

    int64_t period = 1000000000LL / r.opt.hz;
    int64_t start = wp_now();
    int64_t end = r.opt.seconds > 0 ? start + (int64_t)(r.opt.seconds * 1e9) : INT64_MAX;
    if (r.opt.cmd)
        while (!t->gone && !t->stopsig && t->execs == 0 && wp_now() < end)
            tracer_pump(t, wp_now() + 1000000);  /* until the command's exec (or its failure) */

    if (r.opt.cmd && t->execs == 0 && t->gone) {
        /* The command never ran (it said why); nothing was sampled, and
         * -o was never touched. */
        return wait_command(&r);
    }
    if (t->execs == 0)
        read_comm(t->pid, 0, r.comm, sizeof r.comm);
    goroutines_init(&r.gor, t->pid);
    goroutines_lookup(&r.gor, t->pid);
    if (r.opt.out && !r.opt.cmd)
        r.snap = pprofout_snapshot(t->pid, r.snap, r.opt.hz);
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    start = wp_now();
    sample_loop(&r, period, end);
    int64_t stop = wp_now();
    double seconds = (double)(stop - start) / 1e9;

    bool alive = !t->gone;
    int left = 0;
    if (alive) {
        pid_t tid = live_tid(t);
        if (r.opt.out && tid)
            r.snap = pprofout_snapshot(tid, r.snap, r.opt.hz);
        left = tracer_detach(t, wp_now() + DETACH_TIMEOUT_NS);
    }

    wp_report_info info = {
        .pid = t->pid, .comm = r.comm, .hz = r.opt.hz, .seconds = seconds, .top = r.opt.top,
        .start_wall = (int64_t)wall.tv_sec * 1000000000 + wall.tv_nsec,
    };
    report_print(histogram, &r.prof, &r.syms, &info);
    if (r.opt.bygoroutine)
        report_goroutines(histogram, &r.prof, &r.syms, &r.gor, &info);
    fflush(histogram);

    int rc = 0;
    if (r.nomem) {
        fprintf(stderr, "weftprof: out of memory: stopped early\n");
        rc = 1;
    }
    if (r.opt.out) {
        pprof_job job = { &r, &info, 0 };
        if (output_write(r.opt.out, write_pprof, &job, err, sizeof err) < 0) {
            fprintf(stderr, "weftprof: %s\n", err);
            rc = 1;
        } else if (job.skipped) {
            fprintf(stderr, "weftprof: %s: %lld stacks from before the target's last exec left out\n",
                    r.opt.out, (long long)job.skipped);
        }
    }

    summary(&r, seconds, alive, left);

    if (r.opt.cmd) {
        int code = wait_command(&r);
        rc = rc ? rc : code;
    }
    pprofout_free(r.snap);
    tracer_fini(t);
    sampler_fini(&r.sampler);
    symbols_fini(&r.syms);
    profile_fini(&r.prof);
    goroutines_fini(&r.gor);
    return rc;
}
