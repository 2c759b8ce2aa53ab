/*
 * trace.h — the execution tracer's writer (tracebuf.c), which the
 * scheduler's trace hooks (runtime/trace.c) feed.
 *
 * The file is a Go 1.19 execution trace, so that `go tool trace` opens it
 * (docs/formats.md, "Execution trace", lists the events weft emits and
 * what each means in weft's scheduler):
 *
 *   "go 1.19 trace\0\0\0"                      16-byte header
 *   EvBatch(pid, ts) event event ...            one batch per full buffer
 *   EvBatch(pid, ts) event event ...
 *   ...
 *   EvString(id, len, bytes) ...               footer, written by stop:
 *   EvStack(id, n, {pc, func, file, line}...)   strings, stacks and the
 *   EvFrequency(ticks per second)               clock's frequency
 *
 * An event is a byte (type | nargs << 6) then unsigned LEB128 varints: the
 * timestamp as a difference from the previous event of the same batch,
 * then the arguments, then the stack id for the types that carry one.
 * nargs counts what follows the timestamp; at 3 or more a byte length of
 * the rest comes first instead (Go's traceEventLocked).
 *
 * Buffers.  Every P owns one buffer (the P's owner writes it without a
 * lock, as Go's p.tracebuf); events emitted without a P (a plain thread
 * creating or readying a goroutine, an M leaving a syscall with no P, a
 * netpoll run by an idle M) go to one global buffer under tracelock, as
 * Go's trace.buf.  A full buffer goes onto the list the writer thread
 * drains to the file, in the order they filled, so each P's batches reach
 * the file oldest first, which Go's parser requires.  Timestamps are
 * ticks of the CPU's counter (weft__trace_ticks, Go's cputicks), taken by
 * the writer of each event once it owns the buffer, so they never go
 * backwards within a batch; the footer's frequency converts them.
 *
 * Strings and stacks are interned into tables under tracelock (a stack
 * is deduplicated by its pcs, as Go's traceStackTable) and written once,
 * symbolized, by stop.
 */
#ifndef WEFT_DIAG_TRACE_H
#define WEFT_DIAG_TRACE_H

#include <atomic_ops.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Go 1.19's event types (runtime/trace.go) that weft emits. */
enum {
    TEV_BATCH = 1,          /* [pid, absolute timestamp] */
    TEV_FREQUENCY = 2,      /* [ticks per second] */
    TEV_STACK = 3,          /* [id, n, {pc, func, file, line} * n] */
    TEV_GOMAXPROCS = 4,     /* [ts, procs, stack] */
    TEV_PROCSTART = 5,      /* [ts, thread id] */
    TEV_PROCSTOP = 6,       /* [ts] */
    TEV_GOCREATE = 13,      /* [ts, g, start stack, stack] */
    TEV_GOSTART = 14,       /* [ts, g, seq] */
    TEV_GOEND = 15,         /* [ts] */
    TEV_GOSCHED = 17,       /* [ts, stack] */
    TEV_GOPREEMPT = 18,     /* [ts, stack] */
    TEV_GOSLEEP = 19,       /* [ts, stack] */
    TEV_GOBLOCK = 20,       /* [ts, stack] */
    TEV_GOUNBLOCK = 21,     /* [ts, g, seq, stack] */
    TEV_GOBLOCKSEND = 22,   /* [ts, stack] */
    TEV_GOBLOCKRECV = 23,
    TEV_GOBLOCKSELECT = 24,
    TEV_GOBLOCKSYNC = 25,
    TEV_GOBLOCKCOND = 26,
    TEV_GOBLOCKNET = 27,
    TEV_GOSYSCALL = 28,     /* [ts, stack] */
    TEV_GOSYSEXIT = 29,     /* [ts, g, seq, real ts] */
    TEV_GOSYSBLOCK = 30,    /* [ts] */
    TEV_GOWAITING = 31,     /* [ts, g] */
    TEV_GOINSYSCALL = 32,   /* [ts, g] */
    TEV_STRING = 37,        /* [id, len, bytes] */
    TEV_GOSTARTLOCAL = 38,  /* [ts, g]: the flight recorder's GoStart */
    TEV_GOUNBLOCKLOCAL = 39, /* [ts, g, stack] */
    TEV_USERREGION = 47,    /* [ts, task, mode, name, stack] */
    TEV_USERLOG = 48,       /* [ts, task, category, stack] then the message */
};

/* The pid of the global buffer's batches (Go's traceGlobProc). */
#define TRACE_GLOBAL_PID (-1)
/* Frames kept of a stack (Go keeps 128; weft's stacks are shallow). */
#define TRACE_MAXSTACK 32
/* One buffer: Go's 64 KiB.  Memory per P: the one being written, plus the
 * full ones the writer has not yet written. */
#define TRACE_BUFSIZE (64 * 1024)

typedef struct weft__tracebuf {
    struct weft__tracebuf *link;    /* tracelock: the full list */
    int64_t lastts;                 /* owner: timestamp of its last event */
    /* owner writes, store-release after each complete event, so that a
     * crash reading the buffer under its owner's feet (weft__fr_crashwrite)
     * sees whole events up to it */
    unsigned int pos;
    bool queued;                    /* tracelock: on the full list or a segment */
    uint8_t data[TRACE_BUFSIZE];
} weft__tracebuf;

/* The trace clock, Go's cputicks: the time-stamp counter on x86-64
 * (rdtsc: about 25 ns on a KVM guest, where clock_gettime through
 * kvm-clock's vDSO takes 60), the virtual counter on AArch64, else
 * CLOCK_MONOTONIC.  Its frequency is measured against CLOCK_MONOTONIC
 * over the trace (tracebuf.c, tickfreq), as Go's StopTrace does.  The
 * fence keeps the read after the loads before it: an event stamped
 * after its emitter saw another goroutine's transition is never stamped
 * earlier than that transition's event (the flight recorder's windows
 * and a crash's cut order events by their stamps); the events about a
 * goroutine get that order another way (weft__trace_ticks_nofence,
 * weft__trace_emit).  Counters that
 * disagree between CPUs would break that; x86-64 CPUs since about 2008
 * keep the TSC synchronized (constant_tsc, nonstop_tsc), and AArch64's
 * generic timer is one system-wide count. */
int64_t weft__nanotime(void);
static inline int64_t weft__trace_ticks(void)
{
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
    return (int64_t)((uint64_t)hi << 32 | lo);
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v) :: "memory");
    return (int64_t)v;
#else
    return weft__nanotime();
#endif
}

/* weft__trace_ticks without the fence (18 ns against 11 here): the read
 * may be made before the loads that precede it.  Only for the events
 * about a goroutine, which weft__trace_emit keeps in order through the
 * goroutine's last stamp instead. */
static inline int64_t weft__trace_ticks_nofence(void)
{
#if defined(__x86_64__)
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (int64_t)((uint64_t)hi << 32 | lo);
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return (int64_t)v;
#else
    return weft__nanotime();
#endif
}

/* Tracing is on: the hooks' one test (a plain load: start and stop change
 * it with the world stopped, and a P's owner reads it under the P it
 * acquired after that; emitters without a P recheck it under tracelock). */
extern AO_t weft__trace_on __attribute__((visibility("hidden")));
static inline bool weft__tracing(void) { return AO_load(&weft__trace_on) != 0; }
/* Which trace this is (1, 2, ...): per-G and per-P trace state carries the
 * generation it belongs to, so state left by an earlier trace reads as
 * "unknown to this one" without anyone resetting it. */
extern uint32_t weft__trace_gen __attribute__((visibility("hidden")));   /* written with the world stopped */

/* Appends one event to *bufp (a fresh buffer if NULL or too full; the
 * full one is queued for the writer) with batch pid.  args[0..nargs) follow
 * the timestamp; stk (a stack id, 0 for none) is appended when hasstk.
 * Returns the event's timestamp.  The caller owns *bufp.
 *
 * gts: NULL, or for an event about a goroutine that goroutine's last
 * stamp (G.tracets), read and updated here.  Such an event is stamped by
 * the unfenced clock, but never before the goroutine's last event,
 * wherever that was: whoever emits an event about a goroutine got to do
 * so through the loads that published the goroutine's last transition
 * (a run-queue get, a wait queue under its lock), which follow the store
 * of its stamp, and *gts is read through the goroutine itself.  So a
 * goroutine's events are in order across Ps by that dependency rather
 * than by a fence, and a P's are in order in its batch (encode).  Those
 * two orders are all Go's parser and a window's cut ask of the stamps. */
int64_t weft__trace_emit(weft__tracebuf **bufp, int32_t pid, int ev, const uint64_t *args,
                         int nargs, bool hasstk, uint64_t stk, int64_t *gts);
/* A user log event (Go's trace.Log): category is a string id. */
void weft__trace_emit_log(weft__tracebuf **bufp, int32_t pid, uint64_t category,
                          uint64_t stk, const char *msg);

/* Interns a stack (pcs are return addresses) / a string: its id, or 0
 * when out of memory (the event then goes without).  Any thread. */
uint64_t weft__trace_stack(const uintptr_t *pcs, int n);
uint64_t weft__trace_string(const char *s);
uint64_t weft__trace_stack_locked(const uintptr_t *pcs, int n);   /* tracelock held */

/* The global buffer, for emitters without a P: lock, check weft__tracing()
 * again, emit into *weft__trace_globalbuf(), unlock. */
void weft__trace_lock(void);
void weft__trace_unlock(void);
weft__tracebuf **weft__trace_globalbuf(void);

/* Start and stop, for runtime/trace.c, with the world stopped (start's
 * events are emitted between begin and enable; stop flushes each P's
 * buffer with weft__trace_flush before finish).  begin: 0 or -errno. */
int  weft__trace_begin(int fd);
void weft__trace_enable(void);
void weft__trace_disable(void);
void weft__trace_flush(weft__tracebuf **bufp);
/* After the world restarted: writes what is left and the footer, ends
 * the writer.  0 or a write's -errno. */
int  weft__trace_finish(void);

/* The flight recorder (tracebuf.c explains the segments).  begin: the
 * recorder thread calls checkpoint when the current segment holds more
 * than limit / 2 bytes; 0 or -errno.  rotate, declared, write and end
 * with the world stopped and every P's buffer flushed: rotate starts the
 * next segment, whose declaration (emitted on the global buffer) ends at
 * declared (both with tracelock held, the declaration emitted on the
 * global buffer under it, so that no event of a thread without a P falls
 * inside it); write writes the window (0 or a write's -errno).  quit ends
 * the recorder thread (not with the world stopped: it may be waiting to
 * stop it); end frees everything. */
int  weft__fr_begin(size_t limit, void (*checkpoint)(void));
void weft__fr_rotate(void);
void weft__fr_declared(void);
int  weft__fr_write(int fd);
void weft__fr_quit(void);
void weft__fr_end(void);

/* The flight recorder's default window: Go 1.25's FlightRecorderConfig
 * MaxBytes default (SCHEDDEBUG=flightrecorder uses it). */
#define TRACE_FR_DEFAULT (10u << 20)

/* A dying process's window (SCHEDDEBUG=flightrecorder; tracebuf.c, "A
 * window from a crash").  lock_crash: takes tracelock, waiting at most
 * 100 ms (the crashing thread may hold it); false if it could not.
 * recording: the flight recorder runs (tracelock held).  crashwrite, with
 * tracelock held: the window as weft__fr_write writes it, then the
 * global buffer and the n P buffers bufs (their owners may still be
 * appending) cut at the first event later than cut, and a footer built
 * without allocating.  0 or a write's -errno.  Async-signal-safe except
 * for the symbolizer, which it only tries (weft__symbolize_try). */
bool weft__trace_lock_crash(void);
bool weft__fr_recording(void);
int  weft__fr_crashwrite(int fd, weft__tracebuf *const *bufs, int n, int64_t cut);
/* Writes the window to SCHEDDEBUG=flightrecorder's path if the recorder
 * runs (runtime/trace.c; diag/crash.c calls it before the tracebacks). */
void weft__trace_crash(void);

#endif
