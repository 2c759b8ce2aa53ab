/*
 * goroutines.c — the goroutine on each sampled thread (goroutines.h).
 *
 * Finding the descriptor.  libweft exports the object weft_debug_info:
 * it is in libweft.so's dynamic symbol table, and in the symbol table of a
 * program linked with libweft.a.  Each ELF file the target maps is read
 * once (mapped, its .symtab and .dynsym searched); the symbol's address in
 * the target is its value plus the file's load bias, taken from the
 * mapping of the file's first page.  The descriptor read there must carry
 * weft's magic, a version weftprof knows (it reads version 1's fields
 * only) and this machine's pointer size.
 *
 * Reading the runtime.  The thread to label is stopped, and so is every
 * other thread of the sample, so what is read is one state of the
 * runtime: the list of Ms (walked again only when its head changes, or
 * when a thread is not on it while some M has not yet stored its thread
 * id), the M's current G, the G's id.  Each read is a process_vm_readv; a
 * read that fails (a target tearing down its runtime) labels the sample
 * with no goroutine.
 */
#include <elf.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "goroutines.h"
#include "tracer.h"

#define LOOKUP_EVERY_NS (500 * 1000000LL)
#define MAX_MS 65536            /* an M list longer than this is not weft's */
#define MAX_NAMES 65536         /* goroutine names kept */

#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#else
#define HOST_MACHINE EM_NONE
#endif

void goroutines_init(wp_goroutines *g, pid_t pid)
{
    memset(g, 0, sizeof *g);
    g->pid = pid;
}

void goroutines_fini(wp_goroutines *g)
{
    for (int i = 0; i < g->capnames; i++)
        free(g->names[i].name);
    free(g->names);
    for (int i = 0; i < g->nscanned; i++)
        free(g->scanned[i]);
    free(g->scanned);
    free(g->ms);
    memset(g, 0, sizeof *g);
}

void goroutines_exec(wp_goroutines *g)
{
    pid_t pid = g->pid;
    goroutines_fini(g);
    goroutines_init(g, pid);
}

/* ---- the target's memory ----------------------------------------------------- */

static bool readmem(wp_goroutines *g, uint64_t addr, void *buf, size_t len)
{
    struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };
    if (process_vm_readv(g->pid, &local, 1, &remote, 1, 0) == (ssize_t)len)
        return true;
    g->readerrs++;
    return false;
}

/* One field of the struct at addr (the target is this machine's kind,
 * checked with the descriptor: same byte order). */
static bool readfield(wp_goroutines *g, uint64_t addr, weft_debug_field f, uint64_t *v)
{
    *v = 0;
    return f.size <= sizeof *v && readmem(g, addr + f.off, v, f.size);
}

/* ---- finding the descriptor ---------------------------------------------------- */

/* The value of the defined symbol name in the ELF image [base, base + len)
 * and its first PT_LOAD's address; false if absent or the image is not a
 * 64-bit ELF file of this machine. */
static bool elf_symbol(const unsigned char *base, size_t len, const char *name, uint64_t *value,
                       uint64_t *firstload, uint16_t *type)
{
    const Elf64_Ehdr *eh = (const void *)base;
    if (len < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != HOST_MACHINE ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_phentsize != sizeof(Elf64_Phdr) ||
        eh->e_shoff > len || eh->e_shnum > (len - eh->e_shoff) / sizeof(Elf64_Shdr) ||
        eh->e_phoff > len || eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr))
        return false;
    *type = eh->e_type;
    const Elf64_Phdr *ph = (const void *)(base + eh->e_phoff);
    bool haveload = false;
    for (int i = 0; i < eh->e_phnum; i++)
        if (ph[i].p_type == PT_LOAD && (!haveload || ph[i].p_vaddr < *firstload)) {
            *firstload = ph[i].p_vaddr;
            haveload = true;
        }
    if (!haveload)
        return false;
    const Elf64_Shdr *sh = (const void *)(base + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if ((sh[i].sh_type != SHT_SYMTAB && sh[i].sh_type != SHT_DYNSYM) || sh[i].sh_link >= eh->e_shnum)
            continue;
        const Elf64_Shdr *str = &sh[sh[i].sh_link];
        if (sh[i].sh_offset > len || sh[i].sh_size > len - sh[i].sh_offset ||
            str->sh_offset > len || str->sh_size > len - str->sh_offset || str->sh_size == 0)
            continue;
        const Elf64_Sym *sym = (const void *)(base + sh[i].sh_offset);
        const char *strs = (const char *)base + str->sh_offset;
        size_t n = sh[i].sh_size / sizeof *sym, namelen = strlen(name);
        for (size_t k = 0; k < n; k++) {
            if (sym[k].st_shndx == SHN_UNDEF || sym[k].st_name >= str->sh_size - namelen)
                continue;
            if (memcmp(strs + sym[k].st_name, name, namelen + 1) == 0) {
                *value = sym[k].st_value;
                return true;
            }
        }
    }
    return false;
}

/* The address of name in the target if the file path, whose first page
 * is mapped at start, defines it; 0 if not.  The file is opened through
 * /proc/TID/root, so a target in another mount namespace works too. */
static uint64_t symbol_in(pid_t tid, const char *path, uint64_t start, const char *name)
{
    char full[4200];
    snprintf(full, sizeof full, "/proc/%d/root%s", (int)tid, path);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    uint64_t addr = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        void *img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (img != MAP_FAILED) {
            uint64_t value = 0, firstload = 0;
            uint16_t type = 0;
            if (elf_symbol(img, (size_t)st.st_size, name, &value, &firstload, &type)) {
                uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
                addr = type == ET_DYN ? value + start - (firstload & ~(page - 1)) : value;
            }
            munmap(img, (size_t)st.st_size);
        }
    }
    close(fd);
    return addr;
}

/* Reads and checks the descriptor at addr. */
static bool take_descriptor(wp_goroutines *g, uint64_t addr)
{
    /* weftprof reads the fields of version 1 only (the running goroutine
     * of a thread): a target of version 1 or a later one will do, read no
     * further than its size. */
    struct weft_debug_info d;
    memset(&d, 0, sizeof d);
    size_t v1 = offsetof(struct weft_debug_info, frame_regs) + sizeof d.frame_regs;
    if (!readmem(g, addr, &d, v1))
        return false;
    if (memcmp(d.magic, WEFT_DEBUG_MAGIC, sizeof d.magic) != 0 || d.version < 1 ||
        d.version > WEFT_DEBUG_VERSION || d.size < v1 || d.ptrsize != sizeof(void *) ||
        d.arch != HOST_MACHINE)
        return false;
    g->desc = d;
    g->found = true;
    return true;
}

/* Whether file was searched already; if not, notes that it now is. */
static bool scanned(wp_goroutines *g, const char *file)
{
    for (int i = 0; i < g->nscanned; i++)
        if (strcmp(g->scanned[i], file) == 0)
            return true;
    if (g->nscanned == g->capscanned) {
        int nc = g->capscanned ? 2 * g->capscanned : 32;
        char **n = realloc(g->scanned, (size_t)nc * sizeof *n);
        if (!n)
            return false;   /* searched again next time: slower, still right */
        g->scanned = n;
        g->capscanned = nc;
    }
    char *copy = strdup(file);
    if (copy)
        g->scanned[g->nscanned++] = copy;
    return false;
}

void goroutines_lookup(wp_goroutines *g, pid_t tid)
{
    int64_t now = wp_now();
    if (g->found || (g->tried && now - g->tried < LOOKUP_EVERY_NS))
        return;
    g->tried = now;
    char path[64], line[4352];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (!g->found && fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off;
        int pathat = 0;
        if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %n", &lo, &hi, &off, &pathat) != 3 || !pathat)
            continue;
        char *file = line + pathat;
        file[strcspn(file, "\n")] = 0;
        if (file[0] != '/' || off != 0 || scanned(g, file))
            continue;   /* anonymous, [vdso], not the file's first page, or done */
        uint64_t addr = symbol_in(tid, file, lo, "weft_debug_info");
        if (addr)
            take_descriptor(g, addr);
    }
    fclose(f);
}

/* ---- the running goroutine --------------------------------------------------------- */

/* Rebuilds the tid -> M cache from the list whose head is head. */
static void read_ms(wp_goroutines *g, uint64_t head)
{
    g->nms = 0;
    g->allm = head;
    for (uint64_t m = head; m && g->nms < MAX_MS;) {
        uint64_t tid, next;
        if (!readfield(g, m, g->desc.m_tid, &tid) || !readfield(g, m, g->desc.m_alllink, &next))
            return;
        if (g->nms == g->capms) {
            int nc = g->capms ? 2 * g->capms : 16;
            wp_mcache *n = realloc(g->ms, (size_t)nc * sizeof *n);
            if (!n)
                return;
            g->ms = n;
            g->capms = nc;
        }
        g->ms[g->nms++] = (wp_mcache){ (pid_t)tid, m };
        m = next;
    }
}

static uint64_t find_m(const wp_goroutines *g, pid_t tid, bool *unstarted)
{
    *unstarted = false;
    for (int i = 0; i < g->nms; i++) {
        if (g->ms[i].tid == tid)
            return g->ms[i].m;
        *unstarted |= g->ms[i].tid == 0;
    }
    return 0;
}

static uint32_t goidhash(int64_t goid)
{
    uint64_t x = (uint64_t)goid * 0x9e3779b97f4a7c15ULL;
    return (uint32_t)(x >> 32);
}

/* The slot of goid in the names table, or the empty one where it goes. */
static wp_gname *name_slot(const wp_goroutines *g, int64_t goid)
{
    if (!g->capnames)
        return NULL;
    uint32_t mask = (uint32_t)g->capnames - 1;
    for (uint32_t h = goidhash(goid) & mask;; h = (h + 1) & mask)
        if (g->names[h].goid == goid || g->names[h].goid == 0)
            return &g->names[h];
}

/* Notes goid with the name the G at gaddr has, once. */
static void note_name(wp_goroutines *g, int64_t goid, uint64_t gaddr)
{
    wp_gname *s = name_slot(g, goid);
    if (s && s->goid == goid)
        return;
    if (g->nnames >= MAX_NAMES)
        return;
    if ((g->nnames + 1) * 2 > g->capnames) {
        int nc = g->capnames ? 2 * g->capnames : 256;
        wp_gname *n = calloc((size_t)nc, sizeof *n), *old = g->names;
        if (!n)
            return;
        int oldcap = g->capnames;
        g->names = n;
        g->capnames = nc;
        for (int i = 0; i < oldcap; i++)
            if (old[i].goid)
                *name_slot(g, old[i].goid) = old[i];
        free(old);
        s = name_slot(g, goid);
    }
    uint64_t p;
    char buf[64] = "";
    if (readfield(g, gaddr, g->desc.g_name, &p) && p) {
        /* a short read at the end of a mapping: try a shorter one */
        if (!readmem(g, p, buf, sizeof buf - 1) && !readmem(g, p, buf, 16))
            buf[0] = 0;
        buf[sizeof buf - 1] = 0;
    }
    s->goid = goid;
    s->name = buf[0] ? strdup(buf) : NULL;
    g->nnames++;
}

int64_t goroutines_current(wp_goroutines *g, pid_t tid)
{
    if (!g->found)
        return 0;
    uint64_t head;
    if (!readmem(g, g->desc.allm, &head, sizeof head))
        return 0;
    if (head != g->allm)
        read_ms(g, head);
    bool unstarted;
    uint64_t m = find_m(g, tid, &unstarted);
    if (!m && unstarted) {
        read_ms(g, head);   /* an M has stored its tid since */
        m = find_m(g, tid, &unstarted);
    }
    uint64_t curg, exited, goid;
    if (!m || !readfield(g, m, g->desc.m_curg, &curg) || !readfield(g, m, g->desc.m_exited, &exited) ||
        !curg || exited)
        return 0;
    if (!readfield(g, curg, g->desc.g_goid, &goid) || (int64_t)goid <= 0)
        return 0;
    note_name(g, (int64_t)goid, curg);
    return (int64_t)goid;
}

const char *goroutines_name(const wp_goroutines *g, int64_t goid)
{
    wp_gname *s = name_slot(g, goid);
    return s && s->goid == goid ? s->name : NULL;
}
