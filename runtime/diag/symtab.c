/*
 * symtab.c — code addresses of this process to function, offset and
 * file:line (symtab.h).
 *
 * With libdw: one Dwfl session for the process, reported from
 * /proc/self/maps on first use.  An address outside every known module
 * reports the modules again only if the dynamic loader has loaded or
 * unloaded an object since the last report (dl_iterate_phdr's dlpi_adds
 * and dlpi_subs, two counters glibc keeps): reading /proc/self/maps costs
 * time in proportion to the process's mappings (every goroutine stack is
 * one), and an address in no object at all (a corrupt frame, or a client
 * of /debug/pprof/symbol sending junk) must not pay it each time.  libdw
 * finds each object's symbol table (.symtab when present, so static
 * functions have names too) and DWARF line table, and caches them.
 * Without libdw: dladdr, which knows only exported dynamic symbols.
 *
 * Every lookup is under one lock (symlock, a runtime lock: a waiter blocks
 * its thread, and with it any P the thread holds): Dwfl is not
 * thread-safe.  Callers that must not hold a P while waiting only try it
 * (weft__symbolize_nowait; the debug server).  The strings a
 * lookup returns live in libdw's caches (or the loaded objects' own string
 * tables) until weft__symtab_fini.
 *
 * libdw is hungry for stack: the first lookup in an object (reading its
 * symbol and line tables) takes about 150 KiB, more than a goroutine has.
 * So lookups run on a stack of their own (1 MiB reserved, committed by the
 * kernel as used, below a guard page), switched to and from with the
 * scheduler's own weft__swapctx, under the lock: from a goroutine, from a
 * plain thread, or from a crash handler on an alternate signal stack.
 */
#include <atomic_ops.h>
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "schedview.h"   /* the runtime's lock (symlock) */
#include "switch.h"      /* runtime/arch: the context switch, for the lookup stack */
#include "symtab.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

static weft__mutex symlock = WEFT__MUTEX_INIT(LOCKRANK_SYMTAB);
static AO_t symowner;       /* atomic: tid inside a lookup, 0 if none */

#ifdef WEFT_HAVE_LIBDW
#include <elfutils/libdwfl.h>

static Dwfl *dwfl;          /* symlock */
static unsigned long long reported[2];  /* symlock: the loader's adds and subs at the last report */

static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

static int loadcounts(struct dl_phdr_info *info, size_t size, void *arg)
{
    unsigned long long *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c[0] = info->dlpi_adds;
        c[1] = info->dlpi_subs;
    }
    return 1;       /* the counters are the same in every entry: one is enough */
}

/* The dynamic loader's counts of objects loaded and unloaded so far (both
 * 0 where the loader does not keep them: then nothing ever looks new). */
static void loadercounts(unsigned long long c[2])
{
    c[0] = c[1] = 0;
    dl_iterate_phdr(loadcounts, c);
}

/* (Re)reports the process's modules.  symlock. */
static bool report(void)
{
    if (!dwfl) {
        dwfl = dwfl_begin(&callbacks);
        if (!dwfl)
            return false;
    }
    /* Counted before reading the maps: an object loaded meanwhile makes
     * the next miss report again. */
    loadercounts(reported);
    dwfl_report_begin(dwfl);    /* keeps modules that are still mapped */
    int r = dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
    return r == 0;
}

/* file:line without .debug_aranges, which libdw's address lookup needs and
 * clang does not emit (unless -gdwarf-aranges): find the compile unit
 * whose ranges hold pc, then its line table.  A walk over the module's
 * units, paid only by modules built that way. */
static void cu_lineinfo(Dwfl_Module *mod, uintptr_t pc, weft__sym *out)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = NULL;
    while ((cu = dwfl_module_nextcu(mod, cu, &bias)) != NULL) {
        if (dwarf_haspc(cu, pc - bias) <= 0)
            continue;
        Dwarf_Line *l = dwarf_getsrc_die(cu, pc - bias);
        int lineno = 0;
        const char *file = l ? dwarf_linesrc(l, NULL, NULL) : NULL;
        if (file && dwarf_lineno(l, &lineno) == 0) {
            out->file = file;
            out->line = lineno;
        }
        return;
    }
}

static bool lookup(uintptr_t pc, weft__sym *out)
{
    memset(out, 0, sizeof *out);
    if (!dwfl && !report())
        return false;
    Dwfl_Module *mod = dwfl_addrmodule(dwfl, pc);
    if (!mod) {
        unsigned long long now[2];
        loadercounts(now);
        if ((now[0] == reported[0] && now[1] == reported[1]) || !report() ||
            !(mod = dwfl_addrmodule(dwfl, pc)))
            return false;
    }
    out->module = dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    GElf_Sym sym;
    GElf_Off off;
    const char *name = dwfl_module_addrinfo(mod, pc, &off, &sym, NULL, NULL, NULL);
    if (name) {
        out->func = name;
        out->entry = pc - off;
    }
    Dwfl_Line *line = dwfl_module_getsrc(mod, pc);
    if (line) {
        int lineno = 0;
        const char *file = dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL);
        if (file) {
            out->file = file;
            out->line = lineno;
        }
    } else {
        cu_lineinfo(mod, pc, out);
    }
    return true;
}

static void fini(void)
{
    if (dwfl)
        dwfl_end(dwfl);
    dwfl = NULL;
}

#else   /* !WEFT_HAVE_LIBDW */

static bool lookup(uintptr_t pc, weft__sym *out)
{
    memset(out, 0, sizeof *out);
    Dl_info info;
    if (!dladdr((void *)pc, &info))
        return false;
    out->module = info.dli_fname;
    if (info.dli_sname) {
        out->func = info.dli_sname;
        out->entry = (uintptr_t)info.dli_saddr;
    }
    return true;
}

static void fini(void) {}

#endif

/* ---- the lookup stack ------------------------------------------------------------ */

#include <valgrind/valgrind.h>

#define SYMSTACK (1u << 20)
#define SYMGUARD 4096u

/* All symlock. */
static char *symstack;          /* guard page, then SYMSTACK bytes */
static unsigned symstack_vgid;
static void *sym_ctx;           /* the lookup context, parked between lookups */
static void *caller_ctx;        /* whoever asked, while the lookup runs */
static uintptr_t req_pc;
static weft__sym *req_out;
static bool req_ok;
#if defined(__SANITIZE_ADDRESS__)
static const void *caller_bottom;
static size_t caller_size;
/* ASan is told of this switch.  Not once the process is dying: its
 * printer may be a signal handler (SIGQUIT lands anywhere) that
 * interrupted a goroutine switch between its two announcements, and ASan
 * aborts on a switch inside a switch ("starting fiber switch while in
 * fiber switch") with no way to ask whether one is under way.  Unannounced,
 * the lookup stack only costs ASan's own reports from it their stacks (as
 * in the ordinary library, which never announces it). */
static bool caller_annotates;
#endif

static void sym_entry(void)
{
    for (;;) {
#if defined(__SANITIZE_ADDRESS__)
        if (caller_annotates)
            __sanitizer_finish_switch_fiber(NULL, &caller_bottom, &caller_size);
#endif
        req_ok = lookup(req_pc, req_out);
#if defined(__SANITIZE_ADDRESS__)
        void *fake = NULL;
        if (caller_annotates)
            __sanitizer_start_switch_fiber(&fake, caller_bottom, caller_size);
#endif
        weft__swapctx(&sym_ctx, caller_ctx);
    }
}

/* Runs lookup(pc) on the lookup stack.  symlock. */
static bool biglookup(uintptr_t pc, weft__sym *out)
{
    if (!symstack) {
        void *p = mmap(NULL, SYMGUARD + SYMSTACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED || mprotect(p, SYMGUARD, PROT_NONE) != 0) {
            if (p != MAP_FAILED)
                munmap(p, SYMGUARD + SYMSTACK);
            memset(out, 0, sizeof *out);
            return false;
        }
        symstack = p;
        symstack_vgid = VALGRIND_STACK_REGISTER(symstack + SYMGUARD, symstack + SYMGUARD + SYMSTACK);
        sym_ctx = weft__ctx_init(symstack + SYMGUARD + SYMSTACK, sym_entry);
    }
    req_pc = pc;
    req_out = out;
#if defined(__SANITIZE_ADDRESS__)
    void *fake = NULL;
    caller_annotates = !AO_load(&weft__panicking);     /* a hint: see caller_annotates */
    if (caller_annotates)
        __sanitizer_start_switch_fiber(&fake, symstack + SYMGUARD, SYMSTACK);
#endif
    weft__swapctx(&caller_ctx, sym_ctx);
#if defined(__SANITIZE_ADDRESS__)
    if (caller_annotates)
        __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
    return req_ok;
}

static int64_t nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* biglookup, then releases symlock, which the caller took. */
static bool lockedlookup(uintptr_t pc, weft__sym *out)
{
    /* a hint for crash paths, read with AO_load: no ordering needed */
    AO_store(&symowner, (AO_t)gettid());
    bool ok = biglookup(pc, out);
    AO_store(&symowner, 0);
    weft__unlock(&symlock);
    return ok;
}

bool weft__symbolize(uintptr_t pc, weft__sym *out)
{
    weft__lock(&symlock);
    return lockedlookup(pc, out);
}

int weft__symbolize_nowait(uintptr_t pc, weft__sym *out)
{
    if (!weft__trylock(&symlock))
        return -EBUSY;
    return lockedlookup(pc, out);
}

bool weft__symbolize_try(uintptr_t pc, weft__sym *out)
{
    /* Another thread's lookup ends within microseconds: wait a little for
     * it.  Our own thread crashed inside one: never. */
    int64_t deadline = nanotime() + 50 * 1000 * 1000;
    while (!weft__trylock(&symlock)) {
        if ((pid_t)AO_load(&symowner) == gettid() || nanotime() > deadline) {
            memset(out, 0, sizeof *out);
            return false;
        }
        sched_yield();
    }
    return lockedlookup(pc, out);
}

bool weft__symtab_pprof(uintptr_t pc, bool isreturn, weft__pprof_sym *out, void *arg)
{
    (void)arg;
    weft__sym s;
    if (!weft__symbolize(isreturn && pc ? pc - 1 : pc, &s))
        return false;
    *out = (weft__pprof_sym){ .func = s.func, .file = s.file, .line = s.line };
    return true;
}

void weft__symtab_fini(void)
{
    weft__lock(&symlock);
    fini();
    if (symstack) {
        VALGRIND_STACK_DEREGISTER(symstack_vgid);
        /* sym_entry never returns: its frame's redzones would outlive the
         * mapping in AddressSanitizer's shadow and poison whatever is
         * mapped here next (seen: a false stack-buffer-underflow at exit) */
#if defined(__SANITIZE_ADDRESS__)
        __asan_unpoison_memory_region(symstack + SYMGUARD, SYMSTACK);
#endif
        munmap(symstack, SYMGUARD + SYMSTACK);
        symstack = NULL;
        sym_ctx = NULL;
    }
    weft__unlock(&symlock);
}
