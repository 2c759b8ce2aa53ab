/*
 * symbols.h — the target's code addresses turned into function names, from
 * libunwind (_UPT_get_proc_name reads each object's .symtab, else .dynsym),
 * cached so that each distinct address is looked up once.
 *
 * An address is looked up by its key: the exact pc of a leaf frame, a
 * return address minus one (the call instruction) for every other frame.
 * Keys carry the exec generation: after the target execs, the same address
 * means another function.
 */
#ifndef WEFTPROF_SYMBOLS_H
#define WEFTPROF_SYMBOLS_H

#include <libunwind.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct wp_addr {
    uint64_t key;    /* the address looked up */
    int gen;         /* exec generation it belongs to */
    int func;        /* interned function name, -1 until resolved */
    uint64_t entry;  /* the function's first instruction, 0 if unknown */
    uint64_t fde;    /* start of the unwind entry covering key (sample.c), 0 if unknown */
} wp_addr;

typedef struct wp_symbols {
    char **names;          /* interned function names, by id */
    int nnames, capnames;
    uint32_t *nameidx;     /* open-addressing index over names: id + 1, 0 = empty */
    uint32_t nameslots;
    wp_addr *addrs;        /* every address seen */
    uint32_t naddrs, capaddrs;
    uint32_t *addridx;     /* index over addrs: position + 1 */
    uint32_t addrslots;
    uint32_t *pending;     /* positions in addrs still to resolve */
    uint32_t npending, cappending;
    int gen;               /* current exec generation */
    struct wp_debugsyms *debug;  /* separate debug files (debugsyms.h), NULL if unavailable */
} wp_symbols;

void symbols_init(wp_symbols *s);
void symbols_fini(wp_symbols *s);

/* The id of name, interned.  -1 if out of memory. */
int symbols_intern(wp_symbols *s, const char *name);
const char *symbols_name(const wp_symbols *s, int id);

/* Whether key (of the current generation) is known already. */
bool symbols_known(const wp_symbols *s, uint64_t key);

/* Makes key (of the current generation) known, with the start of its unwind
 * entry (0 if unknown); a new one waits for symbols_resolve.  0 or -ENOMEM. */
int symbols_note(wp_symbols *s, uint64_t key, uint64_t fde);

/* Resolves every waiting key through libunwind, reading the target's maps
 * and files as thread tid (any live thread of the target).
 *
 * libunwind answers with the nearest symbol at or below the address, and a
 * stripped library (Debian's libc) keeps only its exported symbols: an
 * internal function such as start_thread would take the name of whatever
 * exported function precedes it.  So a symbol that starts before the
 * function's unwind entry is not the function's own; such a function, and
 * one with no symbol at all, is named from the object's separate debug file
 * when one is installed (debugsyms.h), else "[object+0xoffset]" after its
 * start (one name per function), or "0x…" outside any object. */
void symbols_resolve(wp_symbols *s, unw_addr_space_t as, pid_t tid);

/* The function id of (key, gen); an address never resolved (the target
 * exited first) is named by its hex value.  -1 only if out of memory. */
int symbols_func(wp_symbols *s, uint64_t key, int gen);

/* The entry for (key, gen), or NULL. */
const wp_addr *symbols_find(const wp_symbols *s, uint64_t key, int gen);

/* The target exec'd: later keys are a new generation. */
void symbols_exec(wp_symbols *s);

#endif
