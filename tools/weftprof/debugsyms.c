/*
 * debugsyms.c — .symtab from /usr/lib/debug/.build-id/ (debugsyms.h).
 *
 * Per object, once: read its program headers and GNU build id, open the
 * debug file the build id names, and keep its FUNC symbols sorted by
 * address.  A lookup turns the target address into the object's virtual
 * address through the PT_LOAD segment holding the mapped file offset, then
 * binary-searches for a symbol whose [value, value + size) covers it —
 * sizes matter: the nearest symbol below an address is not its function.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debugsyms.h"

#ifdef WEFTPROF_HAVE_LIBELF

#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

typedef struct dsym {
    uint64_t value, size;
    char *name;
} dsym;

typedef struct dobj {
    char *path;          /* the object as the target maps it */
    GElf_Phdr *loads;    /* its PT_LOAD headers */
    size_t nloads;
    dsym *syms;          /* FUNC symbols of its debug file, by value; NULL if none */
    size_t nsyms;
} dobj;

struct wp_debugsyms {
    dobj *objs;
    size_t nobjs, cap;
};

wp_debugsyms *debugsyms_new(void)
{
    if (elf_version(EV_CURRENT) == EV_NONE)
        return NULL;
    return calloc(1, sizeof(wp_debugsyms));
}

void debugsyms_free(wp_debugsyms *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nobjs; i++) {
        for (size_t j = 0; j < d->objs[i].nsyms; j++)
            free(d->objs[i].syms[j].name);
        free(d->objs[i].syms);
        free(d->objs[i].loads);
        free(d->objs[i].path);
    }
    free(d->objs);
    free(d);
}

/* The object's PT_LOAD headers and build id (hex, into id). */
static bool read_object(const char *path, dobj *o, char *id, size_t idlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    bool ok = false;
    size_t n;
    id[0] = 0;
    if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &n) == 0) {
        o->loads = calloc(n ? n : 1, sizeof *o->loads);
        for (size_t i = 0; o->loads && i < n; i++) {
            GElf_Phdr ph;
            if (!gelf_getphdr(e, (int)i, &ph))
                continue;
            if (ph.p_type == PT_LOAD) {
                o->loads[o->nloads++] = ph;
            } else if (ph.p_type == PT_NOTE && !id[0]) {
                Elf_Data *data = elf_getdata_rawchunk(e, (int64_t)ph.p_offset, ph.p_filesz, ELF_T_NHDR);
                GElf_Nhdr nh;
                size_t off = 0, name_off, desc_off;
                while (data && (off = gelf_getnote(data, off, &nh, &name_off, &desc_off)) > 0) {
                    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                        memcmp((char *)data->d_buf + name_off, "GNU", 4) == 0 &&
                        nh.n_descsz * 2 + 1 <= idlen) {
                        const unsigned char *b = (unsigned char *)data->d_buf + desc_off;
                        for (size_t k = 0; k < nh.n_descsz; k++)
                            snprintf(id + 2 * k, 3, "%02x", b[k]);
                        break;
                    }
                }
            }
        }
        ok = o->loads != NULL;
    }
    if (e)
        elf_end(e);
    close(fd);
    return ok;
}

static int by_value(const void *a, const void *b)
{
    const dsym *x = a, *y = b;
    return x->value < y->value ? -1 : x->value > y->value;
}

/* Every sized FUNC symbol of the debug file for build id. */
static void read_debug_symbols(dobj *o, const char *id)
{
    if (strlen(id) < 3)
        return;
    char path[512];
    snprintf(path, sizeof path, "/usr/lib/debug/.build-id/%.2s/%s.debug", id, id + 2);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    Elf_Scn *scn = NULL;
    while (e && (scn = elf_nextscn(e, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        size_t n = sh.sh_size / sh.sh_entsize;
        o->syms = calloc(n ? n : 1, sizeof *o->syms);
        for (size_t i = 0; data && o->syms && i < n; i++) {
            GElf_Sym s;
            if (!gelf_getsym(data, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_FUNC ||
                s.st_shndx == SHN_UNDEF || s.st_size == 0)
                continue;
            const char *name = elf_strptr(e, sh.sh_link, s.st_name);
            if (!name || !*name || !(o->syms[o->nsyms].name = strdup(name)))
                continue;
            o->syms[o->nsyms].value = s.st_value;
            o->syms[o->nsyms].size = s.st_size;
            o->nsyms++;
        }
        break;
    }
    if (e)
        elf_end(e);
    close(fd);
    if (o->syms)
        qsort(o->syms, o->nsyms, sizeof *o->syms, by_value);
}

static dobj *object(wp_debugsyms *d, const char *path)
{
    for (size_t i = 0; i < d->nobjs; i++)
        if (strcmp(d->objs[i].path, path) == 0)
            return &d->objs[i];
    if (d->nobjs == d->cap) {
        size_t nc = d->cap ? 2 * d->cap : 16;
        dobj *no = realloc(d->objs, nc * sizeof *no);
        if (!no)
            return NULL;
        d->objs = no;
        d->cap = nc;
    }
    dobj *o = &d->objs[d->nobjs];
    memset(o, 0, sizeof *o);
    if (!(o->path = strdup(path)))
        return NULL;
    d->nobjs++;
    char id[128];
    if (read_object(path, o, id, sizeof id))
        read_debug_symbols(o, id);
    return o;
}

bool debugsyms_lookup(wp_debugsyms *d, const char *path, uint64_t mapstart, uint64_t mapoff,
                      uint64_t addr, char *name, size_t len, uint64_t *entry)
{
    dobj *o = d && path[0] == '/' ? object(d, path) : NULL;
    if (!o || !o->nsyms)
        return false;
    uint64_t fileoff = addr - mapstart + mapoff, vaddr = 0;
    bool found = false;
    for (size_t i = 0; i < o->nloads && !found; i++) {
        const GElf_Phdr *ph = &o->loads[i];
        if (fileoff >= ph->p_offset && fileoff < ph->p_offset + ph->p_filesz) {
            vaddr = fileoff - ph->p_offset + ph->p_vaddr;
            found = true;
        }
    }
    if (!found)
        return false;
    /* The last symbol starting at or below vaddr, then back over any
     * nested or overlapping ones for one that covers it. */
    size_t lo = 0, hi = o->nsyms;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->syms[mid].value <= vaddr)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i-- > 0 && lo - i <= 8;) {
        const dsym *s = &o->syms[i];
        if (vaddr >= s->value && vaddr < s->value + s->size) {
            snprintf(name, len, "%s", s->name);
            *entry = addr - (vaddr - s->value);
            return true;
        }
    }
    return false;
}

#else  /* built without libelf */

wp_debugsyms *debugsyms_new(void)
{
    return NULL;
}

void debugsyms_free(wp_debugsyms *d)
{
    (void)d;
}

bool debugsyms_lookup(wp_debugsyms *d, const char *path, uint64_t mapstart, uint64_t mapoff,
                      uint64_t addr, char *name, size_t len, uint64_t *entry)
{
    (void)d, (void)path, (void)mapstart, (void)mapoff, (void)addr, (void)name, (void)len, (void)entry;
    return false;
}

#endif
