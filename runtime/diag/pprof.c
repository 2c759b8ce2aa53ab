/*
 * pprof.c — the one profile.proto writer (pprof.h): samples are collected
 * into deduplicated tables, then symbolized, encoded by hand and gzipped.
 *
 * The model, as Go's runtime/pprof profileBuilder (proto.go):
 *
 *   string table   "" first, every string once (hash-indexed)
 *   Location       one per distinct address; the address is the instruction
 *                  itself (a return address minus one, as CallersFrames
 *                  reports it; an exact leaf pc as is), so one call site
 *                  sampled as leaf and as caller is one Location.  Each is
 *                  symbolized exactly once, by the first write that sees it;
 *                  one without a symbol keeps its address only, and its
 *                  Mapping then says has_functions=false so that pprof
 *                  symbolizes that mapping itself from the file.
 *   Function       one per (name, file); system_name = name, start_line 0
 *   Mapping        as added; a Location's mapping is the one containing its
 *                  address (0 if none), found by a linear scan at write time
 *                  (a process has tens of executable mappings)
 *   Sample         one per (stack of Location ids, labels); adding the same
 *                  stack and labels again adds the values
 *
 * Wire format (protobuf; docs/formats.md, profile.proto): each field is a varint key
 * (field << 3 | wiretype) then, for wiretype 0, a base-128 varint (negative
 * int64s take 10 bytes) or, for wiretype 2, a varint length and that many
 * bytes: a string, a nested message, or a packed run of varints (location
 * ids and values are always packed).  Zero scalars are omitted.  Order:
 * sample_type(1) sample(2) mapping(3) location(4) function(5)
 * string_table(6) time_nanos(9) duration_nanos(10) period_type(11)
 * period(12).  Nested messages are encoded into a scratch buffer first so
 * their length is known.  The file is the gzipped message: zlib's deflate
 * at Z_BEST_SPEED (as Go) when WEFT_HAVE_ZLIB, else stored deflate blocks.
 *
 * Not thread-safe: one profile is built by one thread.  No global state.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef WEFT_HAVE_ZLIB
#include <zlib.h>
#endif

#include "nosigpipe.h"
#include "pprof.h"

/* ---- containers -------------------------------------------------------- */

/* Makes room for `more` elements after a[0..n) of capacity cap (grown to
 * twice what is needed).  0 or -ENOMEM, a untouched on failure; memcpy keeps
 * the generic pointer update free of aliasing games. */
#define RESERVE(a, n, cap, more) reserve((void *)&(a), (n), &(cap), (more), sizeof *(a))
static int reserve(void *ap, uint32_t n, uint32_t *cap, uint32_t more, size_t el)
{
    if ((uint64_t)n + more <= *cap)
        return 0;
    uint64_t nc = ((uint64_t)n + more) * 2 < 16 ? 16 : ((uint64_t)n + more) * 2;
    void *a;
    memcpy(&a, ap, sizeof a);
    if (nc > UINT32_MAX || !(a = realloc(a, nc * el)))
        return -ENOMEM;
    memcpy(ap, &a, sizeof a);
    *cap = (uint32_t)nc;
    return 0;
}

/* A hash index over one of the tables below: open addressing with linear
 * probing, grown at half full.  A slot holds the entry's hash and its index
 * plus one (0 = empty); the entries themselves live in the table's array. */
typedef struct {
    uint32_t hash, idx1;
} slot;
typedef struct {
    slot *s;
    uint32_t cap, n; /* cap is 0 or a power of two */
} htab;

typedef struct weft__pprof P_;
typedef bool (*eqfn)(const P_ *p, uint32_t idx, const void *key);

/* Room for one more entry, so that a probe always ends on a slot. */
static int htreserve(htab *t)
{
    if ((uint64_t)(t->n + 1) * 2 <= t->cap)
        return 0;
    uint32_t nc = t->cap ? t->cap * 2 : 64;
    slot *ns = nc > t->cap ? calloc(nc, sizeof *ns) : NULL;
    if (!ns)
        return -ENOMEM;
    for (uint32_t i = 0; i < t->cap; i++) {
        if (!t->s[i].idx1)
            continue;
        uint32_t j = t->s[i].hash & (nc - 1);
        while (ns[j].idx1)
            j = (j + 1) & (nc - 1);
        ns[j] = t->s[i];
    }
    free(t->s);
    t->s = ns;
    t->cap = nc;
    return 0;
}

/* Finds key (hash h): its index + 1, or 0 with *sl the empty slot where it
 * belongs, for htclaim once the entry is appended; or -ENOMEM. */
static int64_t htlookup(const P_ *p, htab *t, uint32_t h, eqfn eq, const void *key, slot **sl)
{
    if (htreserve(t))
        return -ENOMEM;
    for (uint32_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        *sl = &t->s[i];
        if (!(*sl)->idx1 || ((*sl)->hash == h && eq(p, (*sl)->idx1 - 1, key)))
            return (*sl)->idx1;
    }
}

static uint32_t htclaim(htab *t, slot *sl, uint32_t h, uint32_t n)
{
    *sl = (slot){h, n};
    t->n++;
    return n;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdULL;
}

/* ---- the profile ------------------------------------------------------- */

typedef struct {
    uint64_t addr;   /* Location.address: the instruction (see top) */
    uintptr_t pc;    /* as first sampled, for the symbolizer */
    bool isreturn;   /* pc is a return address */
    bool tried;      /* the symbolizer has been asked */
    uint32_t func;   /* Function id, 0 = no symbol */
    int64_t line;    /* Line.line, 0 = unknown */
    uint32_t map;    /* Mapping id, 0 = none (set at each write) */
} ploc;

typedef struct {
    int64_t name, file; /* string indexes */
} pfunc;

typedef struct {
    uint64_t start, limit, offset;
    int64_t file, build_id;         /* string indexes */
    bool nofunc, hasfile, hasline;  /* over its locations, set at each write */
} pmap;

typedef struct {
    uint32_t stk, nstk; /* location ids: p->stk[stk .. stk+nstk) */
    uint32_t vals;      /* values: p->vals[vals .. vals+ntypes) */
    int64_t key[WEFT__PPROF_MAXLABELS], str[WEFT__PPROF_MAXLABELS]; /* label string indexes */
    uint32_t nlabels;
} psample;

struct weft__pprof {
    char **str;         /* string table; str[0] = "" */
    uint32_t nstr, capstr;
    htab strh;
    int ntypes;
    int64_t *types;     /* ntypes (type, unit) string index pairs */
    int64_t ptype, punit, period, time_nanos, duration_nanos;
    ploc *loc;          /* Location id = index + 1 */
    uint32_t nloc, caploc;
    htab loch;
    pfunc *fn;          /* Function id = index + 1 */
    uint32_t nfn, capfn;
    htab fnh;
    pmap *map;          /* Mapping id = index + 1 */
    uint32_t nmap, capmap;
    psample *smp;
    uint32_t nsmp, capsmp;
    htab smph;
    uint64_t *stk;      /* every sample's location ids, back to back */
    uint32_t nstk, capstk;
    int64_t *vals;      /* every sample's values, back to back */
    uint32_t nvals, capvals;
};

static uint32_t strhash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return (uint32_t)(h ^ (h >> 32));
}

static bool streq(const P_ *p, uint32_t i, const void *key) { return strcmp(p->str[i], key) == 0; }

/* The string table index of s (NULL = ""), adding it if new; or -ENOMEM. */
static int64_t intern(P_ *p, const char *s)
{
    if (!s)
        s = "";
    uint32_t h = strhash(s);
    slot *sl;
    int64_t i = htlookup(p, &p->strh, h, streq, s, &sl);
    if (i)
        return i < 0 ? i : i - 1;
    char *d = strdup(s);
    if (!d || RESERVE(p->str, p->nstr, p->capstr, 1)) {
        free(d);
        return -ENOMEM;
    }
    p->str[p->nstr++] = d;
    return htclaim(&p->strh, sl, h, p->nstr) - 1;
}

static bool loceq(const P_ *p, uint32_t i, const void *key) { return p->loc[i].addr == *(const uint64_t *)key; }

/* The Location id of a sampled pc, adding it if new; or -ENOMEM. */
static int64_t locid(P_ *p, uintptr_t pc, bool isreturn)
{
    uint64_t addr = isreturn && pc ? pc - 1 : pc;
    uint32_t h = (uint32_t)mix(0, addr);
    slot *sl;
    int64_t id = htlookup(p, &p->loch, h, loceq, &addr, &sl);
    if (id)
        return id;
    if (RESERVE(p->loc, p->nloc, p->caploc, 1))
        return -ENOMEM;
    p->loc[p->nloc++] = (ploc){.addr = addr, .pc = pc, .isreturn = isreturn};
    return htclaim(&p->loch, sl, h, p->nloc);
}

static bool fneq(const P_ *p, uint32_t i, const void *key)
{
    const pfunc *f = key;
    return p->fn[i].name == f->name && p->fn[i].file == f->file;
}

/* The Function id of (name, file), adding it if new; or -ENOMEM. */
static int64_t fnid(P_ *p, int64_t name, int64_t file)
{
    pfunc f = {name, file};
    uint32_t h = (uint32_t)mix(mix(1, (uint64_t)name), (uint64_t)file);
    slot *sl;
    int64_t id = htlookup(p, &p->fnh, h, fneq, &f, &sl);
    if (id)
        return id;
    if (RESERVE(p->fn, p->nfn, p->capfn, 1))
        return -ENOMEM;
    p->fn[p->nfn++] = f;
    return htclaim(&p->fnh, sl, h, p->nfn);
}

/* key is a candidate psample whose stack is also in p->stk. */
static bool smpeq(const P_ *p, uint32_t i, const void *key)
{
    const psample *k = key, *s = &p->smp[i];
    return s->nstk == k->nstk && s->nlabels == k->nlabels &&
           memcmp(s->key, k->key, k->nlabels * sizeof *k->key) == 0 &&
           memcmp(s->str, k->str, k->nlabels * sizeof *k->str) == 0 &&
           memcmp(p->stk + s->stk, p->stk + k->stk, k->nstk * sizeof *p->stk) == 0;
}

weft__pprof *weft__pprof_new(const weft__pprof_vt *types, int ntypes,
                             weft__pprof_vt period_type, int64_t period)
{
    if (!types || ntypes < 1)
        return NULL;
    P_ *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->types = calloc((size_t)ntypes, 2 * sizeof *p->types);
    if (!p->types || intern(p, "") != 0)
        goto fail;
    p->ntypes = ntypes;
    for (int i = 0; i < ntypes; i++) {
        p->types[2 * i] = intern(p, types[i].type);
        p->types[2 * i + 1] = intern(p, types[i].unit);
        if (p->types[2 * i] < 0 || p->types[2 * i + 1] < 0)
            goto fail;
    }
    p->ptype = intern(p, period_type.type);
    p->punit = intern(p, period_type.unit);
    if (p->ptype < 0 || p->punit < 0)
        goto fail;
    p->period = period;
    return p;
fail:
    weft__pprof_free(p);
    return NULL;
}

void weft__pprof_free(weft__pprof *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nstr; i++)
        free(p->str[i]);
    void *a[] = {p->str, p->strh.s, p->types, p->loc, p->loch.s, p->fn, p->fnh.s,
                 p->map, p->smp, p->smph.s, p->stk, p->vals, p};
    for (size_t i = 0; i < sizeof a / sizeof *a; i++)
        free(a[i]);
}

void weft__pprof_set_time(weft__pprof *p, int64_t time_nanos, int64_t duration_nanos)
{
    if (!p)
        return;
    p->time_nanos = time_nanos;
    p->duration_nanos = duration_nanos;
}

int weft__pprof_add(weft__pprof *p, const uintptr_t *pcs, int npcs, bool leaf_exact,
                    const int64_t *values, const char *label_key, const char *label_str)
{
    if (!label_key != !label_str)
        return -EINVAL;
    weft__pprof_label l = { label_key, label_str };
    return weft__pprof_add_labels(p, pcs, npcs, leaf_exact, values, &l, label_key ? 1 : 0);
}

int weft__pprof_add_labels(weft__pprof *p, const uintptr_t *pcs, int npcs, bool leaf_exact,
                           const int64_t *values, const weft__pprof_label *labels, int nlabels)
{
    if (!p || npcs < 0 || (npcs && !pcs) || !values || nlabels < 0 ||
        nlabels > WEFT__PPROF_MAXLABELS || (nlabels && !labels))
        return -EINVAL;
    psample k = {p->nstk, (uint32_t)npcs, p->nvals, {0}, {0}, (uint32_t)nlabels};
    uint64_t h = 2;
    for (int i = 0; i < nlabels; i++) {
        if (!labels[i].key || !labels[i].str)
            return -EINVAL;
        k.key[i] = intern(p, labels[i].key);
        k.str[i] = intern(p, labels[i].str);
        if (k.key[i] < 0 || k.str[i] < 0)
            return -ENOMEM;
        h = mix(mix(h, (uint64_t)k.key[i]), (uint64_t)k.str[i]);
    }
    /* The location ids go at the tail of p->stk, kept only if the sample
     * is new. */
    if (RESERVE(p->stk, p->nstk, p->capstk, (uint32_t)npcs))
        return -ENOMEM;
    uint64_t *ids = p->stk + p->nstk;
    for (int i = 0; i < npcs; i++) {
        int64_t id = locid(p, pcs[i], !(i == 0 && leaf_exact));
        if (id < 0)
            return (int)id;
        ids[i] = (uint64_t)id;
        h = mix(h, ids[i]);
    }
    slot *sl;
    int64_t old = htlookup(p, &p->smph, (uint32_t)h, smpeq, &k, &sl);
    if (old < 0)
        return (int)old;
    if (old) {
        int64_t *v = p->vals + p->smp[old - 1].vals;
        for (int j = 0; j < p->ntypes; j++) /* wraps rather than overflows */
            v[j] = (int64_t)((uint64_t)v[j] + (uint64_t)values[j]);
        return 0;
    }
    if (RESERVE(p->vals, p->nvals, p->capvals, (uint32_t)p->ntypes) ||
        RESERVE(p->smp, p->nsmp, p->capsmp, 1))
        return -ENOMEM;
    p->smp[p->nsmp++] = k;
    memcpy(p->vals + p->nvals, values, (size_t)p->ntypes * sizeof *values);
    p->nvals += (uint32_t)p->ntypes;
    p->nstk += (uint32_t)npcs;
    htclaim(&p->smph, sl, (uint32_t)h, p->nsmp);
    return 0;
}

int weft__pprof_add_mapping(weft__pprof *p, uint64_t start, uint64_t limit, uint64_t offset,
                            const char *file, const char *build_id)
{
    if (!p || limit < start)
        return -EINVAL;
    int64_t f = intern(p, file), b = intern(p, build_id);
    if (f < 0 || b < 0 || RESERVE(p->map, p->nmap, p->capmap, 1))
        return -ENOMEM;
    p->map[p->nmap++] = (pmap){.start = start, .limit = limit, .offset = offset, .file = f, .build_id = b};
    return 0;
}

/* ---- /proc/PID/maps and GNU build ids ------------------------------------ */

/* Finds the NT_GNU_BUILD_ID note among the notes in b[0..n) (entries
 * padded to align) and writes its descriptor as hex. */
static bool findbuildid(const uint8_t *b, size_t n, size_t align, char *hex, size_t hexsz)
{
    size_t o = 0;
    while (n - o >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nh;
        memcpy(&nh, b + o, sizeof nh);
        size_t name = o + sizeof nh;
        size_t desc = name + (((size_t)nh.n_namesz + align - 1) & ~(align - 1));
        if (desc > n || nh.n_descsz > n - desc)
            return false;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && memcmp(b + name, "GNU", 4) == 0 &&
            nh.n_descsz > 0 && 2 * (size_t)nh.n_descsz < hexsz) {
            for (size_t i = 0; i < nh.n_descsz; i++)
                snprintf(hex + 2 * i, 3, "%02x", b[desc + i]);
            return true;
        }
        o = desc + (((size_t)nh.n_descsz + align - 1) & ~(align - 1));
        if (o > n)
            return false;
    }
    return false;
}

/* The GNU build id of the ELF file at path, from its PT_NOTE segments
 * (64-bit, host byte order).  False if none or unreadable. */
static bool readbuildid(const char *path, char *hex, size_t hexsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    Elf64_Ehdr eh;
    bool ok = false;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? ELFDATA2LSB : ELFDATA2MSB) ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        goto out;
    for (unsigned i = 0; i < eh.e_phnum && !ok; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) != (ssize_t)sizeof ph)
            break;
        if (ph.p_type != PT_NOTE || ph.p_filesz == 0 || ph.p_filesz > 1 << 16)
            continue;
        uint8_t *b = malloc(ph.p_filesz);
        if (b && pread(fd, b, ph.p_filesz, (off_t)ph.p_offset) == (ssize_t)ph.p_filesz)
            ok = findbuildid(b, ph.p_filesz, ph.p_align == 8 ? 8 : 4, hex, hexsz);
        free(b);
    }
out:
    close(fd);
    return ok;
}

int weft__pprof_add_proc_mappings(weft__pprof *p, pid_t pid)
{
    if (!p || pid < 0)
        return -EINVAL;
    char path[64];
    if (pid == 0)
        snprintf(path, sizeof path, "/proc/self/maps");
    else
        snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int err = 0;
    /* start-limit perms offset dev inode   path */
    while (err == 0 && (len = getline(&line, &cap, f)) > 0) {
        unsigned long long start, limit, off;
        char perm[5];
        int pos = 0;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (sscanf(line, "%llx-%llx %4s %llx %*s %*s %n", &start, &limit, perm, &off, &pos) != 4 ||
            pos == 0 || strlen(perm) != 4)
            continue;
        const char *file = line + pos;
        if (perm[0] != 'r' || perm[2] != 'x' || perm[3] != 'p' || file[0] != '/')
            continue;
        char hex[2 * 64 + 1];
        bool id = readbuildid(file, hex, sizeof hex);
        err = weft__pprof_add_mapping(p, start, limit, off, file, id ? hex : NULL);
    }
    if (err == 0 && ferror(f))
        err = -EIO;
    free(line);
    fclose(f);
    return err;
}

/* ---- encoding -------------------------------------------------------------- */

typedef struct {
    uint8_t *b;
    size_t n, cap;
    bool oom; /* a growth failed: the contents are garbage */
} pbuf;

static void put(pbuf *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (n > b->cap - b->n) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc - b->n < n)
            nc *= 2;
        uint8_t *nb = realloc(b->b, nc);
        if (!nb) {
            b->oom = true;
            return;
        }
        b->b = nb;
        b->cap = nc;
    }
    if (n)
        memcpy(b->b + b->n, d, n);
    b->n += n;
}

static void putvarint(pbuf *b, uint64_t v)
{
    uint8_t t[10];
    int i = 0;
    for (; v >= 0x80; v >>= 7)
        t[i++] = (uint8_t)(v | 0x80);
    t[i++] = (uint8_t)v;
    put(b, t, (size_t)i);
}

/* Wiretype 0, omitted when zero (proto3 default). */
static void putint(pbuf *b, int field, uint64_t v)
{
    if (!v)
        return;
    putvarint(b, (uint64_t)field << 3);
    putvarint(b, v);
}

/* Fields 1..n of a message of scalars, v[k] being field k + 1. */
static void putints(pbuf *b, const uint64_t *v, int n)
{
    for (int k = 0; k < n; k++)
        putint(b, k + 1, v[k]);
}

/* Wiretype 2: a string, a message or a packed run. */
static void putbytes(pbuf *b, int field, const void *d, size_t n)
{
    putvarint(b, (uint64_t)field << 3 | 2);
    putvarint(b, n);
    put(b, d, n);
}

/* Appends the message in sub as field of b, and empties sub. */
static void putmsg(pbuf *b, int field, pbuf *sub)
{
    b->oom |= sub->oom;
    putbytes(b, field, sub->b, sub->n);
    sub->n = 0;
}

/* Symbolizes the locations not yet tried and assigns every location its
 * mapping, setting each mapping's flags.  0 or -ENOMEM. */
static int resolve(P_ *p, weft__pprof_symbolizer sym, void *arg)
{
    for (uint32_t i = 0; i < p->nloc; i++) {
        ploc *l = &p->loc[i];
        weft__pprof_sym s = {0};
        if (l->tried)
            continue;
        if (sym && sym(l->pc, l->isreturn, &s, arg) && s.func) {
            int64_t name = intern(p, s.func), file = intern(p, s.file);
            int64_t id = name < 0 || file < 0 ? -ENOMEM : fnid(p, name, file);
            if (id < 0)
                return -ENOMEM;
            l->func = (uint32_t)id;
            l->line = s.line > 0 ? s.line : 0;
        }
        l->tried = true;
    }
    for (uint32_t j = 0; j < p->nmap; j++)
        p->map[j].nofunc = p->map[j].hasfile = p->map[j].hasline = false;
    for (uint32_t i = 0; i < p->nloc; i++) {
        ploc *l = &p->loc[i];
        l->map = 0;
        for (uint32_t j = 0; j < p->nmap && !l->map; j++) {
            pmap *m = &p->map[j];
            if (l->addr < m->start || l->addr >= m->limit)
                continue;
            l->map = j + 1;
            m->nofunc |= !l->func;
            m->hasfile |= l->func && p->fn[l->func - 1].file != 0;
            m->hasline |= l->line > 0;
        }
    }
    return 0;
}

int weft__pprof_encode(weft__pprof *p, weft__pprof_symbolizer sym, void *arg,
                       uint8_t **out, size_t *len)
{
    if (!p || !out || !len)
        return -EINVAL;
    int err = resolve(p, sym, arg);
    if (err)
        return err;
    pbuf b = {0}, m = {0}, k = {0}; /* the profile, a message, a packed run or sub-message */
    for (int i = 0; i < p->ntypes; i++) {
        putints(&m, (uint64_t[]){(uint64_t)p->types[2 * i], (uint64_t)p->types[2 * i + 1]}, 2);
        putmsg(&b, 1, &m);
    }
    for (uint32_t i = 0; i < p->nsmp; i++) {
        const psample *s = &p->smp[i];
        for (uint32_t j = 0; j < s->nstk; j++)
            putvarint(&k, p->stk[s->stk + j]);
        if (s->nstk)
            putmsg(&m, 1, &k);
        for (int j = 0; j < p->ntypes; j++)
            putvarint(&k, (uint64_t)p->vals[s->vals + (uint32_t)j]);
        putmsg(&m, 2, &k);
        for (uint32_t j = 0; j < s->nlabels; j++) {
            putints(&k, (uint64_t[]){(uint64_t)s->key[j], (uint64_t)s->str[j]}, 2);
            putmsg(&m, 3, &k);
        }
        putmsg(&b, 2, &m);
    }
    for (uint32_t i = 0; i < p->nmap; i++) {
        const pmap *mp = &p->map[i];
        putints(&m, (uint64_t[]){i + 1, mp->start, mp->limit, mp->offset, (uint64_t)mp->file,
                                 (uint64_t)mp->build_id, !mp->nofunc, mp->hasfile, mp->hasline}, 9);
        putmsg(&b, 3, &m);
    }
    for (uint32_t i = 0; i < p->nloc; i++) {
        const ploc *l = &p->loc[i];
        putints(&m, (uint64_t[]){i + 1, l->map, l->addr}, 3);
        if (l->func) {
            putints(&k, (uint64_t[]){l->func, (uint64_t)l->line}, 2);
            putmsg(&m, 4, &k);
        }
        putmsg(&b, 4, &m);
    }
    for (uint32_t i = 0; i < p->nfn; i++) {
        const pfunc *f = &p->fn[i]; /* start_line (5) stays 0 */
        putints(&m, (uint64_t[]){i + 1, (uint64_t)f->name, (uint64_t)f->name, (uint64_t)f->file}, 4);
        putmsg(&b, 5, &m);
    }
    for (uint32_t i = 0; i < p->nstr; i++)
        putbytes(&b, 6, p->str[i], strlen(p->str[i]));
    putint(&b, 9, (uint64_t)p->time_nanos);
    putint(&b, 10, (uint64_t)p->duration_nanos);
    putints(&m, (uint64_t[]){(uint64_t)p->ptype, (uint64_t)p->punit}, 2);
    putmsg(&b, 11, &m);
    putint(&b, 12, (uint64_t)p->period);
    free(m.b);
    free(k.b);
    if (b.oom || m.oom || k.oom) {
        free(b.b);
        return -ENOMEM;
    }
    *out = b.b;
    *len = b.n;
    return 0;
}

/* ---- gzip ---------------------------------------------------------------- */

/* RFC 1952 CRC-32, bit by bit: small, and fast enough for a fallback. */
static uint32_t crc32_ieee(const uint8_t *d, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= d[i];
        for (int j = 0; j < 8; j++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* v as nbytes little-endian bytes. */
static uint8_t *putle(uint8_t *o, uint32_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++)
        *o++ = (uint8_t)(v >> (8 * i));
    return o;
}

/* gzip member = 10-byte header, deflate stream, CRC-32, ISIZE.  Here the
 * stream is stored blocks (RFC 1951 §3.2.4): a header byte (BFINAL in bit
 * 0, BTYPE=00), LEN and ~LEN (16-bit little-endian), LEN raw bytes. */
int weft__pprof_gzip_stored(const void *data, size_t n, uint8_t **out, size_t *outlen)
{
    const uint8_t *d = data;
    size_t nblk = n / 65535 + 1;
    if (nblk > (SIZE_MAX - n - 18) / 5)
        return -ENOMEM;
    uint8_t *o = malloc(10 + 5 * nblk + n + 8), *w = o;
    if (!o)
        return -ENOMEM;
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}; /* deflate, no flags/mtime, OS unknown */
    memcpy(w, hdr, sizeof hdr);
    w += sizeof hdr;
    size_t rem = n;
    bool last;
    do {
        uint16_t len = rem > 65535 ? 65535 : (uint16_t)rem;
        last = len == rem;
        *w++ = last;
        w = putle(putle(w, len, 2), (uint16_t)~len, 2);
        memcpy(w, d, len);
        w += len;
        d += len;
        rem -= len;
    } while (!last);
    w = putle(putle(w, crc32_ieee(data, n), 4), (uint32_t)n, 4); /* ISIZE is n mod 2^32 */
    *out = o;
    *outlen = (size_t)(w - o);
    return 0;
}

static int gzip(const uint8_t *d, size_t n, uint8_t **out, size_t *outlen)
{
#ifdef WEFT_HAVE_ZLIB
    /* One deflate call into a buffer of deflateBound bytes, which is
     * always enough; windowBits 15 + 16 asks for the gzip wrapper. */
    z_stream z = {0};
    if (n > UINT_MAX)
        return -EFBIG;
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uLong bound = deflateBound(&z, (uLong)n);
    uint8_t *o = bound <= UINT_MAX ? malloc(bound) : NULL;
    z.next_in = (Bytef *)d;
    z.avail_in = (uInt)n;
    z.next_out = o;
    z.avail_out = (uInt)bound;
    int err = !o ? -ENOMEM : deflate(&z, Z_FINISH) == Z_STREAM_END ? 0 : -EIO;
    *outlen = z.total_out;
    deflateEnd(&z);
    if (err)
        free(o);
    else
        *out = o;
    return err;
#else
    return weft__pprof_gzip_stored(d, n, out, outlen);
#endif
}

int weft__pprof_write(weft__pprof *p, int fd, weft__pprof_symbolizer sym, void *arg)
{
    uint8_t *raw, *gz;
    size_t nraw, ngz;
    int err = weft__pprof_encode(p, sym, arg, &raw, &nraw);
    if (err)
        return err;
    err = gzip(raw, nraw, &gz, &ngz);
    free(raw);
    if (err)
        return err;
    err = weft__writeall(fd, gz, ngz);
    free(gz);
    return err;
}

