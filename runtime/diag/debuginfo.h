/*
 * debuginfo.h — the debug descriptor: how a tool outside the process finds
 * weft's goroutines and threads without knowing the runtime's structs.
 *
 * libweft exports one read-only object, `weft_debug_info` (default
 * visibility, so it is in libweft.so's dynamic symbol table and in the
 * symbol table of a program linked with libweft.a).  It holds the
 * addresses of the runtime's lists, the offset and size of every field a
 * reader needs in a G and an M, the status numbers, the wait-reason
 * strings and the layout of a switched-out goroutine's saved registers.
 * gdb's weft-gdb.py (tools/gdb), weftprof (tools/weftprof) and any core
 * reader read this, and only this, from the target's memory or a core
 * file, so a change to runtime.h changes the descriptor's contents, never
 * the tools.  docs/formats.md, "The debug descriptor", is the reference.
 *
 * The layout is fixed-width fields only, no pointers-as-pointers: every
 * address is a uint64_t, so a reader's own word size does not matter.
 * Readers check magic and version, and read no further than size:
 * later versions of the same major layout only append fields.
 */
#ifndef WEFT_DIAG_DEBUGINFO_H
#define WEFT_DIAG_DEBUGINFO_H

#include <stdint.h>

#define WEFT_DEBUG_MAGIC   "weftdbg"   /* 8 bytes with the NUL */
#define WEFT_DEBUG_VERSION 2           /* 2: compacted stacks (the fields after frame_regs) */
#define WEFT_DEBUG_MAXREGS 24          /* saved registers of a switch frame, at most */

/* A field of a runtime struct: its offset from the struct's address and
 * its size in bytes (integers are little- or big-endian as the target). */
typedef struct weft_debug_field {
    uint32_t off, size;
} weft_debug_field;

/* One register a context switch saves: its DWARF register number and its
 * offset from the saved stack pointer. */
typedef struct weft_debug_reg {
    uint32_t dwarf, off;
} weft_debug_reg;

struct weft_debug_info {
    char magic[8];                  /* WEFT_DEBUG_MAGIC */
    uint32_t version;               /* WEFT_DEBUG_VERSION */
    uint32_t size;                  /* sizeof(struct weft_debug_info) of this build */
    uint32_t ptrsize;               /* bytes in a pointer of the target */
    uint32_t arch;                  /* ELF e_machine: 62 x86-64, 183 AArch64 */

    /* Lists, walked without locks (a debugger stops the process first; a
     * sampler reads racily and checks what it reads). */
    uint64_t allg;                  /* address of the pointer to the newest G;
                                     * the list goes on through g_allglink */
    uint64_t allm;                  /* address of the pointer to the newest M;
                                     * the list goes on through m_alllink */
    uint64_t waitreasons;           /* address of nwaitreasons string pointers,
                                     * indexed by g_waitreason ("" for none) */
    uint32_t nwaitreasons;
    uint32_t reserved0;
    uint64_t srcdir;                /* address of a string: the runtime's source
                                     * directory as compiled (frames from files under
                                     * it are the runtime's own), "" if unknown */
    uint64_t gentry;                /* the outermost frame of every goroutine */
    uint64_t freshpc;               /* the pc a goroutine that never ran resumes at */
    uint64_t guards;                /* int (*)(int lift): lift (1) or restore (0) the
                                     * guard pages of every goroutine stack; for a
                                     * debugger's gcore, see stack.c; 0 if none */

    /* G: one goroutine (runtime.h) */
    uint32_t g_size;
    uint32_t reserved1;
    weft_debug_field g_goid;        /* int64: goroutine id; 0 for an M's scheduler context */
    weft_debug_field g_status;      /* unsigned: g_status_* below */
    weft_debug_field g_waitreason;  /* unsigned: index into waitreasons, when waiting */
    weft_debug_field g_sp;          /* saved stack pointer while switched out */
    weft_debug_field g_stacklo;     /* usable stack [stacklo, stackhi) */
    weft_debug_field g_stackhi;
    weft_debug_field g_m;           /* the M running it, 0 when none */
    weft_debug_field g_allglink;    /* the next older G */
    weft_debug_field g_name;        /* pointer to its name (weft_attr.name), 0 if none */
    weft_debug_field g_fn;          /* its start function */
    weft_debug_field g_gopc;        /* the return address of the weft_go call that made it */
    weft_debug_field g_parentgoid;  /* int64: the goroutine that made it, 0 if a plain thread */
    weft_debug_field g_syscallpc;   /* in a syscall: the pc and frame pointer it entered at */
    weft_debug_field g_syscallfp;
    weft_debug_field g_issystem;    /* bool: an M's scheduler context (g0), not a goroutine */

    /* M: one OS thread */
    uint32_t m_size;
    uint32_t reserved2;
    weft_debug_field m_id;          /* int64 */
    weft_debug_field m_curg;        /* the G it runs, 0 while it runs the scheduler */
    weft_debug_field m_tid;         /* the kernel thread id, 0 before the thread started */
    weft_debug_field m_alllink;     /* the next older M */
    weft_debug_field m_exited;      /* bool: its thread has finished */

    /* G status values */
    uint32_t g_status_idle, g_status_runnable, g_status_running, g_status_syscall,
        g_status_waiting, g_status_dead;

    /* A switched-out goroutine's frame (runtime/arch/<cpu>/switch.S): the
     * context resumes with sp = saved sp + frame_size, pc = the word at
     * saved sp + frame_pc, and the registers below from their slots.  A
     * goroutine that never ran has 0 in its frame-pointer slot (frame_fp)
     * and resumes at freshpc. */
    uint32_t frame_size;
    uint32_t frame_pc;
    uint32_t frame_fp;
    uint32_t frame_nregs;
    weft_debug_reg frame_regs[WEFT_DEBUG_MAXREGS];

    /* Version 2: compacted stacks (runtime/stack.c).  A switched-out
     * goroutine that has run (g_stacklo != 0) but whose g_sp is 0 has
     * given its stack's pages back while parked, or is about to: its
     * saved stack pointer is stack_savedsp of the stack record at g_stack
     * (0 there: none, it has no frame to show), and the live part of its
     * stack, [saved sp, g_stackhi), is read at stack_copy + (address -
     * saved sp) when the record's state (stack_cstate & stack_state_mask)
     * is stack_state_compacted or stack_state_restoring; in place when it
     * is anything else, except that while it is stack_state_compacting the
     * pages may be gone already (then the copy is whole: read it). */
    weft_debug_field g_stack;       /* pointer to its stack's record */
    weft_debug_field stack_savedsp; /* in the stack record: the saved sp while compacted */
    weft_debug_field stack_copy;    /* in the stack record: pointer to the copy, 0 if none */
    weft_debug_field stack_cstate;  /* in the stack record: the state word */
    uint32_t stack_state_mask;
    uint32_t stack_state_compacting;
    uint32_t stack_state_compacted;
    uint32_t stack_state_restoring;
};

#endif
