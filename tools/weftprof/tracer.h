/*
 * tracer.h — weftprof's ptrace side: one traced thread group, its threads'
 * states, and the stop / resume / detach protocol (tracer.c explains it).
 */
#ifndef WEFTPROF_TRACER_H
#define WEFTPROF_TRACER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A traced thread's state, as weftprof sees it.  Only tracer.c changes it.
 *
 *        clone event            first stop
 *   ──▶ NEW ───────────────────────────────┐
 *                                          ▼
 *   seize ▶ RUNNING ──interrupt──▶ STOPPING ──any stop──▶ STOPPED
 *             ▲                                            │
 *             └────────────── resume (CONT / LISTEN) ──────┘
 *   EVENT_EXIT stop, resumed ▶ EXITING ──exit status──▶ (removed)
 */
typedef enum {
    WP_NEW,      /* announced by its parent's clone event; its first stop is yet to come */
    WP_RUNNING,  /* resumed (running, or listening in a group-stop); no interrupt outstanding */
    WP_STOPPING, /* PTRACE_INTERRUPT sent; the stop has not been reported yet */
    WP_STOPPED,  /* in a ptrace-stop, held by weftprof until it resumes it */
    WP_EXITING,  /* past PTRACE_EVENT_EXIT, or found dead: never stopped again, only reaped */
} wp_thstate;

typedef struct wp_thread {
    pid_t tid;           /* kernel thread id */
    wp_thstate state;    /* see above */
    int resume_sig;      /* signal to deliver on resume (a signal-delivery-stop's), else 0 */
    bool listen;         /* stopped in a group-stop: resume with PTRACE_LISTEN, not CONT */
    bool exiting;        /* the current stop is PTRACE_EVENT_EXIT: it will not stop again */
    bool in_window;      /* interrupted for the sample being taken */
    void *upt;           /* libunwind's per-thread ptrace handle (sample.c owns it), or NULL */
    int name;            /* interned /proc/.../comm for the pprof label, -1 until read */
} wp_thread;

/* What the tracer tells the rest of weftprof.  Any hook may be NULL. */
typedef struct wp_tracer_hooks {
    void (*thread_gone)(void *arg, wp_thread *th);  /* about to forget th: free th->upt */
    void (*exec)(void *arg);                        /* the process exec'd a new program */
    void (*leader_exiting)(void *arg, pid_t pid);   /* leader at PTRACE_EVENT_EXIT: its
                                                       address space is still readable */
    void *arg;
} wp_tracer_hooks;

typedef struct wp_tracer {
    pid_t pid;                /* the thread group (its leader's tid) */
    bool spawned;             /* pid is weftprof's own child (-- CMD) */
    wp_thread *threads;       /* every thread weftprof traces (swap-removed on exit) */
    int nthreads, cap;
    bool window;              /* a sample is being taken: hold the threads it interrupted */
    bool detaching;           /* tracer_detach is stopping everyone: hold every stop */
    bool gone;                /* the whole process has exited */
    int execs;                /* exec events seen (-- CMD samples only after the first) */
    int leader_status;        /* the leader's wait status, valid if have_status */
    bool have_status;
    int stopsig;              /* SIGINT / SIGTERM / SIGHUP taken, 0 if none */
    sigset_t waitset;         /* the blocked signals sigtimedwait() takes */
    sigset_t oldmask;         /* the mask weftprof started with (for the CMD child) */
    wp_tracer_hooks hooks;
    /* counters for the end-of-run summary */
    long seen;                /* threads ever traced */
    long exited;              /* threads reaped */
    long forwarded;           /* signals passed on to the target */
    long late;                /* interrupts not answered within a sample's deadline */
} wp_tracer;

/* Blocks and takes over SIGCHLD, SIGINT, SIGTERM, SIGHUP (see tracer.c). */
void tracer_init(wp_tracer *t, const wp_tracer_hooks *hooks);
void tracer_fini(wp_tracer *t);

/* Seizes every thread of process pid.  0, or -errno with a one-line
 * explanation in err (no such process, permission, already traced). */
int tracer_attach(wp_tracer *t, pid_t pid, char *err, size_t errlen);

/* Starts argv as a traced child; it execs once seized.  0 or -errno. */
int tracer_spawn(wp_tracer *t, char **argv, char *err, size_t errlen);

/* Handles ptrace events until deadline (CLOCK_MONOTONIC ns), the process is
 * gone or, outside a sample, a stop signal arrives. */
void tracer_pump(wp_tracer *t, int64_t deadline);

/* Opens a sample: interrupts every running thread and waits until each has
 * stopped, exited, or deadline passed.  Returns the number now stopped. */
int tracer_stop(wp_tracer *t, int64_t deadline);

/* Closes the sample: resumes every stopped thread as its stop requires. */
void tracer_resume(wp_tracer *t);

/* Stops every thread and detaches from it, delivering any signal it was
 * stopped with; waits at most until deadline.  Returns the number of threads
 * left attached (the kernel detaches those when weftprof exits). */
int tracer_detach(wp_tracer *t, int64_t deadline);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t wp_now(void);

#endif
