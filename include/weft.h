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

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version and export macros ------------------------------------------ */

#define WEFT_VERSION_MAJOR 0
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

#if defined(__GNUC__)
#define WEFT_API __attribute__((visibility("default")))
#else
#define WEFT_API
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
    const char *name;   /* optional, shown in dumps; the string must outlive the goroutine */
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
WEFT_API _Noreturn void weft_exit(void);

/* The current goroutine's id, 0 outside any goroutine. */
WEFT_API int64_t weft_id(void);

/* Goroutines that exist now (runnable, running, blocked or in a syscall). */
WEFT_API int weft_num_goroutine(void);

/* GOMAXPROCS: n > 0 sets the number of Ps (stopping the world to resize);
 * returns the previous value.  n <= 0 only returns it. */
WEFT_API int weft_maxprocs(int n);

/* LockOSThread / UnlockOSThread: pin the calling goroutine to its OS thread.
 * Calls nest; each lock needs its unlock. */
WEFT_API void weft_lock_thread(void);
WEFT_API void weft_unlock_thread(void);

/* Bracket a raw blocking call: while inside, sysmon may hand this goroutine's
 * P to another thread so that other goroutines keep running. */
WEFT_API void weft_syscall_enter(void);
WEFT_API void weft_syscall_exit(void);

/* ---- time ---------------------------------------------------------------- */

/* Monotonic clock in nanoseconds. */
WEFT_API int64_t weft_nanotime(void);

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

/* ---- diagnostics --------------------------------------------------------- */

/* Misuse that Go panics on: prints "panic: <message>" and the goroutine's
 * state to stderr and exits with status 2. */
WEFT_API _Noreturn void weft_panic(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif
#endif /* WEFT_H */
