/*
 * pprof_reader.h — a small profile.proto reader for the tests: gunzip,
 * decode every message weft writes, and check what google/pprof's
 * CheckValid checks.  Shared by test_pprof.c and test_cpuprof.c.
 */
#ifndef WEFT_PPROF_READER_H
#define WEFT_PPROF_READER_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- a protobuf reader for profile.proto ----------------------------------- */

typedef struct {
    const uint8_t *p, *end;
} rd;

typedef struct {
    uint64_t *loc;
    int nloc;
    int64_t *val;
    int nval;
    int64_t lkey, lstr;     /* the first label */
    int64_t lkeys[4], lstrs[4]; /* every label, up to 4 */
    int nlabel;
} tsample;
typedef struct {
    uint64_t id, map, addr, fn;
    int64_t line;
    int nline;
} tloc;
typedef struct {
    uint64_t id;
    int64_t name, sys, file, start;
} tfn;
typedef struct {
    uint64_t id, start, limit, off;
    int64_t file, bid;
    bool hasfn, hasfile, hasline;
} tmap;
typedef struct {
    char **str;
    int nstr;
    int64_t st[8][2];
    int nst;
    tsample *smp;
    int nsmp;
    tloc *loc;
    int nloc;
    tfn *fn;
    int nfn;
    tmap *map;
    int nmap;
    int64_t time, dur, period, pt[2];
    bool haspt;
} tprof;

static void *xrealloc(void *a, int n, size_t el)
{
    a = realloc(a, (size_t)n * el);
    cr_assert_not_null(a);
    return a;
}
/* Appends one element to a[0..n), giving its address. */
#define GROW(a, n) ((a) = xrealloc((a), (n) + 1, sizeof *(a)), &(a)[(n)++])

static uint64_t rvarint(rd *r)
{
    uint64_t v = 0;
    for (int s = 0; s < 70; s += 7) {
        cr_assert_lt(r->p, r->end, "truncated varint");
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80))
            return v;
    }
    cr_assert_fail("varint longer than 10 bytes");
    return 0;
}

/* The next field: its number, and either its varint (wiretype 0) or its
 * bytes as a sub-reader (wiretype 2; other wiretypes are not in pprof). */
static bool rfield(rd *r, uint32_t *field, int *wt, uint64_t *v, rd *sub)
{
    if (r->p == r->end)
        return false;
    uint64_t key = rvarint(r);
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    cr_assert(*wt == 0 || *wt == 2, "wiretype %d", *wt);
    *v = rvarint(r);
    if (*wt == 2) {
        cr_assert_leq(*v, (uint64_t)(r->end - r->p), "length past the end");
        *sub = (rd){r->p, r->p + *v};
        r->p += *v;
    }
    return true;
}

/* A repeated scalar, packed or not. */
#define RREP(arr, n, wt, v, sub)                              \
    do {                                                      \
        if ((wt) == 0)                                        \
            *GROW(arr, n) = (__typeof__(*(arr)))(v);          \
        else                                                  \
            while ((sub).p < (sub).end)                       \
                *GROW(arr, n) = (__typeof__(*(arr)))rvarint(&(sub)); \
    } while (0)

static void rvaluetype(rd r, int64_t out[2])
{
    uint32_t f;
    int wt;
    uint64_t v;
    rd s;
    while (rfield(&r, &f, &wt, &v, &s))
        if (f == 1 || f == 2)
            out[f - 1] = (int64_t)v;
}

static void rsample(rd r, tsample *t)
{
    uint32_t f;
    int wt;
    uint64_t v;
    rd s;
    while (rfield(&r, &f, &wt, &v, &s)) {
        if (f == 1)
            RREP(t->loc, t->nloc, wt, v, s);
        else if (f == 2)
            RREP(t->val, t->nval, wt, v, s);
        else if (f == 3) {
            int64_t key = 0, str = 0;
            uint32_t g;
            int wt2;
            uint64_t w;
            rd s2;
            while (rfield(&s, &g, &wt2, &w, &s2))
                if (g == 1)
                    key = (int64_t)w;
                else if (g == 2)
                    str = (int64_t)w;
            if (t->nlabel == 0) {
                t->lkey = key;
                t->lstr = str;
            }
            if (t->nlabel < 4) {
                t->lkeys[t->nlabel] = key;
                t->lstrs[t->nlabel] = str;
            }
            t->nlabel++;
        }
    }
}

static void rloc(rd r, tloc *t)
{
    uint32_t f;
    int wt;
    uint64_t v;
    rd s;
    while (rfield(&r, &f, &wt, &v, &s)) {
        if (f == 1)
            t->id = v;
        else if (f == 2)
            t->map = v;
        else if (f == 3)
            t->addr = v;
        else if (f == 4) {
            t->nline++;
            uint32_t g;
            int wt2;
            uint64_t w;
            rd s2;
            while (rfield(&s, &g, &wt2, &w, &s2))
                if (g == 1)
                    t->fn = w;
                else if (g == 2)
                    t->line = (int64_t)w;
        }
    }
}

static void rfn(rd r, tfn *t)
{
    uint32_t f;
    int wt;
    uint64_t v;
    rd s;
    while (rfield(&r, &f, &wt, &v, &s)) {
        int64_t *dst[] = {NULL, NULL, &t->name, &t->sys, &t->file, &t->start};
        if (f == 1)
            t->id = v;
        else if (f >= 2 && f <= 5)
            *dst[f] = (int64_t)v;
    }
}

static void rmap(rd r, tmap *t)
{
    uint32_t f;
    int wt;
    uint64_t v;
    rd s;
    while (rfield(&r, &f, &wt, &v, &s)) {
        switch (f) {
        case 1: t->id = v; break;
        case 2: t->start = v; break;
        case 3: t->limit = v; break;
        case 4: t->off = v; break;
        case 5: t->file = (int64_t)v; break;
        case 6: t->bid = (int64_t)v; break;
        case 7: t->hasfn = v; break;
        case 8: t->hasfile = v; break;
        case 9: t->hasline = v; break;
        }
    }
}

static tprof *decode(const uint8_t *b, size_t n)
{
    tprof *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    rd r = {b, b + n}, s;
    uint32_t f;
    int wt;
    uint64_t v;
    while (rfield(&r, &f, &wt, &v, &s)) {
        switch (f) {
        case 1:
            cr_assert_lt(t->nst, 8);
            rvaluetype(s, t->st[t->nst++]);
            break;
        case 2: rsample(s, memset(GROW(t->smp, t->nsmp), 0, sizeof *t->smp)); break;
        case 3: rmap(s, memset(GROW(t->map, t->nmap), 0, sizeof *t->map)); break;
        case 4: rloc(s, memset(GROW(t->loc, t->nloc), 0, sizeof *t->loc)); break;
        case 5: rfn(s, memset(GROW(t->fn, t->nfn), 0, sizeof *t->fn)); break;
        case 6:
            cr_assert_eq(wt, 2);
            cr_assert_not_null(*GROW(t->str, t->nstr) = strndup((const char *)s.p, (size_t)(s.end - s.p)));
            break;
        case 9: t->time = (int64_t)v; break;
        case 10: t->dur = (int64_t)v; break;
        case 11: rvaluetype(s, t->pt); t->haspt = true; break;
        case 12: t->period = (int64_t)v; break;
        }
    }
    return t;
}

static void tprof_free(tprof *t)
{
    for (int i = 0; i < t->nstr; i++)
        free(t->str[i]);
    for (int i = 0; i < t->nsmp; i++) {
        free(t->smp[i].loc);
        free(t->smp[i].val);
    }
    free(t->str);
    free(t->smp);
    free(t->loc);
    free(t->fn);
    free(t->map);
    free(t);
}

static const char *S(const tprof *t, int64_t i)
{
    cr_assert(i >= 0 && i < t->nstr, "string index %lld out of range", (long long)i);
    return t->str[i];
}

static tloc *locbyid(const tprof *t, uint64_t id)
{
    for (int i = 0; i < t->nloc; i++)
        if (t->loc[i].id == id)
            return &t->loc[i];
    return NULL;
}
static tfn *fnbyid(const tprof *t, uint64_t id)
{
    for (int i = 0; i < t->nfn; i++)
        if (t->fn[i].id == id)
            return &t->fn[i];
    return NULL;
}
static tmap *mapbyid(const tprof *t, uint64_t id)
{
    for (int i = 0; i < t->nmap; i++)
        if (t->map[i].id == id)
            return &t->map[i];
    return NULL;
}
static tloc *locbyaddr(const tprof *t, uint64_t addr)
{
    for (int i = 0; i < t->nloc; i++)
        if (t->loc[i].addr == addr)
            return &t->loc[i];
    return NULL;
}
/* The function name of a location, NULL if it has no line. */
static const char *locname(const tprof *t, const tloc *l)
{
    return l->nline ? S(t, fnbyid(t, l->fn)->name) : NULL;
}

/* google/pprof's CheckValid, plus the string indexes being in range. */
static void check_valid(const tprof *t)
{
    cr_assert_geq(t->nstr, 1);
    cr_assert_str_eq(t->str[0], "", "string_table[0] must be ''");
    cr_assert_geq(t->nst, 1, "missing sample type information");
    for (int i = 0; i < t->nst; i++)
        S(t, t->st[i][0]), S(t, t->st[i][1]);
    S(t, t->pt[0]), S(t, t->pt[1]);
    for (int i = 0; i < t->nmap; i++) {
        cr_assert_neq(t->map[i].id, 0, "mapping with reserved ID=0");
        cr_assert_eq(mapbyid(t, t->map[i].id), &t->map[i], "duplicate mapping id");
        S(t, t->map[i].file), S(t, t->map[i].bid);
    }
    for (int i = 0; i < t->nfn; i++) {
        cr_assert_neq(t->fn[i].id, 0, "function with reserved ID=0");
        cr_assert_eq(fnbyid(t, t->fn[i].id), &t->fn[i], "duplicate function id");
        S(t, t->fn[i].name), S(t, t->fn[i].sys), S(t, t->fn[i].file);
    }
    for (int i = 0; i < t->nloc; i++) {
        const tloc *l = &t->loc[i];
        cr_assert_neq(l->id, 0, "location with reserved ID=0");
        cr_assert_eq(locbyid(t, l->id), l, "duplicate location id");
        cr_assert_eq(locbyaddr(t, l->addr), l, "two locations for address %#llx", (unsigned long long)l->addr);
        cr_assert(l->map == 0 || mapbyid(t, l->map), "unknown mapping id %llu", (unsigned long long)l->map);
        cr_assert(l->nline == 0 || fnbyid(t, l->fn), "unknown function id %llu", (unsigned long long)l->fn);
        cr_assert_leq(l->nline, 1);
    }
    for (int i = 0; i < t->nsmp; i++) {
        const tsample *s = &t->smp[i];
        cr_assert_eq(s->nval, t->nst, "mismatch: sample has %d values vs. %d types", s->nval, t->nst);
        for (int j = 0; j < s->nloc; j++)
            cr_assert_not_null(locbyid(t, s->loc[j]), "sample has nil location %llu", (unsigned long long)s->loc[j]);
        cr_assert_leq(s->nlabel, 2);
        for (int j = 0; j < s->nlabel; j++)
            S(t, s->lkeys[j]), S(t, s->lstrs[j]);
    }
}

static uint8_t *gunzip(const uint8_t *in, size_t n, size_t *outn)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    cr_assert_eq(inflateInit2(&z, 16 + 15), Z_OK);
    size_t cap = 4096 + 4 * n, len = 0;
    uint8_t *out = malloc(cap);
    cr_assert_not_null(out);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    int rc;
    do {
        if (len == cap)
            cr_assert_not_null(out = realloc(out, cap *= 2));
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        cr_assert(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d %s", rc, z.msg ? z.msg : "");
        len = cap - z.avail_out;
    } while (rc != Z_STREAM_END);
    cr_assert_eq(z.avail_in, 0, "bytes after the gzip member");
    inflateEnd(&z);
    *outn = len;
    return out;
}

static uint8_t *slurp(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    cr_assert_geq(end, 0);
    uint8_t *b = malloc((size_t)end + 1);
    cr_assert_not_null(b);
    cr_assert_eq(pread(fd, b, (size_t)end, 0), end);
    *n = (size_t)end;
    return b;
}

#endif
