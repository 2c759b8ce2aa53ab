/*
 * symbols.c — the address → function name cache (symbols.h).
 *
 * Lookups happen after the target resumes, never while it is stopped: one
 * _UPT_get_proc_name reads /proc/PID/maps, maps the object file and scans its
 * symbol table (tens of microseconds to a millisecond), far more than a
 * warm unwind.  Each distinct address pays that once.
 */
#include <errno.h>
#include <libunwind-ptrace.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debugsyms.h"
#include "symbols.h"

static uint32_t hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

static uint32_t hashstr(const char *p)
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    while (*p)
        h = (h ^ (unsigned char)*p++) * 16777619u;
    return h;
}

/* Grows an index of `slots` entries to hold n + 1 at most half full,
 * rehashing through hashof(position).  0 or -ENOMEM. */
static int grow_index(uint32_t **idx, uint32_t *slots, uint32_t n,
                      uint32_t (*hashof)(const void *, uint32_t), const void *tab)
{
    if ((n + 1) * 2 <= *slots)
        return 0;
    uint32_t ns = *slots ? *slots * 2 : 1024;
    uint32_t *ni = calloc(ns, sizeof *ni);
    if (!ni)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = hashof(tab, i) & (ns - 1);
        while (ni[h])
            h = (h + 1) & (ns - 1);
        ni[h] = i + 1;
    }
    free(*idx);
    *idx = ni;
    *slots = ns;
    return 0;
}

static uint32_t name_hash_at(const void *tab, uint32_t i)
{
    return hashstr(((char *const *)tab)[i]);
}

static uint32_t addr_hash(uint64_t key, int gen)
{
    return hash64(key ^ ((uint64_t)gen << 56));
}

static uint32_t addr_hash_at(const void *tab, uint32_t i)
{
    const wp_addr *a = &((const wp_addr *)tab)[i];
    return addr_hash(a->key, a->gen);
}

void symbols_init(wp_symbols *s)
{
    memset(s, 0, sizeof *s);
    s->debug = debugsyms_new();
}

void symbols_fini(wp_symbols *s)
{
    for (int i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s->names);
    free(s->nameidx);
    free(s->addrs);
    free(s->addridx);
    free(s->pending);
    debugsyms_free(s->debug);
    memset(s, 0, sizeof *s);
}

int symbols_intern(wp_symbols *s, const char *name)
{
    if (s->nameslots) {
        uint32_t h = hashstr(name) & (s->nameslots - 1);
        for (; s->nameidx[h]; h = (h + 1) & (s->nameslots - 1))
            if (strcmp(s->names[s->nameidx[h] - 1], name) == 0)
                return (int)s->nameidx[h] - 1;
    }
    if (s->nnames == s->capnames) {
        int nc = s->capnames ? 2 * s->capnames : 256;
        char **nn = realloc(s->names, (size_t)nc * sizeof *nn);
        if (!nn)
            return -1;
        s->names = nn;
        s->capnames = nc;
    }
    if (grow_index(&s->nameidx, &s->nameslots, (uint32_t)s->nnames, name_hash_at, s->names) < 0)
        return -1;
    char *copy = strdup(name);
    if (!copy)
        return -1;
    int id = s->nnames++;
    s->names[id] = copy;
    uint32_t h = hashstr(name) & (s->nameslots - 1);
    while (s->nameidx[h])
        h = (h + 1) & (s->nameslots - 1);
    s->nameidx[h] = (uint32_t)id + 1;
    return id;
}

const char *symbols_name(const wp_symbols *s, int id)
{
    return id >= 0 && id < s->nnames ? s->names[id] : "?";
}

static wp_addr *lookup(const wp_symbols *s, uint64_t key, int gen)
{
    if (!s->addrslots)
        return NULL;
    for (uint32_t h = addr_hash(key, gen) & (s->addrslots - 1); s->addridx[h];
         h = (h + 1) & (s->addrslots - 1)) {
        wp_addr *a = &s->addrs[s->addridx[h] - 1];
        if (a->key == key && a->gen == gen)
            return a;
    }
    return NULL;
}

const wp_addr *symbols_find(const wp_symbols *s, uint64_t key, int gen)
{
    return lookup(s, key, gen);
}

bool symbols_known(const wp_symbols *s, uint64_t key)
{
    return lookup(s, key, s->gen) != NULL;
}

int symbols_note(wp_symbols *s, uint64_t key, uint64_t fde)
{
    wp_addr *known = lookup(s, key, s->gen);
    if (known) {
        if (!known->fde)
            known->fde = fde;
        return 0;
    }
    if (s->naddrs == s->capaddrs) {
        uint32_t nc = s->capaddrs ? 2 * s->capaddrs : 1024;
        wp_addr *na = realloc(s->addrs, nc * sizeof *na);
        if (!na)
            return -ENOMEM;
        s->addrs = na;
        s->capaddrs = nc;
    }
    if (s->npending == s->cappending) {
        uint32_t nc = s->cappending ? 2 * s->cappending : 256;
        uint32_t *np = realloc(s->pending, nc * sizeof *np);
        if (!np)
            return -ENOMEM;
        s->pending = np;
        s->cappending = nc;
    }
    if (grow_index(&s->addridx, &s->addrslots, s->naddrs, addr_hash_at, s->addrs) < 0)
        return -ENOMEM;
    uint32_t i = s->naddrs++;
    s->addrs[i] = (wp_addr){ .key = key, .gen = s->gen, .func = -1, .entry = 0, .fde = fde };
    uint32_t h = addr_hash(key, s->gen) & (s->addrslots - 1);
    while (s->addridx[h])
        h = (h + 1) & (s->addrslots - 1);
    s->addridx[h] = i + 1;
    s->pending[s->npending++] = i;
    return 0;
}

/* The target's executable mappings, read once per symbols_resolve batch. */
typedef struct mapping {
    uint64_t lo, hi, off;
    char path[256];
} mapping;

typedef struct maps {
    mapping *v;
    size_t n, cap;
    bool loaded;
} maps;

static void maps_load(maps *m, pid_t tid)
{
    char path[64], line[4096];
    m->loaded = true;
    snprintf(path, sizeof path, "/proc/%d/maps", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off;
        char perms[8];
        int pos = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &lo, &hi, perms, &off, &pos) < 4 ||
            pos == 0 || perms[2] != 'x')
            continue;
        if (m->n == m->cap) {
            size_t nc = m->cap ? 2 * m->cap : 64;
            mapping *nv = realloc(m->v, nc * sizeof *nv);
            if (!nv)
                break;
            m->v = nv;
            m->cap = nc;
        }
        mapping *mp = &m->v[m->n++];
        mp->lo = lo;
        mp->hi = hi;
        mp->off = off;
        char *file = line + pos;
        file[strcspn(file, "\n")] = 0;
        snprintf(mp->path, sizeof mp->path, "%s", file);
    }
    fclose(f);
}

static const mapping *maps_find(maps *m, pid_t tid, uint64_t addr)
{
    if (!m->loaded)
        maps_load(m, tid);
    for (size_t i = 0; i < m->n; i++)
        if (addr >= m->v[i].lo && addr < m->v[i].hi)
            return &m->v[i];
    return NULL;
}

/* A name from the object's separate debug file (debugsyms.h): a sized
 * symbol covering the address.  Sets a->entry; false if there is none. */
static bool debug_name(wp_symbols *s, maps *m, pid_t tid, wp_addr *a, char *out, size_t len)
{
    const mapping *mp = maps_find(m, tid, a->key);
    return mp && debugsyms_lookup(s->debug, mp->path, mp->lo, mp->off, a->key, out, len, &a->entry);
}

/* Names a function no symbol covers by its object and the offset of its
 * start (of its unwind entry, else of the address itself). */
static void name_by_object(maps *m, pid_t tid, wp_addr *a, char *out, size_t len)
{
    uint64_t at = a->fde ? a->fde : a->key;
    a->entry = a->fde;
    const mapping *mp = maps_find(m, tid, a->key);
    const char *base = mp ? strrchr(mp->path, '/') : NULL;
    base = base ? base + 1 : mp ? mp->path : "";
    if (*base)
        snprintf(out, len, "[%s+0x%llx]", base, (unsigned long long)(at - mp->lo + mp->off));
    else
        snprintf(out, len, "0x%llx", (unsigned long long)at);
}

void symbols_resolve(wp_symbols *s, unw_addr_space_t as, pid_t tid)
{
    if (s->npending == 0)
        return;
    void *upt = _UPT_create(tid);
    if (!upt)
        return;
    maps m = { 0 };
    char name[512];
    for (uint32_t i = 0; i < s->npending; i++) {
        wp_addr *a = &s->addrs[s->pending[i]];
        if (a->gen != s->gen)
            continue;  /* from before an exec: its program is gone */
        unw_word_t off = 0;
        int r = _UPT_get_proc_name(as, (unw_word_t)a->key, name, sizeof name, &off, upt);
        bool named = (r == 0 || (r == -UNW_ENOMEM && name[0])) && off <= a->key;
        char dbg[512];
        if (named && a->fde && a->key - off >= a->fde) {
            a->entry = a->key - off;  /* the symbol starts the function: trusted */
        } else if (debug_name(s, &m, tid, a, dbg, sizeof dbg)) {
            memcpy(name, dbg, sizeof name);
        } else if (named && !a->fde) {
            a->entry = a->key - off;  /* nothing to check it against: libunwind's word stands */
        } else {
            name_by_object(&m, tid, a, name, sizeof name);
        }
        a->func = symbols_intern(s, name);
    }
    free(m.v);
    s->npending = 0;
    _UPT_destroy(upt);
}

int symbols_func(wp_symbols *s, uint64_t key, int gen)
{
    wp_addr *a = lookup(s, key, gen);
    if (a && a->func >= 0)
        return a->func;
    char hex[32];
    snprintf(hex, sizeof hex, "0x%llx", (unsigned long long)key);
    int id = symbols_intern(s, hex);
    if (a)
        a->func = id;
    return id;
}

void symbols_exec(wp_symbols *s)
{
    /* Addresses still waiting belong to the old program, which is gone. */
    s->npending = 0;
    s->gen++;
}
