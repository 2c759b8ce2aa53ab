/*
 * goroutines.h — which goroutine each sampled thread of a weft program
 * runs.  weftprof reads weft's debug descriptor (runtime/diag/debuginfo.h)
 * out of the target with process_vm_readv: the thread's kernel id names
 * an M on the descriptor's list of Ms, and that M's current G names the
 * goroutine.  No code runs in the target, nothing is written to it, and a
 * program without weft simply has no goroutines.
 */
#ifndef WEFTPROF_GOROUTINES_H
#define WEFTPROF_GOROUTINES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "debuginfo.h"

typedef struct wp_mcache {
    pid_t tid;            /* the M's thread */
    uint64_t m;           /* the M's address in the target */
} wp_mcache;

typedef struct wp_gname {
    int64_t goid;
    char *name;           /* its weft_attr name, or NULL */
} wp_gname;

typedef struct wp_goroutines {
    pid_t pid;
    bool found;                    /* desc is the target's, checked */
    struct weft_debug_info desc;
    int64_t tried;                 /* when the descriptor was last looked for (ns), 0 = never */
    char **scanned;                /* files already searched for it (this exec) */
    int nscanned, capscanned;
    uint64_t allm;                 /* the allm head the cache below was built from */
    wp_mcache *ms;                 /* Ms by thread, as of that head */
    int nms, capms;
    wp_gname *names;               /* goroutines seen so far, with their names */
    int nnames, capnames;
    long readerrs;                 /* target reads that failed (a racing or exiting target) */
} wp_goroutines;

void goroutines_init(wp_goroutines *g, pid_t pid);
void goroutines_fini(wp_goroutines *g);

/* The target exec'd: a new program, maybe with weft, maybe not. */
void goroutines_exec(wp_goroutines *g);

/* While the target runs: looks for the descriptor in the objects it has
 * mapped (through thread tid's /proc entries), unless found already or
 * looked for less than half a second ago (a program started with -- CMD
 * maps libweft.so only after its exec).  Each file is searched once; a
 * later look reads only the list of mappings, for files new since. */
void goroutines_lookup(wp_goroutines *g, pid_t tid);

/* While thread tid is stopped: the id of the goroutine it runs (> 0), 0
 * if it runs none (the scheduler, sysmon, a thread of its own) or the
 * target is no weft program.  Notes the goroutine's name the first time. */
int64_t goroutines_current(wp_goroutines *g, pid_t tid);

/* The name of goroutine goid as noted, or NULL. */
const char *goroutines_name(const wp_goroutines *g, int64_t goid);

#endif
