/*
 * symtab.h — turning code addresses of this process into function names,
 * offsets and file:line (Go's FuncForPC / CallersFrames).
 *
 * Built on libdw (elfutils) when it is available, which reads the ELF
 * symbol tables (static functions included) and the DWARF line tables of
 * every loaded object; without libdw, only dladdr's dynamic symbols.
 */
#ifndef WEFT_SYMTAB_H
#define WEFT_SYMTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "pprof.h"

typedef struct weft__sym {
    const char *func;       /* function name, NULL if unknown */
    uintptr_t entry;        /* its first instruction (0 if unknown) */
    const char *file;       /* source file, NULL without debug info */
    int line;               /* source line, 0 without debug info */
    const char *module;     /* path of the ELF object holding pc, NULL if none */
} weft__sym;

/* Looks up pc (for a return address, pass the return address minus one: the
 * call instruction).  Fills *out (fields unknown stay NULL/0) and returns
 * true if pc is inside any loaded object.  The strings stay valid until
 * weft__symtab_fini.  Thread-safe (one internal lock); not async-signal-
 * safe: crash paths use weft__symbolize_try. */
bool weft__symbolize(uintptr_t pc, weft__sym *out);

/* Like weft__symbolize, but returns at once if another thread is inside
 * the symbolizer: 1 (pc is in a loaded object), 0 (it is not) or -EBUSY.
 * For callers that would rather wait elsewhere (the debug server parks its
 * goroutine, so that no P waits for the lock). */
int weft__symbolize_nowait(uintptr_t pc, weft__sym *out);

/* Like weft__symbolize, but gives up (returns false) instead of waiting if
 * another thread is inside the symbolizer: for crash paths. */
bool weft__symbolize_try(uintptr_t pc, weft__sym *out);

/* The same, as the pprof writer's symbolizer (pprof.h) for this process's
 * addresses: the profiles weft writes about itself. */
bool weft__symtab_pprof(uintptr_t pc, bool isreturn, weft__pprof_sym *out, void *arg);

/* Frees the symbolizer's caches (runtime shutdown).  The next lookup starts
 * afresh. */
void weft__symtab_fini(void);

#endif
