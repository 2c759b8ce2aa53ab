/*
 * debuginfo.c — the debug descriptor (diag/debuginfo.h) and gdb's
 * auto-loaded extension.
 *
 * weft_debug_info tells tools outside the process where the runtime keeps
 * its goroutines and threads and how to read them: gdb (tools/gdb/
 * weft-gdb.py), weftprof (tools/weftprof/goroutines.c) and core-file
 * readers read only this, never runtime.h's layouts, so the runtime's
 * structs stay free to change.  Every offset and size below is taken from
 * the real struct by offsetof/sizeof, and the static assertions check what
 * the readers assume of each field, so the descriptor cannot drift from
 * the code.  docs/formats.md, "The debug descriptor", documents it.
 *
 * The same object file carries weft-gdb.py itself, inlined in a
 * .debug_gdb_scripts section: gdb runs it when it loads the program (for
 * libweft.a) or libweft.so, once its auto-load safe-path allows that
 * file (README, "Debugging a weft program").  The script always matches
 * the descriptor of the library it came with.  lifecycle.c refers to
 * weft_debug_info, so a static link always pulls this object in.
 */
#include <elf.h>

#include "runtime.h"
#include "diag/debuginfo.h"

#define FIELD(T, f) { (uint32_t)offsetof(T, f), (uint32_t)sizeof(((T *)0)->f) }

#ifndef WEFT_RUNTIME_SRCDIR
#define WEFT_RUNTIME_SRCDIR ""
#endif

#if defined(__x86_64__)
#define WEFT_DEBUG_ARCH EM_X86_64
#define WEFT_FRESHPC    weft__gentry        /* ctx.c: a fresh frame returns into entry */
#elif defined(__aarch64__)
#define WEFT_DEBUG_ARCH EM_AARCH64
#define WEFT_FRESHPC    weft__ctx_start     /* ... into the trampoline that enters it */
#endif

static const char srcdir[] = WEFT_RUNTIME_SRCDIR;

__attribute__((visibility("default"))) const struct weft_debug_info weft_debug_info = {
    .magic = WEFT_DEBUG_MAGIC,
    .version = WEFT_DEBUG_VERSION,
    .size = sizeof(struct weft_debug_info),
    .ptrsize = sizeof(void *),
    .arch = WEFT_DEBUG_ARCH,

    .allg = (uintptr_t)&weft__allg,
    .allm = (uintptr_t)&sched.allm,
    .waitreasons = (uintptr_t)weft__waitreason_names,
    .nwaitreasons = waitReasonCount,
    .srcdir = (uintptr_t)srcdir,
    .gentry = (uintptr_t)weft__gentry,
    .freshpc = (uintptr_t)WEFT_FRESHPC,
    .guards = (uintptr_t)weft__stack_guards,

    .g_size = sizeof(G),
    .g_goid = FIELD(G, goid),
    .g_status = FIELD(G, atomicstatus),
    .g_waitreason = FIELD(G, waitreason),
    .g_sp = FIELD(G, sp),
    .g_stacklo = FIELD(G, stacklo),
    .g_stackhi = FIELD(G, stackhi),
    .g_m = FIELD(G, m),
    .g_allglink = FIELD(G, allglink),
    .g_name = FIELD(G, name),
    .g_fn = FIELD(G, fn),
    .g_gopc = FIELD(G, gopc),
    .g_parentgoid = FIELD(G, parentgoid),
    .g_syscallpc = FIELD(G, syscallpc),
    .g_syscallfp = FIELD(G, syscallfp),
    .g_issystem = FIELD(G, issystem),

    .m_size = sizeof(M),
    .m_id = FIELD(M, id),
    .m_curg = FIELD(M, curg),
    .m_tid = FIELD(M, procid),
    .m_alllink = FIELD(M, alllink),
    .m_exited = FIELD(M, exited),

    .g_status_idle = Gidle,
    .g_status_runnable = Grunnable,
    .g_status_running = Grunning,
    .g_status_syscall = Gsyscall,
    .g_status_waiting = Gwaiting,
    .g_status_dead = Gdead,

    .frame_size = WEFT_CTX_FRAME,
    .frame_pc = WEFT_CTX_PC,
    .frame_fp = WEFT_CTX_FP,
    .frame_nregs = sizeof((weft_debug_reg[]){ WEFT_CTX_REGS }) / sizeof(weft_debug_reg),
    .frame_regs = { WEFT_CTX_REGS },

    .g_stack = FIELD(G, stack),
    .stack_savedsp = FIELD(weft__stack, savedsp),
    .stack_copy = FIELD(weft__stack, copy),
    .stack_cstate = FIELD(weft__stack, cstate),
    .stack_state_mask = 7,
    .stack_state_compacting = STACK_COMPACTING,
    .stack_state_compacted = STACK_COMPACTED,
    .stack_state_restoring = STACK_RESTORING,
};

/* What readers assume of the fields: integers of at most 8 bytes, whole
 * pointers, a goid they can read as an int64. */
#define WORD(T, f) (sizeof(((T *)0)->f) == sizeof(void *))
_Static_assert(sizeof(((G *)0)->goid) == 8 && sizeof(((G *)0)->parentgoid) == 8, "goids are int64");
_Static_assert(sizeof(((G *)0)->atomicstatus) <= 8 && sizeof(((G *)0)->waitreason) <= 8 &&
               sizeof(((G *)0)->issystem) <= 8, "status, wait reason, issystem: small integers");
_Static_assert(WORD(G, sp) && WORD(G, stacklo) && WORD(G, stackhi) && WORD(G, m) &&
               WORD(G, allglink) && WORD(G, name) && WORD(G, fn) && WORD(G, gopc) &&
               WORD(G, syscallpc) && WORD(G, syscallfp), "G: pointer-sized fields");
_Static_assert(WORD(G, stack) && WORD(weft__stack, savedsp) && WORD(weft__stack, copy) &&
               WORD(weft__stack, cstate), "compacted stacks: pointer-sized fields");
_Static_assert(STACK_STATE((AO_t)~0) == 7, "the state mask the descriptor gives");
_Static_assert(sizeof(((M *)0)->id) == 8 && sizeof(((M *)0)->procid) <= 8 &&
               sizeof(((M *)0)->exited) <= 8, "M: id int64, tid and exited small integers");
_Static_assert(WORD(M, curg) && WORD(M, alllink), "M: pointer-sized fields");
_Static_assert(sizeof(weft__allg) == sizeof(void *) && sizeof(sched.allm) == sizeof(void *),
               "list heads are single pointers");
_Static_assert(sizeof((weft_debug_reg[]){ WEFT_CTX_REGS }) / sizeof(weft_debug_reg) <= WEFT_DEBUG_MAXREGS,
               "switch frame: more saved registers than the descriptor holds");
_Static_assert(WEFT_CTX_PC + 8 <= WEFT_CTX_FRAME && WEFT_CTX_FP + 8 <= WEFT_CTX_FRAME,
               "switch frame: pc and frame pointer inside the frame");
/* The layout docs/formats.md gives, field by field (no padding anywhere). */
_Static_assert(offsetof(struct weft_debug_info, allg) == 24 && offsetof(struct weft_debug_info, guards) == 80 &&
               offsetof(struct weft_debug_info, g_size) == 88 && offsetof(struct weft_debug_info, m_size) == 216 &&
               offsetof(struct weft_debug_info, g_status_idle) == 264 &&
               offsetof(struct weft_debug_info, frame_size) == 288 &&
               offsetof(struct weft_debug_info, frame_regs) == 304 &&
               offsetof(struct weft_debug_info, g_stack) == 496 && sizeof(struct weft_debug_info) == 544,
               "struct weft_debug_info: the layout docs/formats.md documents");

/* gdb's extension, inlined (type 4: a script's name on the first line,
 * its text after).  The section is mergeable strings, as gdb's manual
 * asks, so identical copies from several objects become one. */
#ifdef WEFT_GDB_SCRIPT
__asm__(".pushsection .debug_gdb_scripts, \"MS\", %progbits, 1\n"
        ".byte 4\n"
        ".ascii \"weft-gdb.py\\n\"\n"
        ".incbin \"" WEFT_GDB_SCRIPT "\"\n"
        ".byte 0\n"
        ".popsection\n");
#endif
