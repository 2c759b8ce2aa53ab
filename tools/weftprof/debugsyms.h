/*
 * debugsyms.h — function names from separate debug files, for objects
 * shipped stripped (Debian's libc keeps only .dynsym; libc6-dbg installs the
 * full .symtab as /usr/lib/debug/.build-id/xx/yyyy.debug).  libunwind 1.6
 * looks for debug files by .gnu_debuglink name only, never by build id, so
 * weftprof asks here when libunwind's nearest symbol is not the function's
 * own (symbols.c).  Without libelf at build time every lookup fails.
 */
#ifndef WEFTPROF_DEBUGSYMS_H
#define WEFTPROF_DEBUGSYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wp_debugsyms wp_debugsyms;

wp_debugsyms *debugsyms_new(void);
void debugsyms_free(wp_debugsyms *d);

/* The function containing addr, an address of the target mapped from file
 * offset mapoff of object path at mapstart.  Fills name and *entry (the
 * function's first instruction, as a target address) and returns true if
 * the object's debug file has a symbol covering addr. */
bool debugsyms_lookup(wp_debugsyms *d, const char *path, uint64_t mapstart, uint64_t mapoff,
                      uint64_t addr, char *name, size_t len, uint64_t *entry);

#endif
