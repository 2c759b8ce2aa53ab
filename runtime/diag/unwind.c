/*
 * unwind.c — the one stack walker (unwind.h): DWARF call frame
 * information through libunwind in an address space of weft's own, and
 * frame pointers where that is not possible, bounded by the stack being
 * walked, with the prologue, epilogue and leaf cases of an interrupted
 * context recovered from the stack pointer or link register.
 *
 *   frame record at fp:  fp[0] = the caller's frame pointer
 *                        fp[1] = the return address into the caller
 *
 * x86-64 (push %rbp; mov %rsp,%rbp) and AArch64 (stp x29, x30, [sp, #-n]!;
 * mov x29, sp) lay it out the same way.
 */
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic_ops.h>

#include "switch.h"
#include "unwind.h"

#if WEFT_HAVE_LIBUNWIND
#include <libunwind.h>
#endif

#include <valgrind/memcheck.h>
#include <valgrind/helgrind.h>
#include <valgrind/drd.h>

/* The window a walk of a stack with unknown bounds may read (unwind.h). */
#define UNKNOWN_STACK (8u << 20)

static int inside(uintptr_t a, uintptr_t lo, uintptr_t hi) { return lo && a >= lo && a < hi; }

/* Reads n bytes at addr without faulting (process_vm_readv on ourselves
 * fails with EFAULT on an unmapped address): async-signal-safe. */
static int saferead(uintptr_t addr, void *buf, size_t n)
{
    struct iovec local = { .iov_base = buf, .iov_len = n };
    struct iovec remote = { .iov_base = (void *)addr, .iov_len = n };
    return syscall(SYS_process_vm_readv, getpid(), &local, 1UL, &remote, 1UL, 0UL) == (long)n;
}

static uintptr_t dwnext(weft__unwinder *u);
static bool dwinit_sigctx(weft__unwinder *u, const ucontext_t *uc, uintptr_t pc, uintptr_t lo, uintptr_t hi);

/* ---- the frame chain ------------------------------------------------------------- */

/* The return address in the frame record at u->fp, moving u->fp to the
 * caller's record; 0 at the end of the chain. */
WEFT_NO_ASAN static uintptr_t fpnext(weft__unwinder *u)
{
    uintptr_t fp = u->fp;
    if (u->hi - u->lo < 2 * sizeof(uintptr_t) || fp < u->lo || fp > u->hi - 2 * sizeof(uintptr_t) ||
        (fp & (sizeof(uintptr_t) - 1)))
        return 0;
    const uintptr_t *f = (const uintptr_t *)(fp + (uintptr_t)u->delta);
    uintptr_t next = f[0], ret = f[1];
    /* The chain climbs the stack; anything else ends it. */
    u->fp = next > fp ? next : 0;
    return ret;
}

void weft__unwind_init(weft__unwinder *u, uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
    u->dwarf = 0;
    u->delta = 0;
    if (!lo) {
        lo = fp;
        hi = fp + UNKNOWN_STACK;
    }
    u->lo = lo;
    u->hi = hi;
    u->fp = pc ? fp : 0;
    u->pc[0] = pc;
    u->pc[1] = 0;
    u->npc = pc ? 1 : 0;
}

uintptr_t weft__unwind_next(weft__unwinder *u)
{
    if (u->npc > 0) {
        uintptr_t pc = u->pc[0];
        u->pc[0] = u->pc[1];
        u->npc--;
        return pc;
    }
    return u->dwarf ? dwnext(u) : fpnext(u);
}

int weft__unwind_pcs(weft__unwinder *u, uintptr_t *pcs, int max)
{
    int n = 0;
    uintptr_t pc;
    while (n < max && (pc = weft__unwind_next(u)) != 0)
        pcs[n++] = pc;
    return n;
}


/* ---- DWARF: libunwind in an address space of weft's own ---------------------------
 *
 * unwind.h says why an address space of our own.  Its parts:
 *
 *   objects   every loaded object's segments and .eh_frame_hdr search
 *             table, sorted by address, built by weft__unwind_prepare
 *             (dl_iterate_phdr, outside signal handlers) and published
 *             whole; a table replaced by a newer one stays allocated (a
 *             walk may still hold it), on the chain of `older` tables
 *   accessors find_proc_info binary-searches the objects, then lets
 *             libunwind search the object's table; access_mem reads the
 *             stack being walked and the objects' segments directly,
 *             anything else through saferead; access_reg reads the
 *             registers the walk started from (struct dwregs)
 *   recipes how to step from a pc to its caller, learned once per pc
 *             from libunwind and kept in a lock-free table (struct rtab):
 *             see "recipes" below.  libunwind itself steps only frames
 *             whose recipe is not a simple one.
 *   address space: one, `as`, with libunwind's global cache of parsed CFI,
 *             whose lock libunwind takes with every signal blocked: no
 *             signal handler can interrupt its holder on the same thread,
 *             and other threads hold it for microseconds.  (Debian's
 *             libunwind is built without per-thread caches, and the lock
 *             costs two sigprocmask calls per step: the recipes are what
 *             keeps a dump of 10,000 goroutines fast.)
 */
/* ---- memos of weft__callers' walks ----------------------------------------------
 *
 * The tracer walks the same few call chains over and over (a loop's
 * park, the same yield, every goroutine of a kind parking at the same
 * place), so each thread remembers its last few walks: where the walk
 * started (the first pc, and the stack and frame pointers as distances
 * below the stack's top), every word it read on the way (a return
 * address as it is, a saved frame pointer as a distance below the top),
 * and the pcs it returned.  A walk that starts the same way and finds
 * the same words at the same places is the same walk: each step is a
 * function of the pc (its recipe), the stack and frame pointers and the
 * words it reads, and none of these differ.  So a memo hit costs a load
 * and a compare per word instead of a recipe lookup and a step per
 * frame, and it stays exact on another goroutine's stack at the same
 * depth (distances, not addresses) and against any change of the chain
 * (a different caller leaves a different return address).  Only walks
 * made by recipes alone are remembered, for the object table they were
 * made with (a library loaded or unloaded since changes it). */
#define MEMO_SETS 8         /* walks remembered per thread: sets of ... */
#define MEMO_WAYS 2         /* ... two (two goroutines taking turns at one place) */
#define MEMO_FRAMES 24      /* frames a remembered walk stepped, at most */

struct memo {
    const void *table;      /* the object table the walk was made with; NULL: empty */
    uintptr_t pc0, sp0, fp0;    /* its first pc; hi - sp, hi - fp there */
    uintptr_t deep;         /* the deepest word it read, as hi - its address */
    int skip, max, n;       /* its skip and max; how many pcs it returned */
    int nra, nfp;           /* return addresses and frame pointers it read; MEMO_FRAMES + 1: too many */
    uint32_t raoff[MEMO_FRAMES], fpoff[MEMO_FRAMES];    /* hi - the address of each word read ... */
    uintptr_t ra[MEMO_FRAMES], fp[MEMO_FRAMES];         /* ... and what it held (a frame pointer as hi - it) */
    uintptr_t pcs[MEMO_FRAMES];
    uint64_t tag;           /* weft__callers_tagged's word for its caller; 0 in a new memo */
};
static __thread struct memo memos[MEMO_SETS][MEMO_WAYS];     /* about 12 KiB per thread */
static __thread uint8_t memonext[MEMO_SETS];    /* the way of each set a new walk replaces */
/* Running under valgrind: a memo's words are checked where a different
 * chain may have left a word never written, which memcheck would report
 * (set by weft__unwind_prepare before it publishes the first object
 * table, which every memo needs). */
static AO_t onvalgrind;

#if WEFT_HAVE_LIBUNWIND

#if defined(__x86_64__)
#define DW_NREGS 17     /* rax ... r15, rip: libunwind's and DWARF's numbers */
#define DW_SP UNW_X86_64_RSP
#define DW_FP UNW_X86_64_RBP
#define DW_PC UNW_X86_64_RIP
#elif defined(__aarch64__)
#define DW_NREGS 33     /* x0 ... x30, sp, pc */
#define DW_SP UNW_AARCH64_SP
#define DW_FP UNW_AARCH64_X29
#define DW_PC UNW_AARCH64_PC
#endif

/* The registers a walk starts from, and the stack it walks: libunwind's
 * `arg` for every accessor call of the walk. */
struct dwregs {
    unw_word_t r[DW_NREGS];     /* unknown ones are 0; r[DW_PC]: the pc to look up */
    uintptr_t lo, hi;           /* the stack; lo == 0: unknown */
    intptr_t delta;             /* the word at a in [lo, hi) is read at a + delta (a
                                 * compacted stack's copy, unwind.h); 0: in place */
    bool probe;                 /* learning a recipe: see probe() */
};

/* The made-up frame recipes are learned from (see "recipes" below): its
 * SP and FP, and the tag on the words read near them. */
#define PROBE_SP 0x100000000000ull
#define PROBE_FP 0x200000000000ull
#define PROBE_WINDOW 0x100000ull
#define PROBE_TAG (1ull << 62)

/* What weft__unwinder.dw holds during a DWARF walk: the current frame's
 * registers (all of them for a walk's first frame when they are known,
 * then the stack pointer, the frame pointer and the pc), and a cursor for
 * the frames libunwind steps. */
struct dwwalk {
    unw_cursor_t cur;
    struct dwregs regs;
    bool others;                /* registers besides SP, FP and the pc are set */
};
_Static_assert(sizeof(struct dwwalk) <= WEFT__UNWIND_DWARF, "weft__unwinder.dw is too small");

#define OBJ_MAXSEG 8

/* A loaded object: its loaded segments and its unwind table. */
struct uobj {
    uintptr_t lo, hi;                   /* the span of its segments */
    int nseg;
    uintptr_t seg[OBJ_MAXSEG][2];       /* [start, end) of each PT_LOAD */
    bool hastable;                      /* has a binary-search .eh_frame_hdr */
    unw_dyn_info_t di;                  /* that table, as libunwind's dwarf_callback builds it */
};

/* Recipes, by the pc they are for (see "recipes" below): open
 * addressing, never deleted; a full table only means more probes. */
#define RTAB_BITS 13
#define RTAB_SIZE (1u << RTAB_BITS)
struct rentry {
    AO_t pc;                            /* 0: free */
    AO_t rc;                            /* its recipe; 0: being learned */
};
struct rtab {
    struct rentry e[RTAB_SIZE];         /* side by side: one cache line per lookup */
};

struct utable {
    struct utable *older;               /* the table this one replaced */
    unsigned long long adds, subs;      /* dl_iterate_phdr's counters when built */
    struct rtab *rt;                    /* recipes for pcs of these objects */
    int n;
    struct uobj obj[];                  /* sorted by lo */
};

static AO_t curtable;           /* struct utable *: written by prepare under preplock */
/* A plain mutex, not a ranked runtime lock: prepare holds no runtime lock,
 * runs outside the scheduler, and calls only the loader, libunwind and
 * malloc while it holds this one. */
static pthread_mutex_t preplock = PTHREAD_MUTEX_INITIALIZER;
static unw_addr_space_t as;            /* written once, by prepare under preplock */


/* libunwind's own search of one object's table, exported by its generic
 * library but not declared in its headers. */
#if defined(__x86_64__)
#define dw_search_table _Ux86_64_dwarf_search_unwind_table
#elif defined(__aarch64__)
#define dw_search_table _Uaarch64_dwarf_search_unwind_table
#endif
extern int dw_search_table(unw_addr_space_t as, unw_word_t ip, unw_dyn_info_t *di, unw_proc_info_t *pi,
                           int need_unwind_info, void *arg);

static const struct uobj *findobj(const struct utable *t, uintptr_t a)
{
    if (!t)
        return NULL;
    int lo = 0, hi = t->n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a < t->obj[mid].lo)
            hi = mid;
        else if (a >= t->obj[mid].hi)
            lo = mid + 1;
        else
            return &t->obj[mid];
    }
    return NULL;
}

/* load-acquire: the table's contents were written before prepare's
 * store-release of curtable (pairs with it). */
static const struct utable *table(void) { return (const struct utable *)AO_load_acquire(&curtable); }

/* Whether [a, a + n) lies inside one loaded segment: mapped while the
 * object stays loaded. */
static bool insegment(uintptr_t a, size_t n)
{
    const struct uobj *o = findobj(table(), a);
    if (!o)
        return false;
    for (int i = 0; i < o->nseg; i++)
        if (a >= o->seg[i][0] && a + n <= o->seg[i][1] && a + n > a)
            return true;
    return false;
}

static int dw_find_proc_info(unw_addr_space_t as, unw_word_t ip, unw_proc_info_t *pi, int need, void *arg)
{
    const struct uobj *o = findobj(table(), (uintptr_t)ip);
    if (!o || !o->hastable || ip < o->di.start_ip || ip >= o->di.end_ip)
        return -UNW_ENOINFO;
    /* libunwind reads di but does not keep or change it */
    return dw_search_table(as, ip, (unw_dyn_info_t *)&o->di, pi, need, arg);
}

static void dw_put_unwind_info(unw_addr_space_t as, unw_proc_info_t *pi, void *arg)
{
    /* Nothing: dw_search_table's unwind info is libunwind's (its mempool),
     * and libunwind frees it itself. */
    (void)as, (void)pi, (void)arg;
}

static int dw_get_dyn_info_list_addr(unw_addr_space_t as, unw_word_t *addr, void *arg)
{
    (void)as, (void)addr, (void)arg;
    return -UNW_ENOINFO;    /* no JIT registrations in this address space */
}

/* The stack and the objects are read in place; anything else (a CFA
 * computed from a register of a frame that changed meanwhile) through
 * saferead, which fails instead of faulting. */
WEFT_NO_ASAN static int dw_access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write, void *arg)
{
    (void)as;
    const struct dwregs *r = arg;
    uintptr_t a = (uintptr_t)addr;
    if (write)
        return -UNW_EINVAL;     /* a walk never writes */
    if (r->probe && ((a ^ PROBE_SP) < PROBE_WINDOW || (a ^ PROBE_FP) < PROBE_WINDOW)) {
        *val = a | PROBE_TAG;   /* "the word at a" */
        return 0;
    }
    bool onstack = r->lo && a >= r->lo && a + sizeof *val <= r->hi && a + sizeof *val > a;
    if (onstack || insegment(a, sizeof *val)) {
        unw_word_t v;
        /* libunwind reads code bytes at any address */
        memcpy(&v, (const void *)(onstack ? a + (uintptr_t)r->delta : a), sizeof v);
        /* a dead word of the stack is still a word to read */
        VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
        *val = v;
        return 0;
    }
    return saferead(a, val, sizeof *val) ? 0 : -UNW_EINVAL;
}

static int dw_access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val, int write, void *arg)
{
    (void)as;
    struct dwregs *r = arg;
    if (reg < 0 || reg >= DW_NREGS)
        return -UNW_EBADREG;
    if (write)
        r->r[reg] = *val;
    else
        *val = r->r[reg];
    return 0;
}

static int dw_access_fpreg(unw_addr_space_t as, unw_regnum_t reg, unw_fpreg_t *val, int write, void *arg)
{
    (void)as, (void)reg, (void)val, (void)write, (void)arg;
    return -UNW_EBADREG;    /* no floating-point register takes part in finding a frame */
}

static int dw_resume(unw_addr_space_t as, unw_cursor_t *c, void *arg)
{
    (void)as, (void)c, (void)arg;
    return -UNW_EINVAL;     /* walks only look */
}

static int dw_get_proc_name(unw_addr_space_t as, unw_word_t ip, char *buf, size_t len, unw_word_t *off,
                            void *arg)
{
    (void)as, (void)ip, (void)buf, (void)len, (void)off, (void)arg;
    return -UNW_ENOINFO;    /* weft symbolizes by itself (symbolize.c) */
}

/* ---- the object table ---- */

struct scan {
    struct utable *t;           /* NULL: count only */
    int n;
    unsigned long long adds, subs;
};

/* The size of a DW_EH_PE value's encoding, 0 if not a fixed one. */
static size_t ehsize(uint8_t enc)
{
    switch (enc & 0x0f) {
    case 0x00: return sizeof(uintptr_t);    /* absptr */
    case 0x02: case 0x0a: return 2;
    case 0x03: case 0x0b: return 4;
    case 0x04: case 0x0c: return 8;
    default: return 0;
    }
}

/* Fills o from one object's program headers, as libunwind's own
 * dwarf_callback would for a pc inside it. */
static void scanobj(struct dl_phdr_info *info, struct uobj *o)
{
    const ElfW(Phdr) *eh = NULL, *dyn = NULL;
    memset(o, 0, sizeof *o);
    o->lo = UINTPTR_MAX;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && ph->p_memsz) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr, b = a + ph->p_memsz;
            if (o->nseg < OBJ_MAXSEG) {
                o->seg[o->nseg][0] = a;
                o->seg[o->nseg][1] = b;
                o->nseg++;
            }
            o->lo = a < o->lo ? a : o->lo;
            o->hi = b > o->hi ? b : o->hi;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            eh = ph;
        } else if (ph->p_type == PT_DYNAMIC) {
            dyn = ph;
        }
    }
    if (!o->nseg || !eh)
        return;
    /* .eh_frame_hdr: version, eh_frame_ptr_enc, fde_count_enc, table_enc,
     * eh_frame_ptr, fde_count, then the table libunwind can binary-search
     * when it is {sdata4 start, sdata4 fde} relative to the header. */
    const uint8_t *h = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
    size_t ptrsz = ehsize(h[1]), cntsz = ehsize(h[2]);
    if (h[0] != 1 || h[3] != 0x3b || !ptrsz || !cntsz || (h[2] & 0x70) != 0)
        return;
    const uint8_t *p = h + 4 + ptrsz;
    uint64_t count = 0;
    if (cntsz == 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        count = v;
    } else if (cntsz == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        count = v;
    } else {
        memcpy(&count, p, 8);
    }
    p += cntsz;
    o->di.format = UNW_INFO_FORMAT_REMOTE_TABLE;
    o->di.start_ip = o->lo;
    o->di.end_ip = o->hi;
    o->di.u.rti.name_ptr = (unw_word_t)(uintptr_t)info->dlpi_name;
    o->di.u.rti.segbase = (unw_word_t)(uintptr_t)h;
    o->di.u.rti.table_data = (unw_word_t)(uintptr_t)p;
    o->di.u.rti.table_len = count * 8 / sizeof(unw_word_t);    /* 8-byte entries, in words */
    /* Data-relative FDE pointers are relative to the GOT (DT_PLTGOT), as
     * libunwind assumes; a static executable has none (absolute). */
    if (dyn) {
        for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(info->dlpi_addr + dyn->p_vaddr); d->d_tag != DT_NULL; d++)
            if (d->d_tag == DT_PLTGOT) {
                o->di.gp = d->d_un.d_ptr;
                break;
            }
    }
    o->hastable = true;
}

static int scancb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct scan *s = arg;
    if (s->n == 0 && size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        s->adds = info->dlpi_adds;
        s->subs = info->dlpi_subs;
    }
    if (s->t) {
        if (s->n >= s->t->n)
            return 1;   /* loaded between the count and this scan: next prepare */
        scanobj(info, &s->t->obj[s->n]);
        if (!s->t->obj[s->n].nseg)
            return 0;
    }
    s->n++;
    return 0;
}

/* Only the counters: stops at the first object. */
static int countcb(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct scan *s = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        s->adds = info->dlpi_adds;
        s->subs = info->dlpi_subs;
    }
    return 1;
}

static int objcmp(const void *a, const void *b)
{
    const struct uobj *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static unw_accessors_t acc = {
    .find_proc_info = dw_find_proc_info,
    .put_unwind_info = dw_put_unwind_info,
    .get_dyn_info_list_addr = dw_get_dyn_info_list_addr,
    .access_mem = dw_access_mem,
    .access_reg = dw_access_reg,
    .access_fpreg = dw_access_fpreg,
    .resume = dw_resume,
    .get_proc_name = dw_get_proc_name,
};


void weft__unwind_prepare(void)
{
    pthread_mutex_lock(&preplock);
    /* plain store: published by the store-release of curtable below
     * (memo_find's load pairs with it through the table's load-acquire) */
    AO_store(&onvalgrind, RUNNING_ON_VALGRIND ? 1 : 0);
    if (!as) {
        /* Creating the address space also initialises libunwind itself
         * (its locks, mempools, the local address space): here, not in the
         * first signal handler that walks. */
        as = unw_create_addr_space(&acc, 0);
        if (as)
            unw_set_caching_policy(as, UNW_CACHE_GLOBAL);
    }
    const struct utable *old = table();
    struct scan s = { 0 };
    dl_iterate_phdr(countcb, &s);
    if (as && (!old || old->adds != s.adds || old->subs != s.subs)) {
        s = (struct scan){ 0 };
        dl_iterate_phdr(scancb, &s);
        int n = s.n + 8;    /* room for objects loaded between the two scans */
        struct utable *t = calloc(1, sizeof *t + (size_t)n * sizeof t->obj[0]);
        if (t && !(t->rt = calloc(1, sizeof *t->rt))) {
            free(t);
            t = NULL;
        }
        if (t) {
            /* helgrind and DRD check nothing in the recipes, which walks
             * on any thread learn and read with atomics they cannot see
             * (the runtime's weft's own words, race.h); no-ops elsewhere. */
            VALGRIND_HG_DISABLE_CHECKING(t->rt, sizeof *t->rt);
            VALGRIND_DO_CLIENT_REQUEST_STMT(VG_USERREQ__DRD_START_SUPPRESSION, t->rt, sizeof *t->rt, 0, 0, 0);
            t->n = n;
            s = (struct scan){ .t = t };
            dl_iterate_phdr(scancb, &s);
            t->n = s.n;
            t->adds = s.adds;
            t->subs = s.subs;
            qsort(t->obj, (size_t)t->n, sizeof t->obj[0], objcmp);
            t->older = (struct utable *)old;
            /* store-release: publishes the table's contents to walks'
             * load-acquire in table() (pairs with it). */
            AO_store_release(&curtable, (AO_t)t);
            /* Parsed CFI cached for an address that now belongs to
             * another object must go (the new table starts with no
             * recipes). */
            unw_flush_cache(as, 0, 0);
        }
    }
    pthread_mutex_unlock(&preplock);
}

/* ---- recipes ----
 *
 * Almost every frame of compiled code finds its caller the same way at a
 * given pc: the CFA (the caller's stack pointer) is the stack or the
 * frame pointer plus a constant, the return address is at a constant
 * offset from the CFA, and the caller's frame pointer is either saved at
 * another or untouched.  That is the recipe for that pc, packed into one
 * word, which a step follows with two reads and no libunwind at all.
 *
 * A recipe is learned from libunwind itself, by stepping once from a
 * made-up frame: SP = PROBE_SP, FP = PROBE_FP, every other register 0, and
 * every word near those two addresses reads as its own address tagged
 * (probe mode of dw_access_mem).  Where the new SP lands says the CFA's
 * base and offset, the tag the new pc and frame pointer carry says where
 * they were read.  Twice, from two different made-up frames: anything
 * that is not this simple shape (a CFA read from memory, as with stack
 * realignment; a rule on another register; a signal frame, which restores
 * every register from memory) comes out inconsistent or out of range, and
 * such a pc's recipe is SLOW: libunwind steps it, with whatever registers
 * the walk knows.  The walk knows every register at its first frame (a
 * signal context or a switch frame) and only SP, FP and the pc after it,
 * which is all that compiled code's CFI uses to find a frame. */
#define PROBE_SHIFT 0x3000u     /* the second probe's frame, relative to the first */

enum { RC_FAST = 1, RC_END = 2, RC_SLOW = 3 };

/* kind (2 bits) | CFA from FP (bit 2) | FP untouched (bit 3) | CFA offset
 * (bits 16-31) | return address offset from the CFA (32-47) | saved FP
 * offset from the CFA (48-63), all signed 16-bit. */
#define RC(kind, fromfp, fpsame, cfa, ra, fp)                                                            \
    ((AO_t)(kind) | (AO_t)(fromfp) << 2 | (AO_t)(fpsame) << 3 | (AO_t)(uint16_t)(cfa) << 16 |           \
     (AO_t)(uint16_t)(ra) << 32 | (AO_t)(uint16_t)(fp) << 48)
#define RC_KIND(rc) ((int)((rc) & 3))
#define RC_FROMFP(rc) (((rc) >> 2) & 1)
#define RC_FPSAME(rc) (((rc) >> 3) & 1)
#define RC_CFA(rc) ((intptr_t)(int16_t)((rc) >> 16))
#define RC_RA(rc) ((intptr_t)(int16_t)((rc) >> 32))
#define RC_FP(rc) ((intptr_t)(int16_t)((rc) >> 48))

/* Whether v - base fits a recipe's signed 16-bit offset; *off = it. */
static bool near(uint64_t v, uint64_t base, intptr_t *off)
{
    int64_t d = (int64_t)(v - base);
    if (d < -32768 || d > 32767)
        return false;
    *off = (intptr_t)d;
    return true;
}

/* One made-up step at pc from SP = sp, FP = fp: its recipe, or RC_SLOW. */
static AO_t probe1(struct dwwalk *w, uintptr_t pc, uint64_t sp, uint64_t fp)
{
    struct dwregs r = { .probe = true };
    r.r[DW_PC] = pc;
    r.r[DW_SP] = sp;
    r.r[DW_FP] = fp;
    if (unw_init_remote(&w->cur, as, &r) < 0)
        return RC_SLOW;
    int ret = unw_step(&w->cur);
    if (ret == 0)
        return RC_END;      /* the outermost frame: its return address is undefined */
    unw_word_t nsp, npc, nfp;
    if (ret < 0 || unw_get_reg(&w->cur, UNW_REG_SP, &nsp) < 0 || unw_get_reg(&w->cur, UNW_REG_IP, &npc) < 0 ||
        unw_get_reg(&w->cur, DW_FP, &nfp) < 0)
        return RC_SLOW;
    intptr_t cfa, ra, fpoff = 0;
    bool fromfp;
    if (near(nsp, sp, &cfa))
        fromfp = false;
    else if (near(nsp, fp, &cfa))
        fromfp = true;
    else
        return RC_SLOW;
    if (!(npc & PROBE_TAG) || !near(npc & ~PROBE_TAG, nsp, &ra))
        return RC_SLOW;     /* the return address is not in this frame's memory */
    bool fpsame = nfp == fp;
    if (!fpsame && (!(nfp & PROBE_TAG) || !near(nfp & ~PROBE_TAG, nsp, &fpoff)))
        return RC_SLOW;
    return RC(RC_FAST, fromfp, fpsame, cfa, ra, fpoff);
}

static AO_t probe(struct dwwalk *w, uintptr_t pc)
{
#if defined(__x86_64__)
    AO_t a = probe1(w, pc, PROBE_SP, PROBE_FP);
    AO_t b = probe1(w, pc, PROBE_SP + PROBE_SHIFT, PROBE_FP + 2 * PROBE_SHIFT);
    return a == b ? a : RC_SLOW;
#else
    /* AArch64: the return address may live in x30, which a recipe does
     * not describe; libunwind steps every frame. */
    (void)w, (void)pc;
    return RC_SLOW;
#endif
}

/* pc's entry in rt: the one that holds pc, or else the free one where pc
 * would go (*key is then 0); NULL when pc's neighbourhood is full. */
static struct rentry *rfind(struct rtab *rt, uintptr_t pc, AO_t *key)
{
    uint32_t h = (uint32_t)(((uint64_t)pc * 0x9E3779B97F4A7C15ull) >> (64 - RTAB_BITS));
    for (uint32_t i = 0; i < 16; i++) {
        struct rentry *e = &rt->e[(h + i) & (RTAB_SIZE - 1)];
        /* load-acquire of the key, before its recipe's: pairs with the
         * store-release of the recipe in recipe() (a recipe of 0 is one
         * still being learned). */
        *key = AO_load_acquire(&e->pc);
        if (*key == pc || *key == 0)
            return e;
    }
    return NULL;
}

/* pc's recipe if it is known, else 0: a lookup that never learns. */
static AO_t known_recipe(struct rtab *rt, uintptr_t pc)
{
    AO_t key;
    struct rentry *e = rfind(rt, pc, &key);
    /* load-acquire: pairs with recipe()'s store-release of it */
    return e && key == pc ? AO_load_acquire(&e->rc) : 0;
}

/* pc's recipe, learned now if nobody has yet. */
static AO_t recipe(const struct utable *t, struct dwwalk *w, uintptr_t pc)
{
    AO_t key;
    struct rentry *e = rfind(t->rt, pc, &key);
    if (!e)
        return probe(w, pc);    /* a crowded neighbourhood: not kept */
    if (key == pc) {
        /* load-acquire: pairs with the store-release below */
        AO_t rc = AO_load_acquire(&e->rc);
        return rc ? rc : probe(w, pc);  /* 0: still being learned: learn it again, the result is the same */
    }
    AO_t rc = probe(w, pc);
    /* CAS-full 0 -> pc: the entry is ours, or someone else's for the same
     * or another pc (then keep looking next time). */
    if (AO_compare_and_swap_full(&e->pc, 0, pc))
        AO_store_release(&e->rc, rc);   /* publishes the recipe (pairs with the load-acquires above and in known_recipe) */
    return rc;
}

/* Reads the word at a for a walk of r's stack: as dw_access_mem. */
WEFT_NO_ASAN static bool rdword(const struct dwregs *r, uintptr_t a, uintptr_t *v)
{
    unw_word_t w;
    if (dw_access_mem(as, a, &w, 0, (void *)r) < 0)
        return false;
    *v = (uintptr_t)w;
    return true;
}

void weft__unwind_fini(void)
{
    pthread_mutex_lock(&preplock);
    struct utable *t = (struct utable *)table();
    AO_store_release(&curtable, 0);     /* as prepare's */
    while (t) {
        struct utable *older = t->older;
        free(t->rt);
        free(t);
        t = older;
    }
    if (as)
        unw_destroy_addr_space(as);
    as = NULL;
    pthread_mutex_unlock(&preplock);
}

/* Starts a DWARF walk from r (r->r[DW_PC] the first pc: exact, or a
 * return address when !exact).  False when no DWARF walk is possible:
 * the caller walks frame pointers. */
static bool dwinit(weft__unwinder *u, const struct dwregs *r, bool exact)
{
    struct dwwalk *w = (struct dwwalk *)u->dw;
    /* as needs no ordering of its own: prepare stores it, under preplock,
     * before the store-release of curtable that table() load-acquires. */
    if (!table() || !as || !r->r[DW_PC])
        return false;
    w->regs = *r;
    w->regs.probe = false;
    w->others = true;
    uintptr_t pc = (uintptr_t)r->r[DW_PC];
    /* libunwind treats the pc it starts from as exact: a return address
     * would find the CFI row after the call (and, after a call that does
     * not return, the next function's).  The call instruction's row is
     * the one in effect at pc - 1; the walk still reports pc itself. */
    if (!exact)
        w->regs.r[DW_PC] = pc - 1;
    u->dwarf = 1;
    /* Unknown bounds: reads go through saferead (regs.lo is 0), and the
     * walk ends within 8 MiB, as a frame-pointer walk would. */
    uintptr_t sp = (uintptr_t)r->r[DW_SP];
    u->lo = r->lo ? r->lo : sp;
    u->hi = r->lo ? r->hi : sp + UNKNOWN_STACK;
    u->delta = r->delta;
    u->fp = 0;
    u->pc[0] = pc;
    u->pc[1] = 0;
    u->npc = 1;
    return true;
}

/* The next frame's pc: a return address, or 0 at the end.  The walk ends
 * where libunwind finds no caller (the outermost frame's CFI says the
 * return address is undefined: weft's goroutine entry, _start, a thread's
 * start), and wherever the stack pointer would not climb inside the
 * stack, which bounds a walk over a stack that changes underneath it. */
WEFT_NO_ASAN static uintptr_t dwnext(weft__unwinder *u)
{
    struct dwwalk *w = (struct dwwalk *)u->dw;
    const struct utable *t = table();
    if (!u->dwarf || !t)
        return 0;
    struct dwregs *r = &w->regs;
    uintptr_t pc = (uintptr_t)r->r[DW_PC], sp = (uintptr_t)r->r[DW_SP], fp = (uintptr_t)r->r[DW_FP];
    uintptr_t nsp = 0, npc = 0, nfp = fp;
    AO_t rc = recipe(t, w, pc);
    bool ok = false, exact = false;
    if (RC_KIND(rc) == RC_FAST) {
        nsp = (RC_FROMFP(rc) ? fp : sp) + (uintptr_t)RC_CFA(rc);
        ok = rdword(r, nsp + (uintptr_t)RC_RA(rc), &npc) &&
             (RC_FPSAME(rc) || rdword(r, nsp + (uintptr_t)RC_FP(rc), &nfp));
    } else if (RC_KIND(rc) == RC_SLOW) {
        unw_word_t a = 0, b = 0, c = 0;
        if (unw_init_remote(&w->cur, as, r) >= 0) {
            /* Past a signal frame (the handler's return trampoline) the
             * next pc is where the signal interrupted: exact, not a
             * return address. */
            exact = unw_is_signal_frame(&w->cur) > 0;
            ok = unw_step(&w->cur) > 0 && unw_get_reg(&w->cur, UNW_REG_IP, &a) >= 0 &&
                 unw_get_reg(&w->cur, UNW_REG_SP, &b) >= 0 && unw_get_reg(&w->cur, DW_FP, &c) >= 0;
        }
        npc = (uintptr_t)a, nsp = (uintptr_t)b, nfp = (uintptr_t)c;
    }
    if (!ok || npc == 0 || nsp <= sp || nsp > u->hi) {
        u->dwarf = 0;   /* ended: every later next returns 0 (fp is 0) */
        return 0;
    }
    /* The caller's frame: only these three registers are known now.  (The
     * others are cleared once: a memset per step was half its cost.) */
    if (w->others) {
        for (int i = 0; i < DW_NREGS; i++)
            r->r[i] = 0;
        w->others = false;
    }
    r->r[DW_PC] = exact ? npc : npc - 1;    /* a return address: look up the call */
    r->r[DW_SP] = nsp;
    r->r[DW_FP] = nfp;
    return npc;
}

/* Notes that the walk being remembered in m (if any) read v at a below
 * the stack's top hi: a return address, or a frame pointer when isfp. */
static inline void memo_read(struct memo *m, uintptr_t hi, uintptr_t a, uintptr_t v, bool isfp)
{
    if (!m)
        return;
    int *np = isfp ? &m->nfp : &m->nra;
    if (*np >= MEMO_FRAMES) {
        *np = MEMO_FRAMES + 1;
        return;
    }
    uintptr_t off = hi - a;
    (isfp ? m->fpoff : m->raoff)[*np] = (uint32_t)off;
    (isfp ? m->fp : m->ra)[*np] = isfp ? hi - v : v;
    ++*np;
    if (off > m->deep)
        m->deep = off;
}

/* The object table fastwalk steps with now (memos are for one table). */
static const void *walktable(void) { return table(); }

/* weft__callers' walk of its own stack [lo, hi) (see there), from the
 * frame at return address *pc whose caller's stack pointer is *sp and
 * frame pointer *fp: appends each frame's pc to pcs[*n..max) (once *skip
 * are dropped) and steps it by its recipe alone, reading only inside the
 * stack.  True when the walk is done (it ended as dwnext would end it, or
 * max pcs); false at a frame it cannot step so (no recipe learned yet, a
 * SLOW one, a read outside the stack): *pc, *sp and *fp are then that
 * frame, not yet appended, for dwnext.  Every word read is noted in rec
 * (when not NULL). */
WEFT_NO_ASAN static bool fastwalk(uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, uintptr_t lo, uintptr_t hi,
                                  int *skip, uintptr_t *pcs, int *n, int max, struct memo *rec)
{
    const struct utable *t = table();
    if (!t)
        return false;
    uintptr_t p = *pc, s = *sp, f = *fp, last = hi - sizeof(uintptr_t);
    while (*n < max) {
        AO_t rc = known_recipe(t->rt, p - 1);   /* a return address: look up the call */
        uintptr_t nsp = 0, npc = 0, nfp = f;
        if (RC_KIND(rc) == RC_FAST) {
            nsp = (RC_FROMFP(rc) ? f : s) + (uintptr_t)RC_CFA(rc);
            uintptr_t ra = nsp + (uintptr_t)RC_RA(rc), sfp = nsp + (uintptr_t)RC_FP(rc);
            if (ra < lo || ra > last || (!RC_FPSAME(rc) && (sfp < lo || sfp > last)))
                break;
            npc = *(const uintptr_t *)ra;
            memo_read(rec, hi, ra, npc, false);
            if (!RC_FPSAME(rc)) {
                nfp = *(const uintptr_t *)sfp;
                memo_read(rec, hi, sfp, nfp, true);
            }
        } else if (RC_KIND(rc) != RC_END) {
            break;
        }
        if (*skip > 0)
            (*skip)--;
        else
            pcs[(*n)++] = p;
        if (RC_KIND(rc) == RC_END || npc == 0 || nsp <= s || nsp > hi)
            return true;
        p = npc, s = nsp, f = nfp;
    }
    *pc = p, *sp = s, *fp = f;
    return *n >= max;
}

static bool dwinit_sigctx(weft__unwinder *u, const ucontext_t *uc, uintptr_t pc, uintptr_t lo, uintptr_t hi)
{
    struct dwregs r = { .lo = lo, .hi = hi };
#if defined(__x86_64__)
    static const int gregs[16] = {
        REG_RAX, REG_RDX, REG_RCX, REG_RBX, REG_RSI, REG_RDI, REG_RBP, REG_RSP,
        REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
    };
    for (int i = 0; i < 16; i++)
        r.r[i] = (unw_word_t)uc->uc_mcontext.gregs[gregs[i]];
#else
    for (int i = 0; i < 31; i++)
        r.r[i] = (unw_word_t)uc->uc_mcontext.regs[i];
    r.r[DW_SP] = (unw_word_t)uc->uc_mcontext.sp;
#endif
    r.r[DW_PC] = pc;
    if (lo && !inside((uintptr_t)r.r[DW_SP], lo, hi))
        return false;   /* not on the stack the caller thinks: frame pointers, bounded */
    return dwinit(u, &r, true);
}

#else   /* no libunwind: frame pointers only */

void weft__unwind_prepare(void) {}
void weft__unwind_fini(void) {}

static uintptr_t dwnext(weft__unwinder *u)
{
    (void)u;
    return 0;
}

static bool dwinit_sigctx(weft__unwinder *u, const ucontext_t *uc, uintptr_t pc, uintptr_t lo, uintptr_t hi)
{
    (void)u, (void)uc, (void)pc, (void)lo, (void)hi;
    return false;
}

static const void *walktable(void) { return NULL; }    /* no memo is ever made */

static bool fastwalk(uintptr_t *pc, uintptr_t *sp, uintptr_t *fp, uintptr_t lo, uintptr_t hi, int *skip,
                     uintptr_t *pcs, int *n, int max, struct memo *rec)
{
    (void)pc, (void)sp, (void)fp, (void)lo, (void)hi, (void)skip, (void)pcs, (void)n, (void)max, (void)rec;
    return false;   /* frame pointers are cheap already: weft__unwind_next */
}

#endif

void weft__unwind_init_regs(weft__unwinder *u, uintptr_t pc, uintptr_t sp, uintptr_t fp, uintptr_t lo,
                            uintptr_t hi)
{
#if WEFT_HAVE_LIBUNWIND
    struct dwregs r = { .lo = lo, .hi = hi };
    r.r[DW_PC] = pc;
    r.r[DW_SP] = sp;
    r.r[DW_FP] = fp;
    if (pc && sp && (!lo || inside(sp, lo, hi + 1)) && dwinit(u, &r, false))
        return;
#else
    (void)sp;
#endif
    weft__unwind_init(u, pc, fp, lo, hi);
}

WEFT_NO_ASAN void weft__unwind_init_ctx(weft__unwinder *u, uintptr_t sp, uintptr_t lo, uintptr_t hi,
                                        uintptr_t copy)
{
    uintptr_t pc, fp;
    /* A compacted stack: only [sp, hi) is live, and it is read in its copy. */
    intptr_t delta = copy ? (intptr_t)(copy - sp) : 0;
    if (copy)
        lo = sp;
    weft__ctx_frame((void *)(sp + (uintptr_t)delta), &pc, &fp);
#if WEFT_HAVE_LIBUNWIND
    /* Every register the switch saved, at the offsets switch.h lists
     * (DWARF numbers; the floating-point ones play no part in finding
     * frames). */
    static const struct { int reg, off; } saved[] = { WEFT_CTX_REGS };
    struct dwregs r = { .lo = lo, .hi = hi, .delta = delta };
    for (size_t i = 0; i < sizeof saved / sizeof saved[0]; i++)
        if (saved[i].reg < DW_NREGS)
            r.r[saved[i].reg] = *(const unw_word_t *)(sp + (uintptr_t)delta + (uintptr_t)saved[i].off);
    r.r[DW_PC] = pc;
    r.r[DW_SP] = sp + WEFT_CTX_FRAME;
    if (pc && dwinit(u, &r, false))
        return;
#endif
    weft__unwind_init(u, pc, fp, lo, hi);
    u->delta = delta;
}

void weft__unwind_alias(weft__unwinder *u, uintptr_t sp, uintptr_t copy)
{
    if (!copy || u->dwarf)
        return;
    u->lo = sp;
    u->delta = (intptr_t)(copy - sp);
}

/* ---- from the running code --------------------------------------------------------- */

WEFT_NO_ASAN __attribute__((noinline)) void weft__unwind_init_self(weft__unwinder *u, int skip,
                                                                   uintptr_t lo, uintptr_t hi)
{
    /* Our own frame record: the return address into our caller, and our
     * caller's record, which stays valid after we return (our caller is
     * still running); our CFA is the stack pointer our caller has after
     * the call. */
    uintptr_t *fp = __builtin_frame_address(0);
    if (!inside((uintptr_t)fp, lo, hi))
        lo = hi = 0;
    weft__unwind_init_regs(u, fp[1], (uintptr_t)__builtin_dwarf_cfa(), fp[0], lo, hi);
    while (skip-- > 0 && weft__unwind_next(u))
        ;
}

/* The walk of a memo in m that matches a walk starting at pc, sp, fp on
 * [lo, hi) with skip and max: its pcs, or NULL. */
WEFT_NO_ASAN static struct memo *memo_find(struct memo *m, const void *t, uintptr_t pc, uintptr_t sp,
                                           uintptr_t fp, uintptr_t lo, uintptr_t hi, int skip, int max)
{
    if (m->table != t || !t || m->pc0 != pc || m->sp0 != hi - sp || m->fp0 != hi - fp || m->skip != skip ||
        m->max != max || m->deep > hi - lo)
        return NULL;
    /* Every word is inside the stack (deep <= hi - lo).  The deepest
     * first: two goroutines at one place differ at the bottom of their
     * stacks (their functions), while two places of one goroutine mostly
     * differ where the walk starts already.  Under valgrind each word is
     * copied and declared defined first: a dead word is still a word to
     * compare (a plain load of the flag: it was stored before the
     * store-release of the table t came from, and t's load-acquire pairs
     * with that). */
    if (AO_load(&onvalgrind)) {
        for (int i = m->nra - 1; i >= 0; i--) {
            uintptr_t v = *(const uintptr_t *)(hi - m->raoff[i]);
            VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
            if (v != m->ra[i])
                return NULL;
        }
        for (int i = m->nfp - 1; i >= 0; i--) {
            uintptr_t v = *(const uintptr_t *)(hi - m->fpoff[i]);
            VALGRIND_MAKE_MEM_DEFINED(&v, sizeof v);
            if (hi - v != m->fp[i])
                return NULL;
        }
        return m;
    }
    for (int i = m->nra - 1; i >= 0; i--)
        if (*(const uintptr_t *)(hi - m->raoff[i]) != m->ra[i])
            return NULL;
    for (int i = m->nfp - 1; i >= 0; i--)
        if (hi - *(const uintptr_t *)(hi - m->fpoff[i]) != m->fp[i])
            return NULL;
    return m;
}

/* The tracer takes a stack per event (and spawn one per goroutine with
 * ancestry tracebacks), so this walk is the hot one.  It walks the
 * running thread's own stack, which cannot change under it.  First the
 * memos (above): the same walk made before returns its pcs.  Else, while
 * every pc's recipe is known and FAST and every word it reads is inside
 * [lo, hi), it steps by the recipes alone (fastwalk), with no
 * weft__unwinder (a libunwind cursor's 1 KiB) to set up and no accessor
 * calls, about a tenth of a dwnext step, and remembers the walk; at the
 * first frame that is not that simple it hands the rest of the walk to
 * weft__unwind_next, from that frame's registers (which learns its
 * recipe for the next walk).  Both step a frame by the same recipe and
 * end the walk on the same conditions, so the pcs are the ones
 * weft__unwind_init_self's walk returns.  This is the walk of
 * weft__callers and weft__callers_tagged, from the frame record f of the
 * one called (its return address f[1]) and its CFA sp. */
WEFT_NO_ASAN static inline __attribute__((always_inline)) int callers(uintptr_t *f, uintptr_t sp, int skip,
                                                                     uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
                                                                     int max, uint32_t key, uint64_t **slot)
{
    uintptr_t pc = f[1], fp = f[0];
    if (slot)
        *slot = NULL;
    if (!inside((uintptr_t)f, lo, hi))
        lo = hi = 0;
    int n = 0;
    const void *t = lo ? walktable() : NULL;
    if (t) {    /* else no recipes to walk by: weft__unwind_next */
        struct memo *rec;
        unsigned set = (unsigned)(((pc ^ (hi - sp)) * 0x9E3779B97F4A7C15ull) >> 61) % MEMO_SETS;
        for (int w = 0; w < MEMO_WAYS; w++) {
            struct memo *m = memo_find(&memos[set][w], t, pc, sp, fp, lo, hi, skip, max);
            if (m) {
                memonext[set] = (uint8_t)(w ^ 1);   /* keep this one */
                if (slot) {
                    *slot = &m->tag;
                    if (key && m->tag >> 32 == key)
                        return WEFT__CALLERS_TAGGED;
                }
                for (int i = 0; i < m->n; i++)
                    pcs[i] = m->pcs[i];
                return m->n;
            }
        }
        rec = &memos[set][memonext[set]];
        memonext[set] ^= 1;
        *rec = (struct memo){ .pc0 = pc, .sp0 = hi - sp, .fp0 = hi - fp, .skip = skip, .max = max };
        if (fastwalk(&pc, &sp, &fp, lo, hi, &skip, pcs, &n, max, rec)) {
            if (rec->nra <= MEMO_FRAMES && rec->nfp <= MEMO_FRAMES && n <= MEMO_FRAMES) {
                memcpy(rec->pcs, pcs, (size_t)n * sizeof *pcs);
                rec->n = n;
                rec->table = t;     /* complete: usable */
                if (slot)
                    *slot = &rec->tag;
            }
            return n;
        }
    }
    /* the rest from the frame the recipes could not step (pc, not yet
     * in pcs) */
    weft__unwinder u;
    weft__unwind_init_regs(&u, pc, sp, fp, lo, hi);
    while (n < max && (pc = weft__unwind_next(&u)) != 0) {
        if (skip > 0)
            skip--;
        else
            pcs[n++] = pc;
    }
    return n;
}

WEFT_NO_ASAN __attribute__((noinline)) int weft__callers(int skip, uintptr_t lo, uintptr_t hi, uintptr_t *pcs,
                                                         int max)
{
    /* As weft__unwind_init_self: our own frame record and CFA. */
    return callers(__builtin_frame_address(0), (uintptr_t)__builtin_dwarf_cfa(), skip, lo, hi, pcs, max, 0,
                   NULL);
}

WEFT_NO_ASAN __attribute__((noinline)) int weft__callers_tagged(int skip, uintptr_t lo, uintptr_t hi,
                                                                uintptr_t *pcs, int max, uint32_t key,
                                                                uint64_t **slot)
{
    return callers(__builtin_frame_address(0), (uintptr_t)__builtin_dwarf_cfa(), skip, lo, hi, pcs, max, key,
                   slot);
}

/* ---- from a signal context ------------------------------------------------------------ */

void weft__sigctx(const void *uctx, uintptr_t *pc, uintptr_t *fp)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
#error "weft: no signal context accessors for this architecture"
#endif
}

uintptr_t weft__sigctx_sp(const void *uctx)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#else
    return (uintptr_t)uc->uc_mcontext.sp;
#endif
}

/* Where the return address is when pc is in a function's prologue or
 * epilogue, before its frame record exists or after it is gone (then the
 * frame pointer still names the caller's frame, and the walk would skip
 * the caller): an offset from SP, or -1 when the frame record is in place.
 * x86-64: at endbr64 / push %rbp (entry), mov %rsp,%rbp (after the push),
 * ret (after pop %rbp).  AArch64: at stp x29, x30, [sp, #-n]! (entry) or
 * ret, where the link register holds it (-2). */
static int retaddr_at(uintptr_t pc)
{
#if defined(__x86_64__)
    const uint8_t *i = (const uint8_t *)pc;
    if (i[0] == 0x55 || i[0] == 0xc3 || (i[0] == 0xf3 && i[1] == 0x0f && i[2] == 0x1e && i[3] == 0xfa))
        return 0;
    if (i[0] == 0x48 && i[1] == 0x89 && i[2] == 0xe5)
        return 8;
#elif defined(__aarch64__)
    uint32_t i = *(const uint32_t *)pc;
    if ((i & 0xffc07fffu) == 0xa9807bfdu || i == 0xd65f03c0u)
        return -2;
#endif
    return -1;
}

/* A leaf function without a frame record (GCC omits it in leaves even
 * with -fno-omit-frame-pointer): the frame pointer still names its
 * caller's frame, so the walk would skip the caller.  ret is the return
 * address the leaf would have (x86-64: [sp]; AArch64: the link register);
 * believe it when the instruction before it is a direct call to a function
 * that starts at most 64 KiB before pc. */
static int leafcall(uintptr_t ret, uintptr_t pc)
{
#if defined(__x86_64__)
    uint8_t ins[5];
    if (ret < 5 || !saferead(ret - 5, ins, 5) || ins[0] != 0xe8)
        return 0;
    int32_t rel;
    memcpy(&rel, ins + 1, 4);
    uintptr_t target = ret + (uintptr_t)(intptr_t)rel;
#elif defined(__aarch64__)
    uint32_t ins;
    if (ret < 4 || !saferead(ret - 4, &ins, 4) || (ins & 0xfc000000u) != 0x94000000u)
        return 0;
    int64_t imm = (int64_t)((ins & 0x03ffffffu) << 6) >> 4;    /* imm26 * 4, sign-extended */
    uintptr_t target = ret - 4 + (uintptr_t)imm;
#endif
    return target <= pc && pc - target < 65536;
}

WEFT_NO_ASAN void weft__unwind_init_sigctx(weft__unwinder *u, const void *uctx, uintptr_t lo, uintptr_t hi)
{
    const ucontext_t *uc = uctx;
    uintptr_t pc, fp;
    weft__sigctx(uctx, &pc, &fp);
    if (pc && dwinit_sigctx(u, uc, pc, lo, hi))
        return;
    weft__unwind_init(u, pc, fp, lo, hi);
    if (!pc)
        return;
    int off = retaddr_at(pc);
    uintptr_t ret = 0;
#if defined(__x86_64__)
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    if (off >= 0 && inside(sp + (uintptr_t)off, lo, hi)) {
        ret = *(const uintptr_t *)(sp + (uintptr_t)off);
    } else if (off == -1 && inside(sp, lo, hi)) {
        /* the word at SP may be anything (it is only a guess until
         * leafcall has checked it): tell valgrind we know */
        uintptr_t cand = *(const uintptr_t *)sp;
        VALGRIND_MAKE_MEM_DEFINED(&cand, sizeof cand);
        if (leafcall(cand, pc))
            ret = cand;
    }
#else
    uintptr_t lr = (uintptr_t)uc->uc_mcontext.regs[30];
    if (off != -1 || leafcall(lr, pc))
        ret = lr;
#endif
    if (ret) {
        /* the caller's frame record is what fp names: continue from there */
        u->pc[1] = ret;
        u->npc = 2;
    }
}
