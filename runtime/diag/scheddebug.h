/*
 * scheddebug.h — the SCHEDDEBUG setting, weft's GODEBUG (the keys and what
 * they print: README.md and docs/formats.md, SCHEDDEBUG and schedtrace):
 * parsed once at start-up by a pure function that tests and the fuzzer
 * call directly.
 */
#ifndef WEFT_SCHEDDEBUG_H
#define WEFT_SCHEDDEBUG_H

#include <stdbool.h>
#include <stddef.h>

/* The longest path a SCHEDDEBUG value may name, with its NUL. */
#define WEFT_SCHEDDEBUG_PATHMAX 512

/* The most ancestors a goroutine keeps: each goroutine carries room for
 * that many (24 bytes each) from its first creation with the setting on. */
#define WEFT_ANCESTORS_MAX 100

enum { TRACEBACK_NONE = 0, TRACEBACK_SINGLE = 1, TRACEBACK_ALL = 2 };
enum { LOCKCYCLE_OFF = 0, LOCKCYCLE_REPORT = 1, LOCKCYCLE_FATAL = 2 };

typedef struct weft__scheddebug {
    int schedtrace;     /* ms between summary lines; 0 = off */
    int scheddetail;    /* 1 = detailed dumps */
    int traceback;      /* TRACEBACK_* (default single) */
    int hogwarn;        /* ms; 0 = off */
    int tracebackancestors; /* creators' stacks kept per goroutine (Go's GODEBUG
                             * setting); 0 = off, at most WEFT_ANCESTORS_MAX */
    int blockwarn;      /* s: report a wait longer than this, once; 0 = off */
    char tracefile[WEFT_SCHEDDEBUG_PATHMAX]; /* execution trace of the whole run; "" = off */
    int lockcycle;      /* LOCKCYCLE_* (default report): weft_mutex lock cycles */
    char flightrecorder[WEFT_SCHEDDEBUG_PATHMAX]; /* the recorder's window on a crash; "" = off */
    int compactstacks;  /* 1: every goroutine's stack is compacted when it parks, as if
                         * spawned with weft_attr.compact (runtime/stack.c) */
} weft__scheddebug;

/* Called once per rejected entry, with the entry as written (not NUL
 * terminated: len bytes) and the reason. */
typedef void (*weft__scheddebug_warnf)(const char *entry, size_t len, const char *why, void *arg);

/* Parses s (may be NULL) into *out, starting from the defaults.  Entries
 * are comma-separated name=value; a malformed or unknown entry is reported
 * through warn (if not NULL) and otherwise ignored; later entries win.
 * Returns the number of rejected entries. */
int weft__scheddebug_parse(const char *s, weft__scheddebug *out,
                           weft__scheddebug_warnf warn, void *arg);

extern weft__scheddebug weft__debug;   /* const after boot */

/* A detailed scheduler dump to fd from a crash path, when SCHEDDEBUG asks
 * for dumps (schedtrace.c): waits at most 100 ms for the scheduler lock,
 * then dumps racily.  No allocation. */
void weft__schedtrace_crash(int fd);

#endif
