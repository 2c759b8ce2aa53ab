/*
 * tracer.c — the ptrace protocol weftprof speaks with its target.
 *
 * Every thread is attached with PTRACE_SEIZE, never PTRACE_ATTACH: a seized
 * thread is not sent SIGSTOP, so attaching starts no group-stop that could
 * leak into the target's job control (its parent would see it stop), and
 * PTRACE_INTERRUPT and PTRACE_LISTEN become available.  The options are
 *
 *   TRACECLONE  threads created later are traced from birth; each starts
 *               with a PTRACE_EVENT_STOP, and its parent reports
 *               PTRACE_EVENT_CLONE.  fork() and vfork() children are other
 *               processes and are not followed (no TRACEFORK / TRACEVFORK).
 *   TRACEEXIT   a dying thread stops once at PTRACE_EVENT_EXIT, so weftprof
 *               learns it will never stop again — above all the leader,
 *               which after pthread_exit() lingers as a zombie that can be
 *               interrupted but never stops — and the leader's address space
 *               can still be read for the pprof mappings.
 *   TRACEEXEC   an exec replaces the program: unwind caches are dropped.
 *
 * One sample (tracer_stop / tracer_resume):
 *
 *   1. The window opens: every RUNNING thread gets PTRACE_INTERRUPT and
 *      becomes STOPPING.  ESRCH means it is gone already: forget it.
 *   2. weftprof waits (waitpid(-1, __WALL) driven by SIGCHLD, below) until
 *      no thread interrupted in step 1 is still STOPPING.  *Any* ptrace-stop
 *      counts: the kernel clears a pending interrupt at every trap, so a
 *      thread that meets a signal, a clone or its exit first reports that
 *      stop instead.  Each stop records how the thread must be resumed:
 *        PTRACE_EVENT_STOP, WSTOPSIG = SIGTRAP   interrupt, or a new thread's
 *                                                first stop: PTRACE_CONT, 0
 *        PTRACE_EVENT_STOP, WSTOPSIG = SIGSTOP…  group-stop (the target was
 *                                                stopped, e.g. kill -STOP):
 *                                                PTRACE_LISTEN, so it stays
 *                                                stopped as it would untraced
 *        PTRACE_EVENT_CLONE / _EXEC / _EXIT      PTRACE_CONT, 0
 *        no event: signal-delivery-stop          PTRACE_CONT with that very
 *                                                signal — swallowing it would
 *                                                change the program
 *      A thread that has not stopped by the deadline (one in uninterruptible
 *      sleep, a vfork parent) stays STOPPING and is left out of this sample;
 *      its stop is handled whenever it comes.  If /proc says it is a zombie
 *      it becomes EXITING.
 *   3. The caller unwinds every STOPPED thread.
 *   4. The window closes: every STOPPED thread is resumed as recorded.
 *
 * Every other stop — outside a window, or of a thread the window did not
 * interrupt (one just born, one whose stop comes after its deadline) — is
 * resumed at once, so a signal or a new thread waits for weftprof only as
 * long as one waitpid takes.
 *
 * Waiting.  SIGCHLD, SIGINT, SIGTERM and SIGHUP stay blocked; the event loop
 * drains waitpid(WNOHANG) and then sleeps in sigtimedwait() until the next
 * signal or deadline.  A SIGCHLD that arrives between the drain and the sleep
 * stays pending, so no event is missed and no timer races the wait.  A
 * SIGINT/SIGTERM/SIGHUP sets t->stopsig there; one that arrives during a
 * sample waits in the pending set until the sample is done (step 2 does not
 * end early), so the current sample always finishes and resumes.
 *
 * Detaching (tracer_detach).  PTRACE_DETACH works only on a stopped tracee,
 * so every thread is first stopped as in a sample — new threads born
 * meanwhile are waited for too — then detached with the signal it was
 * stopped with, if any.  A thread in a group-stop stays stopped after the
 * detach, as it would be had weftprof never come.  If weftprof dies instead,
 * the kernel detaches every tracee and lets it run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tracer.h"

#define SEIZE_OPTIONS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC)

int64_t wp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long xptrace(int req, pid_t tid, long data)
{
    return ptrace((enum __ptrace_request)req, tid, (void *)0, (void *)data);
}

static void on_sigchld(int sig)
{
    (void)sig;  /* never runs (SIGCHLD is blocked); its presence keeps SIGCHLD from being SIG_IGN */
}

void tracer_init(wp_tracer *t, const wp_tracer_hooks *hooks)
{
    memset(t, 0, sizeof *t);
    if (hooks)
        t->hooks = *hooks;
    /* SIGCHLD must not be ignored (an inherited SIG_IGN would stop the
     * kernel from sending it for ptrace-stops) and must not carry
     * SA_NOCLDSTOP: give it a handler, then block it with the stop
     * signals so that sigtimedwait() takes them synchronously. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);  /* a closed stdout must not kill weftprof while attached */
    sigemptyset(&t->waitset);
    sigaddset(&t->waitset, SIGCHLD);
    sigaddset(&t->waitset, SIGINT);
    sigaddset(&t->waitset, SIGTERM);
    sigaddset(&t->waitset, SIGHUP);
    sigprocmask(SIG_BLOCK, &t->waitset, &t->oldmask);
}

void tracer_fini(wp_tracer *t)
{
    for (int i = 0; i < t->nthreads; i++)
        if (t->hooks.thread_gone)
            t->hooks.thread_gone(t->hooks.arg, &t->threads[i]);
    free(t->threads);
    t->threads = NULL;
    t->nthreads = t->cap = 0;
}

/* ---- the thread table ---------------------------------------------------
 * A plain array searched linearly: a process has tens to a few hundred
 * threads, and each event costs a system call anyway.  Removal swaps the
 * last entry in, so pointers into the table are valid only until the next
 * event is handled. */

static wp_thread *find(wp_tracer *t, pid_t tid)
{
    for (int i = 0; i < t->nthreads; i++)
        if (t->threads[i].tid == tid)
            return &t->threads[i];
    return NULL;
}

static wp_thread *add(wp_tracer *t, pid_t tid, wp_thstate st)
{
    if (t->nthreads == t->cap) {
        int nc = t->cap ? 2 * t->cap : 64;
        wp_thread *nt = realloc(t->threads, (size_t)nc * sizeof *nt);
        if (!nt)
            return NULL;  /* the thread stays traced but unknown; its stops are resumed as they come */
        t->threads = nt;
        t->cap = nc;
    }
    wp_thread *th = &t->threads[t->nthreads++];
    memset(th, 0, sizeof *th);
    th->tid = tid;
    th->state = st;
    th->name = -1;
    t->seen++;
    return th;
}

static void forget(wp_tracer *t, wp_thread *th)
{
    if (t->hooks.thread_gone)
        t->hooks.thread_gone(t->hooks.arg, th);
    *th = t->threads[--t->nthreads];
}

/* ---- /proc helpers -------------------------------------------------------- */

/* The value after "key:" in /proc/pid/task/tid/status (tid 0: /proc/pid),
 * copied into out.  0 or -errno. */
static int status_field(pid_t pid, pid_t tid, const char *key, char *out, size_t len)
{
    char path[64], line[256];
    if (tid)
        snprintf(path, sizeof path, "/proc/%d/task/%d/status", (int)pid, (int)tid);
    else
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t kl = strlen(key);
    int r = -ENOENT;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            char *v = line + kl + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = 0;
            snprintf(out, len, "%s", v);
            r = 0;
            break;
        }
    }
    fclose(f);
    return r;
}

static long status_num(pid_t pid, pid_t tid, const char *key)
{
    char v[64];
    if (status_field(pid, tid, key, v, sizeof v) < 0)
        return -1;
    return strtol(v, NULL, 10);
}

/* The state letter of a thread ('R', 'S', 'Z', ...), or 0 if it is gone. */
static char thread_state(pid_t pid, pid_t tid)
{
    char v[64];
    if (status_field(pid, tid, "State", v, sizeof v) < 0)
        return 0;
    return v[0];
}

static void comm_of(pid_t pid, char *out, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    snprintf(out, len, "?");
    FILE *f = fopen(path, "re");
    if (f) {
        if (fgets(out, (int)len, f))
            out[strcspn(out, "\n")] = 0;
        fclose(f);
    }
}

/* ---- resuming ------------------------------------------------------------ */

static void resume(wp_tracer *t, wp_thread *th)
{
    long r;
    if (th->listen)
        r = xptrace(PTRACE_LISTEN, th->tid, 0);
    else
        r = xptrace(PTRACE_CONT, th->tid, th->resume_sig);
    if (r < 0 && errno != ESRCH)
        fprintf(stderr, "weftprof: resuming thread %d: %s\n", (int)th->tid, strerror(errno));
    if (th->resume_sig && r == 0)
        t->forwarded++;
    /* ESRCH: killed while stopped (SIGKILL needs no resume); its exit status follows. */
    th->state = (th->exiting || r < 0) ? WP_EXITING : WP_RUNNING;
    th->resume_sig = 0;
    th->in_window = false;
}

/* ---- events --------------------------------------------------------------- */

/* Whether tid is (still) a thread of the traced process: a thread that
 * exited stays listed until reaped, and weftprof reaps its tracees. */
static bool in_group(wp_tracer *t, pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d", (int)t->pid, (int)tid);
    return access(path, F_OK) == 0;
}

static bool is_stop_signal(int sig)
{
    return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void handle(wp_tracer *t, pid_t tid, int status)
{
    wp_thread *th = find(t, tid);

    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        if (tid == t->pid) {
            /* The leader is reported last, once the group is empty. */
            t->leader_status = status;
            t->have_status = true;
            t->gone = true;
        }
        if (th) {
            t->exited++;
            forget(t, th);
        }
        if (t->nthreads == 0)
            t->gone = true;
        return;
    }
    if (!WIFSTOPPED(status))
        return;

    if (!th) {
        /* A new thread's first stop can overtake its parent's clone event. */
        th = add(t, tid, WP_NEW);
        if (!th) {
            xptrace(PTRACE_CONT, tid, 0);
            return;
        }
    }
    if (th->state == WP_NEW) {
        /* A clone without CLONE_THREAD is another process: let it go. */
        if (!in_group(t, tid)) {
            xptrace(PTRACE_DETACH, tid, 0);
            t->seen--;
            forget(t, th);
            return;
        }
    }

    int event = status >> 16, sig = WSTOPSIG(status);
    th->resume_sig = 0;
    th->listen = false;
    unsigned long msg = 0;
    switch (event) {
    case PTRACE_EVENT_STOP:
        /* SIGTRAP: an interrupt, a new thread's first stop, or the end of a
         * group-stop.  A stop signal: the group is (being) stopped. */
        th->listen = is_stop_signal(sig);
        break;
    case PTRACE_EVENT_CLONE:
        /* The child may have stopped, run and been reaped already (events
         * of different tracees come in any order): expect a first stop
         * only from a child still in the thread group.  One outside it
         * (a clone without CLONE_THREAD) is let go at its first stop. */
        if (xptrace(PTRACE_GETEVENTMSG, tid, (long)&msg) == 0 && !find(t, (pid_t)msg) &&
            in_group(t, (pid_t)msg)) {
            add(t, (pid_t)msg, WP_NEW);
            th = find(t, tid);  /* add() may have moved the table */
        }
        break;
    case PTRACE_EVENT_EXEC:
        /* A non-leader that execs takes over the leader's tid; its old tid
         * vanishes without an exit report. */
        if (xptrace(PTRACE_GETEVENTMSG, tid, (long)&msg) == 0 && (pid_t)msg != tid) {
            wp_thread *old = find(t, (pid_t)msg);
            if (old) {
                forget(t, old);
                th = find(t, tid);
            }
        }
        /* The thread reporting the exec lives on, even where its tid's
         * previous owner (the old leader) passed PTRACE_EVENT_EXIT. */
        th->exiting = false;
        t->execs++;
        if (t->hooks.exec)
            t->hooks.exec(t->hooks.arg);
        break;
    case PTRACE_EVENT_EXIT:
        th->exiting = true;
        if (tid == t->pid && t->hooks.leader_exiting)
            t->hooks.leader_exiting(t->hooks.arg, tid);
        break;
    case 0:
        /* Signal-delivery-stop: pass the signal on when resuming. */
        th->resume_sig = sig;
        break;
    default:
        break;
    }
    th->state = WP_STOPPED;
    /* A sample holds the threads it interrupted; a thread born or stopping
     * late meanwhile is not part of it (a new thread's first stop is not a
     * place its code ever sits).  Detaching holds everyone. */
    bool hold = t->detaching || (t->window && th->in_window);
    if (!hold || th->exiting)
        resume(t, th);
}

/* Handles every event already queued.  Sets t->gone when nothing is left. */
static void drain(wp_tracer *t)
{
    for (;;) {
        int status;
        pid_t tid = waitpid(-1, &status, __WALL | WNOHANG);
        if (tid > 0) {
            handle(t, tid, status);
            continue;
        }
        if (tid < 0 && errno == ECHILD)
            t->gone = true;  /* no tracee and no child left */
        return;
    }
}

/* Sleeps until a signal arrives or deadline passes. */
static void sleep_until(wp_tracer *t, int64_t deadline)
{
    int64_t left = deadline - wp_now();
    if (left <= 0)
        return;
    struct timespec ts = { (time_t)(left / 1000000000), (long)(left % 1000000000) };
    siginfo_t si;
    int sig = sigtimedwait(&t->waitset, &si, &ts);
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
        t->stopsig = sig;
}

void tracer_pump(wp_tracer *t, int64_t deadline)
{
    for (;;) {
        drain(t);
        if (t->gone || (t->stopsig && !t->window && !t->detaching) || wp_now() >= deadline)
            return;
        sleep_until(t, deadline);
    }
}

/* Pumps until done(t) holds, the process is gone, or deadline passes. */
static void pump_while(wp_tracer *t, int64_t deadline, bool (*pending)(wp_tracer *))
{
    for (;;) {
        drain(t);
        if (t->gone || !pending(t) || wp_now() >= deadline)
            return;
        sleep_until(t, deadline);
    }
}

/* ---- attaching ------------------------------------------------------------ */

/* Says in err why PTRACE_SEIZE of tid failed with EPERM. */
static void explain_eperm(pid_t pid, pid_t tid, char *err, size_t len)
{
    long tracer = status_num(pid, tid, "TracerPid");
    if (tracer > 0) {
        char comm[64];
        comm_of((pid_t)tracer, comm, sizeof comm);
        snprintf(err, len, "pid %d is already traced by pid %ld (%s); a process has one tracer "
                 "at a time: detach that debugger or profiler first", (int)pid, tracer, comm);
        return;
    }
    char uids[128];
    long uid = -1;
    if (status_field(pid, 0, "Uid", uids, sizeof uids) == 0)
        uid = strtol(uids, NULL, 10);
    int scope = -1;
    FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
    if (f) {
        if (fscanf(f, "%d", &scope) != 1)
            scope = -1;
        fclose(f);
    }
    if (geteuid() != 0 && uid >= 0 && uid != (long)geteuid())
        snprintf(err, len, "permission denied attaching to pid %d: it runs as uid %ld and you "
                 "are uid %d; ptrace needs the same uid or CAP_SYS_PTRACE (run as root)",
                 (int)pid, uid, (int)geteuid());
    else if (scope >= 1)
        snprintf(err, len, "permission denied attaching to pid %d: kernel.yama.ptrace_scope=%d "
                 "(%s); run as root (CAP_SYS_PTRACE), or set it to 0 with "
                 "'sysctl kernel.yama.ptrace_scope=0'", (int)pid, scope,
                 scope == 1 ? "only a parent may trace its descendants"
                 : scope == 2 ? "only CAP_SYS_PTRACE may trace" : "ptrace is disabled");
    else
        snprintf(err, len, "permission denied attaching to pid %d: the process may be "
                 "non-dumpable (setuid, prctl PR_SET_DUMPABLE) or weftprof lacks "
                 "CAP_SYS_PTRACE", (int)pid);
}

/* Undoes a partial attach: every thread seized so far is detached. */
static void abandon(wp_tracer *t)
{
    if (t->nthreads > 0)
        tracer_detach(t, wp_now() + 1000000000);
    tracer_fini(t);
}

int tracer_attach(wp_tracer *t, pid_t pid, char *err, size_t len)
{
    char v[64];
    if (pid == getpid()) {
        snprintf(err, len, "pid %d is weftprof itself", (int)pid);
        return -EINVAL;
    }
    if (status_field(pid, 0, "Tgid", v, sizeof v) < 0) {
        snprintf(err, len, "no such process: %d", (int)pid);
        return -ESRCH;
    }
    pid_t tgid = (pid_t)strtol(v, NULL, 10);
    if (tgid != pid) {
        fprintf(stderr, "weftprof: %d is a thread of process %d: profiling the process\n",
                (int)pid, (int)tgid);
        pid = tgid;
    }
    t->pid = pid;

    /* Threads started by a thread not yet seized are not auto-attached:
     * list the tasks again until a pass finds no one new. */
    for (bool added = true; added;) {
        added = false;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        if (!d)
            break;
        struct dirent *de;
        while ((de = readdir(d))) {
            pid_t tid = (pid_t)strtol(de->d_name, NULL, 10);
            if (tid <= 0 || find(t, tid))
                continue;
            if (xptrace(PTRACE_SEIZE, tid, SEIZE_OPTIONS) == 0) {
                if (!add(t, tid, WP_RUNNING)) {
                    closedir(d);
                    snprintf(err, len, "out of memory");
                    abandon(t);
                    return -ENOMEM;
                }
                added = true;
                continue;
            }
            int e = errno;
            if (e == ESRCH)
                continue;  /* exited meanwhile */
            if (e == EPERM && status_num(pid, tid, "TracerPid") == (long)getpid()) {
                add(t, tid, WP_NEW);  /* born traced from a seized thread: its first stop will come */
                added = true;
                continue;
            }
            if (e == EPERM && thread_state(pid, tid) == 'Z')
                continue;  /* a zombie leader (main called pthread_exit) cannot be traced */
            closedir(d);
            if (e == EPERM)
                explain_eperm(pid, tid, err, len);
            else
                snprintf(err, len, "cannot attach to pid %d (thread %d): %s", (int)pid, (int)tid,
                         strerror(e));
            abandon(t);
            return -e;
        }
        closedir(d);
    }
    if (t->nthreads == 0) {
        snprintf(err, len, "no such process: %d (it exited, or is a zombie)", (int)pid);
        return -ESRCH;
    }
    return 0;
}

int tracer_spawn(wp_tracer *t, char **argv, char *err, size_t len)
{
    int go[2];
    if (pipe2(go, O_CLOEXEC) < 0) {
        snprintf(err, len, "pipe: %s", strerror(errno));
        return -errno;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        snprintf(err, len, "fork: %s", strerror(e));
        close(go[0]);
        close(go[1]);
        return -e;
    }
    if (pid == 0) {
        /* The command gets the signal state weftprof was started with. */
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &t->oldmask, NULL);
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(127);  /* weftprof failed to seize us */
        execvp(argv[0], argv);
        fprintf(stderr, "weftprof: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(go[0]);
    t->pid = pid;
    t->spawned = true;
    /* Seized while it waits on the pipe, so its exec is traced; a seized
     * tracee gets no extra SIGTRAP after exec (only PTRACE_EVENT_EXEC). */
    if (xptrace(PTRACE_SEIZE, pid, SEIZE_OPTIONS) < 0 || !add(t, pid, WP_RUNNING)) {
        int e = errno ? errno : ENOMEM;
        snprintf(err, len, "cannot trace the command: %s", strerror(e));
        kill(pid, SIGKILL);
        close(go[1]);
        waitpid(pid, NULL, __WALL);
        return -e;
    }
    if (write(go[1], "g", 1) != 1) {
        /* Not reached in practice; the child then exits 127 on its own. */
    }
    close(go[1]);
    return 0;
}

/* ---- stop, resume, detach ------------------------------------------------- */

static bool window_pending(wp_tracer *t)
{
    for (int i = 0; i < t->nthreads; i++)
        if (t->threads[i].in_window && t->threads[i].state == WP_STOPPING)
            return true;
    return false;
}

/* Interrupts every RUNNING thread (step 1). */
static void interrupt_all(wp_tracer *t)
{
    for (int i = 0; i < t->nthreads;) {
        wp_thread *th = &t->threads[i];
        if (th->state != WP_RUNNING) {
            i++;
            continue;
        }
        if (xptrace(PTRACE_INTERRUPT, th->tid, 0) < 0) {
            /* Not (or no longer) our tracee: it is gone. */
            forget(t, th);
            if (t->nthreads == 0)
                t->gone = true;
            continue;
        }
        th->state = WP_STOPPING;
        th->in_window = true;
        i++;
    }
}

/* After a missed deadline: a STOPPING thread that /proc shows dead will
 * never stop (a zombie leader, a thread killed meanwhile). */
static void reap_late(wp_tracer *t)
{
    for (int i = 0; i < t->nthreads; i++) {
        wp_thread *th = &t->threads[i];
        if (th->state != WP_STOPPING || !th->in_window)
            continue;
        t->late++;
        char s = thread_state(t->pid, th->tid);
        if (s == 0 || s == 'Z' || s == 'X')
            th->state = WP_EXITING;
    }
}

int tracer_stop(wp_tracer *t, int64_t deadline)
{
    t->window = true;
    interrupt_all(t);
    pump_while(t, deadline, window_pending);
    if (!t->gone && window_pending(t))
        reap_late(t);
    int n = 0;
    for (int i = 0; i < t->nthreads; i++)
        n += t->threads[i].state == WP_STOPPED;
    return n;
}

void tracer_resume(wp_tracer *t)
{
    t->window = false;
    for (int i = 0; i < t->nthreads; i++) {
        wp_thread *th = &t->threads[i];
        th->in_window = false;
        if (th->state == WP_STOPPED)
            resume(t, th);
    }
}

static bool detach_pending(wp_tracer *t)
{
    for (int i = 0; i < t->nthreads; i++) {
        wp_thstate s = t->threads[i].state;
        if (s == WP_NEW || s == WP_STOPPING || s == WP_RUNNING)
            return true;
    }
    return false;
}

int tracer_detach(wp_tracer *t, int64_t deadline)
{
    /* Stop everyone, including threads born while stopping the others;
     * a stopped thread cannot clone, so this converges. */
    t->detaching = true;
    while (!t->gone && detach_pending(t) && wp_now() < deadline) {
        interrupt_all(t);
        pump_while(t, deadline, detach_pending);
    }
    t->detaching = false;
    int left = 0;
    for (int i = 0; i < t->nthreads;) {
        wp_thread *th = &t->threads[i];
        if (th->state == WP_STOPPED) {
            if (xptrace(PTRACE_DETACH, th->tid, th->listen ? 0 : th->resume_sig) == 0 &&
                th->resume_sig && !th->listen)
                t->forwarded++;
            forget(t, th);  /* detached, or gone (ESRCH) */
            continue;
        }
        if (th->state != WP_EXITING)
            left++;
        i++;
    }
    return left;
}
