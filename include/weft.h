/*
 * weft.h — the one public header of weft, an M:N green-thread runtime for C
 * with Go's scheduler inside.
 *
 * Order: version and export macros, error conventions, types, lifecycle,
 * goroutines, time, per-G storage.  Later layers (sync, channels, I/O,
 * diagnostics) are added below as they land; nothing is declared here that
 * is not implemented.
 *
 * Error convention: a failure the caller can handle is returned as a
 * NEGATIVE errno value (-EINVAL, -ENOMEM, ...), never as -1 plus errno.  A
 * goroutine may resume on another OS thread inside any weft call, and the
 * compiler caches the address of the thread-local errno across calls, so a
 * caller could read another thread's errno.  The same holds for your own
 * _Thread_local data: use weft_local_key/get/set inside goroutines.
 */
#ifndef WEFT_H
#define WEFT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version and export macros ------------------------------------------ */

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#define WEFT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WEFT_API
#define WEFT_PRINTF(f, a)
#endif

/* A function that never returns, in every language that includes this
 * header: C11's _Noreturn, C++11's [[noreturn]], GNU's attribute for C99. */
#if defined(__cplusplus)
#define WEFT_NORETURN [[noreturn]]
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define WEFT_NORETURN _Noreturn
#elif defined(__GNUC__)
#define WEFT_NORETURN __attribute__((noreturn))
#else
#define WEFT_NORETURN
#endif

/* ---- limits -------------------------------------------------------------- */

/* Default usable stack of a goroutine (WEFT_STACK overrides at start-up). */
#define WEFT_STACK_DEFAULT   (64u * 1024u)
/* Smallest and largest stack a goroutine may ask for in weft_attr. */
#define WEFT_STACK_MIN       (16u * 1024u)
#define WEFT_STACK_MAX       (1024u * 1024u * 1024u)
/* Number of per-goroutine storage keys (weft_local_key). */
#define WEFT_LOCAL_KEYS      64

/* ---- lifecycle ----------------------------------------------------------- */

/*
 * Boots the runtime on the calling thread (which becomes M0), runs fn(arg)
 * as goroutine 1 and returns 0 when fn returns.  As in Go, the end of main
 * ends the program's goroutines: the others never run again, the runtime's
 * threads exit and its memory is released.  Returns -EBUSY if the runtime is
 * already running (weft_main inside weft_main, or after weft_go booted it
 * lazily from a plain thread), -EINVAL if fn is NULL.
 */
WEFT_API int weft_main(void (*fn)(void *), void *arg);

/* ---- goroutines ---------------------------------------------------------- */

typedef struct weft_attr {
    size_t stack_size;  /* usable stack bytes; 0 = default (WEFT_STACK_DEFAULT or $WEFT_STACK) */
    const char *name;   /* optional, kept with the goroutine (JSON goroutine dumps show its
                         * first 31 bytes); the string must outlive the goroutine */
    int compact;        /* nonzero: while it is parked in a weft call, its stack's live
                         * part is copied out and the stack's pages given back (README,
                         * "stacks at scale").  Another thread's or goroutine's access to
                         * one of its locals brings the stack back (a fault); the
                         * contract: no system call is handed a pointer into its stack
                         * while it is parked (it would fail with EFAULT).  Default-size
                         * stacks only. */
} weft_attr;

/*
 * Starts fn(arg) in a new goroutine.  Returns its goid (> 0; unique and
 * never reused; handed out in per-P batches as Go does, so not necessarily
 * in spawn order), -EINVAL if fn is NULL or the stack size is
 * outside [WEFT_STACK_MIN, WEFT_STACK_MAX], -ENOMEM when memory runs out.
 * Called from a plain thread, starts the runtime lazily.
 */
WEFT_API int64_t weft_go(void (*fn)(void *), void *arg);
WEFT_API int64_t weft_go_attr(const weft_attr *a, void (*fn)(void *), void *arg);

/* Gosched: lets other goroutines run; outside a goroutine, sched_yield(). */
WEFT_API void weft_yield(void);

/* Goexit: ends the calling goroutine (runs its weft_local destructors). */
WEFT_NORETURN WEFT_API void weft_exit(void);

/* The current goroutine's id, 0 outside any goroutine. */
WEFT_API int64_t weft_id(void);

/* Goroutines that exist now (runnable, running, blocked or in a syscall). */
WEFT_API int weft_num_goroutine(void);

/* The most Ps weft runs (weft_maxprocs, WEFT_MAXPROCS). */
#define WEFT_MAXPROCS_MAX    1024

/* GOMAXPROCS: n > 0 sets the number of Ps (stopping the world to resize);
 * returns the previous value.  n <= 0 only returns it.  -EINVAL for
 * n > WEFT_MAXPROCS_MAX.  Before weft_main boots the runtime, the value is
 * kept for the boot. */
WEFT_API int weft_maxprocs(int n);

/* LockOSThread / UnlockOSThread: pin the calling goroutine to its OS thread.
 * Calls nest; each lock needs its unlock. */
WEFT_API void weft_lock_thread(void);
WEFT_API void weft_unlock_thread(void);

/* Bracket a raw blocking call: while inside, sysmon may hand this goroutine's
 * P to another thread so that other goroutines keep running.  Nothing
 * between the two may park or yield (weft_yield, weft_sleep, a channel,
 * lock or fd wait): that is a fatal error naming the call. */
WEFT_API void weft_syscall_enter(void);
WEFT_API void weft_syscall_exit(void);

/* ---- time ---------------------------------------------------------------- */

/* Monotonic clock in nanoseconds. */
WEFT_API int64_t weft_nanotime(void);

/* Parks the calling goroutine for at least ns nanoseconds (its thread runs
 * other goroutines meanwhile).  ns <= 0 returns at once.  Outside a
 * goroutine, sleeps the thread. */
WEFT_API void weft_sleep(int64_t ns);

/* ---- sync ------------------------------------------------------------------
 * Go's sync package.  Each type has a static initialiser and needs no
 * destroy call.  Blocking parks the goroutine, not its thread; called from a
 * plain thread, the thread blocks.  Misuse Go panics on (unlock of an
 * unlocked mutex, a negative WaitGroup counter) panics with a traceback. */

typedef struct weft_mutex {
    int32_t state;
    uint32_t sema;
    uintptr_t owner;            /* internal: who locked it, for lock-cycle reports */
} weft_mutex;
#define WEFT_MUTEX_INIT { 0, 0, 0 }
/* sync.Mutex: spins briefly, then parks; after a waiter has waited 1 ms the
 * mutex switches to starvation mode and hands itself over in FIFO order.
 * A goroutine (or thread) that blocks on a mutex whose holder waits,
 * directly or through other holders, for a mutex it holds is reported as a
 * lock cycle (SCHEDDEBUG=lockcycle). */
WEFT_API void weft_mutex_lock(weft_mutex *m);
WEFT_API void weft_mutex_unlock(weft_mutex *m);
WEFT_API bool weft_mutex_trylock(weft_mutex *m);

typedef struct weft_rwmutex {
    weft_mutex w;
    uint32_t writersem, readersem;
    int32_t readercount, readerwait;
} weft_rwmutex;
#define WEFT_RWMUTEX_INIT { WEFT_MUTEX_INIT, 0, 0, 0, 0 }
WEFT_API void weft_rwmutex_rlock(weft_rwmutex *rw);
WEFT_API void weft_rwmutex_runlock(weft_rwmutex *rw);
WEFT_API void weft_rwmutex_lock(weft_rwmutex *rw);
WEFT_API void weft_rwmutex_unlock(weft_rwmutex *rw);

typedef struct weft_cond {
    uint32_t wait, notify;      /* tickets handed out / tickets notified */
    uintptr_t lock;             /* internal */
    void *head, *tail;          /* internal: waiters */
} weft_cond;
#define WEFT_COND_INIT { 0, 0, 0, NULL, NULL }
/* Waits for a signal; m must be locked, and is locked again on return.
 * Spurious wake-ups are possible: wait in a loop on your condition. */
WEFT_API void weft_cond_wait(weft_cond *c, weft_mutex *m);
/* As weft_cond_wait, giving up after ns: 0, or -ETIMEDOUT. */
WEFT_API int  weft_cond_timedwait(weft_cond *c, weft_mutex *m, int64_t ns);
WEFT_API void weft_cond_signal(weft_cond *c);
WEFT_API void weft_cond_broadcast(weft_cond *c);

typedef struct weft_wg { uint64_t state; uint32_t sema; } weft_wg;
#define WEFT_WG_INIT { 0, 0 }
WEFT_API void weft_wg_add(weft_wg *wg, int n);
WEFT_API void weft_wg_done(weft_wg *wg);
WEFT_API void weft_wg_wait(weft_wg *wg);

typedef struct weft_once { uint32_t done; weft_mutex m; } weft_once;
#define WEFT_ONCE_INIT { 0, WEFT_MUTEX_INIT }
/* Calls fn exactly once per weft_once; every caller returns after it ran. */
WEFT_API void weft_once_do(weft_once *o, void (*fn)(void));

/* ---- I/O ---------------------------------------------------------------------
 * Like read(2)/write(2)/accept(2)/connect(2), but a goroutine that would
 * block parks (its thread runs other goroutines) until the fd is ready.
 * The fd is switched to non-blocking mode on first use.  Failures return
 * -errno and never set errno.  Close such fds with weft_close, which also
 * wakes the goroutines parked on them (their calls return -EBADF).  From a
 * plain thread the calls block the thread. */
enum { WEFT_READ = 1, WEFT_WRITE = 2 };
WEFT_API ssize_t weft_read(int fd, void *b, size_t n);
/* Writes all n bytes unless an error occurs (as Go's Write): returns n, or
 * the bytes written before an error, or -errno if none were.  A socket or
 * pipe whose reader has gone is -EPIPE, never a SIGPIPE; no signal
 * disposition or mask of the program's is changed. */
WEFT_API ssize_t weft_write(int fd, const void *b, size_t n);
/* Returns the new fd (non-blocking, close-on-exec). */
WEFT_API int     weft_accept(int fd, struct sockaddr *sa, socklen_t *len);
WEFT_API int     weft_connect(int fd, const struct sockaddr *sa, socklen_t len);
/* Waits until fd is ready for events (WEFT_READ or WEFT_WRITE); returns
 * events, -ETIMEDOUT after timeout_ns (0 polls, < 0 waits forever), -EBADF
 * if closed meanwhile, -EBUSY if another goroutine already waits in that
 * direction, -EINVAL for bad events. */
WEFT_API int     weft_wait_fd(int fd, int events, int64_t timeout_ns);
WEFT_API int     weft_close(int fd);

/* ---- per-goroutine storage --------------------------------------------- */

/* Allocates a key (>= 0) or returns -EAGAIN when all WEFT_LOCAL_KEYS are
 * taken.  dtor (may be NULL) runs on a non-NULL value when its goroutine
 * ends. */
WEFT_API int   weft_local_key(void (*dtor)(void *));
/* The calling goroutine's value for key; NULL if unset, outside a goroutine,
 * or key invalid. */
WEFT_API void *weft_local_get(int key);
/* 0, -EINVAL (bad key), -EPERM (outside a goroutine) or -ENOMEM. */
WEFT_API int   weft_local_set(int key, void *v);

/* ---- channels ------------------------------------------------------------ */

/*
 * Go's channels.  A channel carries fixed-size elements (elem_size bytes,
 * copied in and out; 0 is allowed) through a ring of cap elements; cap 0
 * makes an unbuffered channel, where a send waits for its receiver and the
 * value goes straight from one to the other.  Blocking operations park the
 * calling goroutine; called from a plain thread (outside any goroutine)
 * they block that OS thread.  A NULL channel blocks forever, as Go's nil
 * channel does.  Waiters are served first come, first served.
 */
typedef struct weft_chan weft_chan;

/* Results of the non-blocking operations. */
enum {
    WEFT_OK = 0,            /* done */
    WEFT_WOULDBLOCK = 1,    /* nobody ready and no room (send) / nothing buffered (recv) */
    WEFT_CLOSED = 2,        /* recv only: closed and drained (elem zeroed) */
};

/* A new channel, or NULL when memory runs out or the sizes are absurd
 * (elem_size > 64 KiB, as in Go, or a buffer that cannot be allocated). */
WEFT_API weft_chan *weft_chan_new(size_t elem_size, size_t cap);
/* Frees a channel nobody uses any more (NULL is fine).  Panics if a
 * goroutine or thread is still blocked on it. */
WEFT_API void weft_chan_free(weft_chan *c);

/* Sends *elem (elem_size bytes); returns 0 once the value is buffered or
 * taken by a receiver, -EINVAL for a NULL elem on a channel whose elements
 * have a size (also for trysend and select's send cases).  Panics "send on
 * closed channel" if c is closed (also when it is closed while the sender
 * waits). */
WEFT_API int  weft_chan_send(weft_chan *c, const void *elem);
/* Receives into *elem (may be NULL to discard).  Returns true with a value,
 * false when c is closed and drained (*elem is then zeroed). */
WEFT_API bool weft_chan_recv(weft_chan *c, void *elem);
/* Non-blocking: WEFT_OK or WEFT_WOULDBLOCK; panics on a closed channel, as
 * Go's select with a default case does. */
WEFT_API int  weft_chan_trysend(weft_chan *c, const void *elem);
/* Non-blocking: WEFT_OK, WEFT_WOULDBLOCK or WEFT_CLOSED (elem zeroed). */
WEFT_API int  weft_chan_tryrecv(weft_chan *c, void *elem);
/* Closes c: blocked receivers get false, blocked senders panic.  Panics
 * "close of nil channel" / "close of closed channel". */
WEFT_API void weft_chan_close(weft_chan *c);
/* Elements buffered now (a snapshot) and the capacity; 0 for NULL. */
WEFT_API size_t weft_chan_len(weft_chan *c);
WEFT_API size_t weft_chan_cap(weft_chan *c);

/* Directions of a select case. */
enum { WEFT_SEND = 1, WEFT_RECV = 2 };

typedef struct weft_case {
    weft_chan *ch;  /* NULL: the case never fires */
    int dir;        /* WEFT_SEND or WEFT_RECV */
    void *elem;     /* SEND: the value to send; RECV: where to store (may be NULL) */
    bool ok;        /* out, RECV: true with a value, false closed (elem zeroed); SEND: true */
} weft_case;

/*
 * Go's select over n cases (n <= 65536).  Returns the index of the case
 * that fired; when several are ready one is chosen uniformly at random.
 * timeout_ns < 0 waits forever (n == 0 or only NULL channels: forever
 * indeed), 0 only polls, > 0 waits at most that long.  Returns -1 if no
 * case fired in time, -EINVAL for n < 0, n > 65536, a NULL cases with
 * n > 0, a bad dir or a SEND case with a NULL elem on a channel whose
 * elements have a size, -ENOMEM when memory runs out (only for n > 64, or
 * for the timer of a goroutine's first timed wait).  A SEND case on a
 * closed channel panics, as in Go.
 */
WEFT_API int weft_select(weft_case *cases, int n, int64_t timeout_ns);

/* ---- diagnostics --------------------------------------------------------- */

/* One scheduler dump to fd, now, in Go's schedtrace format (see README,
 * "SCHEDDEBUG"): the summary line, or with detailed the flags line and one
 * line per P, M and goroutine.  Safe at any time; never stops the world. */
WEFT_API void weft_schedtrace(int fd, bool detailed);

/* Go's runtime.Stack: writes the calling goroutine's traceback (all: then
 * every other goroutine's, recorded while the world runs as it was at one
 * instant; the world stops only twice, for a moment) into buf in Go's
 * format, and returns the bytes written (no NUL is added).  With all, the
 * other goroutines that do not fit whole are left out and counted on a
 * last line, "...N additional goroutines omitted..."; otherwise, and when
 * the caller's own traceback does not fit, output is cut off, so a return
 * value equal to len may mean truncated.  len 0 returns 0; -EINVAL for a
 * NULL buf with len > 0; -ESRCH for all = false outside any goroutine. */
WEFT_API int weft_stack(char *buf, size_t len, bool all);

/* A stack: return addresses, innermost first, ended by the first 0. */
typedef struct weft_stack_record {
    uintptr_t stack[32];
} weft_stack_record;

/* Go's GoroutineProfile / ThreadCreateProfile: n = number of records (live
 * goroutines / threads).  If n <= len, fills p[0..n) and sets *ok = true;
 * otherwise leaves p alone and sets *ok = false.  Returns n, or -EINVAL for
 * a NULL ok or len < 0 (p may be NULL when len is 0). */
WEFT_API int weft_goroutine_profile(weft_stack_record *p, int len, bool *ok);
WEFT_API int weft_threadcreate_profile(weft_stack_record *p, int len, bool *ok);

/* Go's pprof.Lookup(name).WriteTo(fd, debug) for "goroutine" and
 * "threadcreate": debug 0 writes a gzipped profile.proto, 1 the counts as
 * text ("goroutine profile: total N", "N @ 0x...", "#\t0x...\tfunc+0x..\tfile:line"),
 * 2 (goroutine) every goroutine's traceback (as weft_stack(.., true), up
 * to 64 MiB, as Go), 3 and above (goroutine, weft's own) the same
 * goroutines as one JSON document (docs/formats.md, JSON goroutine
 * dumps).  Goroutine stacks are recorded while the world runs.
 * 0 or -EINVAL (unknown name, debug < 0), -ENOMEM, or the negative errno
 * of a failed write. */
WEFT_API int weft_profile_write(const char *name, int fd, int debug);

/* The CPU profiler (Go's pprof.StartCPUProfile): every M gets a timer on
 * its own CPU clock that sends it SIGPROF hz times per CPU-second; each
 * signal records the interrupted stack and goroutine.  The kernel delivers
 * at most one signal per scheduler tick (CONFIG_HZ), so above that rate a
 * sample counts every expiration its signal stands for: the profile's
 * total is the CPU time used at any rate.  Stop writes a gzipped
 * profile.proto (samples/count, cpu/nanoseconds, a "goroutine" label per
 * sample) to fd.  start: 0, -EINVAL (hz outside 1..10000),
 * -EBADF (fd < 0), -EBUSY (already running), -ESRCH (the runtime is not
 * running), -ENOMEM.  stop: 0, -EINVAL (not running), or a write's
 * negative errno. */
WEFT_API int weft_cpuprofile_start(int fd, int hz);
WEFT_API int weft_cpuprofile_stop(void);

/* The execution tracer (Go's runtime/trace.Start and Stop): every
 * scheduling event from start to stop — goroutines created, started,
 * blocked (with Go's reason), unblocked, ended, syscalls, Ps started and
 * stopped, gomaxprocs — with timestamps and stacks, written to fd as a Go
 * 1.19 execution trace that `go tool trace` opens (docs/formats.md).
 * start: 0, -EBADF (fd < 0 or not open for writing), -EBUSY (a trace is
 * running), -ESRCH (the runtime is not running), or a write's negative
 * errno.  stop flushes every buffer and returns once the file is
 * complete: 0, -EINVAL (no trace running), or a write's negative errno.
 * A trace still running when main returns is stopped then. */
WEFT_API int weft_trace_start(int fd);
WEFT_API int weft_trace_stop(void);
/* Go's trace.Log: a message in the calling goroutine's timeline, under
 * category.  Go's trace.StartRegion / Region.End: marks a span of the
 * calling goroutine (nestable; end closes the innermost).  All three cost
 * a load and a branch when no trace is running. */
WEFT_API void weft_trace_log(const char *category, const char *message);
WEFT_API void weft_trace_region_begin(const char *name);
WEFT_API void weft_trace_region_end(void);
/* The flight recorder (Go 1.25's runtime/trace.FlightRecorder): the
 * tracer, keeping roughly the last `bytes` of events in memory instead of
 * writing them; write puts that window to fd as a complete trace, which
 * `go tool trace` opens like any other.  start: 0, -EINVAL (bytes under
 * 256 KiB), -EBUSY (a trace or recorder runs), -ESRCH.  write: 0, -EBADF,
 * -EINVAL (not recording), or a write's negative errno; the world stands
 * still while it writes.  stop: 0 or -EINVAL. */
WEFT_API int weft_flightrecorder_start(size_t bytes);
WEFT_API int weft_flightrecorder_write(int fd);
WEFT_API int weft_flightrecorder_stop(void);

/* Serves Go's net/http/pprof endpoints from goroutines: /debug/pprof/
 * (index), /debug/pprof/goroutine?debug=N, /debug/pprof/threadcreate?debug=N,
 * /debug/pprof/profile?seconds=N, /debug/pprof/symbol and /debug/sched (a
 * detailed dump).  addr is "host:port"; an empty host means 127.0.0.1 (a
 * non-loopback address is only used when given explicitly); port 0 picks a
 * free port.  Returns the port it listens on (> 0), or -EINVAL (malformed
 * addr) or the negative errno of socket/bind/listen.  The server runs until
 * weft_debug_stop or the end of weft_main, whichever comes first (a runtime
 * booted from a plain thread never ends: until weft_debug_stop). */
WEFT_API int weft_debug_serve(const char *addr);

/* Stops the server weft_debug_serve returned port for (Go's Server.Close):
 * closes its listening socket, so that new clients are refused, and every
 * open connection, unanswered (a CPU profile being taken stops), waits
 * until its goroutines have ended and returns 0.  The port can then be
 * bound again at once.  -EINVAL for a port outside 1..65535, -ENOENT if no
 * server listens on it (or it is being stopped).  Blocks the calling
 * goroutine (or plain thread) for as long as a request takes to notice:
 * the longest is one goroutine dump being written. */
WEFT_API int weft_debug_stop(int port);

/* Misuse that Go panics on: prints "panic: <message>", a scheduler dump if
 * SCHEDDEBUG asks for one, the goroutine's traceback (every goroutine's
 * with SCHEDDEBUG=traceback=all, none with traceback=none) to stderr and
 * exits with status 2. */
WEFT_NORETURN WEFT_API void weft_panic(const char *fmt, ...) WEFT_PRINTF(1, 2);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
