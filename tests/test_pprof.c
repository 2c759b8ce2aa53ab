/*
 * test_pprof.c — the profile.proto writer, read back by a small protobuf
 * decoder of our own (below) that checks what google/pprof's CheckValid
 * checks, then by `go tool pprof` itself when go is installed.
 *
 * Most tests use a fake symbolizer over made-up addresses, so that names,
 * files, lines and call counts are known exactly:
 *
 *   0x1000-0x10ff  alpha  alpha.c:10+   \  mapping 1 /fake/bin (build id abcd)
 *   0x2000-0x20ff  beta   beta.c:20     /
 *   0x3000-0x30ff  gamma  (no file)        mapping 2 /fake/libg.so
 *   0x4000-0x40ff  alpha  other.c      \  mapping 3 /fake/libu.so
 *   0x5000-0x50ff  (unknown)            /
 *   0x9000-        (unknown)               no mapping
 */
#include <criterion/criterion.h>
#include <gnu/libc-version.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "diag/pprof.h"
#include "diag/symtab.h"

#include "pprof_reader.h"

/* Not inlined, not cloned (gcc's noclone; clang does not clone here). */
#if defined(__clang__)
#define NOINLINE_NOCLONE __attribute__((noinline))
#else
#define NOINLINE_NOCLONE __attribute__((noinline, noclone))
#endif

/* weft__pprof_write into a temp file, gunzip, decode, check_valid. */
static tprof *roundtrip(weft__pprof *p, weft__pprof_symbolizer sym, void *arg)
{
    FILE *f = tmpfile();
    cr_assert_not_null(f);
    cr_assert_eq(weft__pprof_write(p, fileno(f), sym, arg), 0);
    size_t ngz, n;
    uint8_t *gz = slurp(fileno(f), &ngz);
    fclose(f);
    uint8_t *raw = gunzip(gz, ngz, &n);
    tprof *t = decode(raw, n);
    free(gz);
    free(raw);
    check_valid(t);
    return t;
}

/* ---- the fake symbolizer ------------------------------------------------- */

typedef struct {
    int calls;
    uintptr_t pc[64];
    bool isreturn[64];
    char name[32]; /* reused every call: the writer must copy */
} fakectx;

static bool fakesym(uintptr_t pc, bool isreturn, weft__pprof_sym *out, void *arg)
{
    fakectx *c = arg;
    cr_assert_lt(c->calls, 64);
    c->pc[c->calls] = pc;
    c->isreturn[c->calls++] = isreturn;
    uintptr_t a = isreturn ? pc - 1 : pc;
    memset(out, 0, sizeof *out);
    if (a >= 0x1000 && a < 0x1100) {
        snprintf(c->name, sizeof c->name, "alpha");
        *out = (weft__pprof_sym){.func = c->name, .file = "alpha.c", .line = 10 + (int)(a - 0x1000) / 16};
    } else if (a >= 0x2000 && a < 0x2100) {
        snprintf(c->name, sizeof c->name, "beta");
        *out = (weft__pprof_sym){.func = c->name, .file = "beta.c", .line = 20};
    } else if (a >= 0x3000 && a < 0x3100) {
        *out = (weft__pprof_sym){.func = "gamma"};
    } else if (a >= 0x4000 && a < 0x4100) {
        *out = (weft__pprof_sym){.func = "alpha", .file = "other.c"};
    } else {
        return false;
    }
    return true;
}

static const weft__pprof_vt cputypes[] = {{"samples", "count"}, {"cpu", "nanoseconds"}};

static weft__pprof *newcpu(void)
{
    weft__pprof *p = weft__pprof_new(cputypes, 2, (weft__pprof_vt){"cpu", "nanoseconds"}, 10000000);
    cr_assert_not_null(p);
    cr_assert_eq(weft__pprof_add_mapping(p, 0x1000, 0x3000, 0, "/fake/bin", "abcd"), 0);
    cr_assert_eq(weft__pprof_add_mapping(p, 0x3000, 0x4000, 0x1000, "/fake/libg.so", NULL), 0);
    cr_assert_eq(weft__pprof_add_mapping(p, 0x4000, 0x6000, 0, "/fake/libu.so", NULL), 0);
    return p;
}

static void add(weft__pprof *p, const uintptr_t *pcs, int n, int64_t count, const char *gid)
{
    int64_t v[2] = {count, count * 10000000};
    cr_assert_eq(weft__pprof_add(p, pcs, n, true, v, gid ? "goroutine" : NULL, gid), 0);
}

static const tsample *findsample(const tprof *t, const char *leaf, const char *label)
{
    for (int i = 0; i < t->nsmp; i++) {
        const tsample *s = &t->smp[i];
        const char *l = s->nloc ? locname(t, locbyid(t, s->loc[0])) : NULL;
        const char *lab = s->nlabel ? S(t, s->lstr) : NULL;
        if (l && strcmp(l, leaf) == 0 && (label ? lab && strcmp(lab, label) == 0 : !lab))
            return s;
    }
    return NULL;
}

/* ---- tests --------------------------------------------------------------- */

Test(pprof, two_labels_per_sample)
{
    weft__pprof *p = newcpu();
    uintptr_t st[] = {0x1010, 0x2011};
    int64_t v[2] = {1, 10000000};
    weft__pprof_label a[2] = {{"thread", "weft-M1"}, {"goroutine", "7"}};
    weft__pprof_label b[2] = {{"thread", "weft-M1"}, {"goroutine", "8"}};
    cr_assert_eq(weft__pprof_add_labels(p, st, 2, true, v, a, 2), 0);
    cr_assert_eq(weft__pprof_add_labels(p, st, 2, true, v, b, 2), 0);
    cr_assert_eq(weft__pprof_add_labels(p, st, 2, true, v, a, 2), 0);
    cr_assert_eq(weft__pprof_add_labels(p, st, 2, true, v, a, 1), 0, "a prefix of the labels");
    tprof *t = roundtrip(p, NULL, NULL);
    cr_assert_eq(t->nsmp, 3, "same stack, different labels: separate samples");
    int seen7 = 0, seen8 = 0, thread_only = 0;
    for (int i = 0; i < t->nsmp; i++) {
        const tsample *s = &t->smp[i];
        cr_assert_str_eq(S(t, s->lkeys[0]), "thread");
        cr_assert_str_eq(S(t, s->lstrs[0]), "weft-M1");
        if (s->nlabel == 1) {
            thread_only++;
            cr_assert_eq(s->val[0], 1);
            continue;
        }
        cr_assert_eq(s->nlabel, 2);
        cr_assert_str_eq(S(t, s->lkeys[1]), "goroutine");
        if (strcmp(S(t, s->lstrs[1]), "7") == 0) {
            seen7++;
            cr_assert_eq(s->val[0], 2, "equal stacks and labels merge");
        } else {
            cr_assert_str_eq(S(t, s->lstrs[1]), "8");
            seen8++;
        }
    }
    cr_assert(seen7 == 1 && seen8 == 1 && thread_only == 1);
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, header_fields_and_sample_types)
{
    weft__pprof *p = newcpu();
    weft__pprof_set_time(p, 1700000000123456789LL, 2000000000);
    uintptr_t st[] = {0x1010, 0x2011};
    add(p, st, 2, 3, NULL);
    fakectx c = {0};
    tprof *t = roundtrip(p, fakesym, &c);
    cr_assert_eq(t->nst, 2);
    cr_assert_str_eq(S(t, t->st[0][0]), "samples");
    cr_assert_str_eq(S(t, t->st[0][1]), "count");
    cr_assert_str_eq(S(t, t->st[1][0]), "cpu");
    cr_assert_str_eq(S(t, t->st[1][1]), "nanoseconds");
    cr_assert(t->haspt);
    cr_assert_str_eq(S(t, t->pt[0]), "cpu");
    cr_assert_str_eq(S(t, t->pt[1]), "nanoseconds");
    cr_assert_eq(t->period, 10000000);
    cr_assert_eq(t->time, 1700000000123456789LL);
    cr_assert_eq(t->dur, 2000000000);
    cr_assert_eq(t->nsmp, 1);
    cr_assert_eq(t->smp[0].val[0], 3);
    cr_assert_eq(t->smp[0].val[1], 30000000);
    cr_assert_eq(t->smp[0].nlabel, 0);
    /* Leaf first: the exact pc as is, the caller's return address minus one. */
    cr_assert_eq(t->smp[0].nloc, 2);
    cr_assert_eq(locbyid(t, t->smp[0].loc[0])->addr, 0x1010);
    cr_assert_eq(locbyid(t, t->smp[0].loc[1])->addr, 0x2010);
    cr_assert_str_eq(locname(t, locbyid(t, t->smp[0].loc[0])), "alpha");
    cr_assert_str_eq(locname(t, locbyid(t, t->smp[0].loc[1])), "beta");
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, zero_times_are_omitted_and_empty_profile_is_valid)
{
    weft__pprof_vt one = {"goroutine", "count"};
    weft__pprof *p = weft__pprof_new(&one, 1, one, 1);
    cr_assert_not_null(p);
    tprof *t = roundtrip(p, NULL, NULL);
    cr_assert_eq(t->nsmp, 0);
    cr_assert_eq(t->time, 0);
    cr_assert_eq(t->dur, 0);
    cr_assert_eq(t->period, 1);
    cr_assert_str_eq(S(t, t->st[0][0]), "goroutine");
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, identical_samples_merge_values)
{
    weft__pprof *p = newcpu();
    uintptr_t a[] = {0x1010, 0x2011}, b[] = {0x1020, 0x2011};
    add(p, a, 2, 2, NULL);
    add(p, a, 2, 5, NULL);      /* same stack, no label: merged */
    add(p, a, 2, 1, "7");       /* same stack, a label: apart */
    add(p, a, 2, 4, "7");       /* merged with the one above */
    add(p, a, 2, 1, "8");       /* another label value: apart */
    add(p, b, 2, 6, NULL);      /* another stack: apart */
    add(p, a, 1, 1, NULL);      /* a prefix of a stack is another stack */
    int64_t neg[2] = {-3, -30000000}; /* negative values: 10-byte varints */
    cr_assert_eq(weft__pprof_add(p, b, 2, true, neg, NULL, NULL), 0);
    fakectx c = {0};
    tprof *t = roundtrip(p, fakesym, &c);
    cr_assert_eq(t->nsmp, 5);
    int64_t sum = 0;
    for (int i = 0; i < t->nsmp; i++)
        sum += t->smp[i].val[0];
    cr_assert_eq(sum, 2 + 5 + 1 + 4 + 1 + 6 + 1 - 3);
    const tsample *s = findsample(t, "alpha", "7");
    cr_assert_not_null(s);
    cr_assert_eq(s->val[0], 5);
    cr_assert_eq(s->val[1], 50000000);
    cr_assert_eq(findsample(t, "alpha", "8")->val[0], 1);
    int nolabel = 0;
    for (int i = 0; i < t->nsmp; i++)
        if (!t->smp[i].nlabel && t->smp[i].nloc == 2 &&
            locbyid(t, t->smp[i].loc[0])->addr == 0x1010) {
            cr_assert_eq(t->smp[i].val[0], 7);
            cr_assert_eq(t->smp[i].val[1], 70000000);
            nolabel++;
        }
    cr_assert_eq(nolabel, 1);
    for (int i = 0; i < t->nsmp; i++)
        if (t->smp[i].nloc == 2 && locbyid(t, t->smp[i].loc[0])->addr == 0x1020) {
            cr_assert_eq(t->smp[i].val[0], 3);
            cr_assert_eq(t->smp[i].val[1], 30000000);
        }
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, labels_are_goroutine_strings)
{
    weft__pprof *p = newcpu();
    uintptr_t a[] = {0x1010}, b[] = {0x2010};
    add(p, a, 1, 1, "17");
    add(p, b, 1, 2, "42");
    fakectx c = {0};
    tprof *t = roundtrip(p, fakesym, &c);
    cr_assert_eq(t->nsmp, 2);
    for (int i = 0; i < t->nsmp; i++) {
        cr_assert_eq(t->smp[i].nlabel, 1);
        cr_assert_str_eq(S(t, t->smp[i].lkey), "goroutine");
    }
    cr_assert_not_null(findsample(t, "alpha", "17"));
    cr_assert_not_null(findsample(t, "beta", "42"));
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, each_address_is_one_location_symbolized_once)
{
    weft__pprof *p = newcpu();
    /* 0x2011 as a return address and 0x2010 as an exact leaf are the same
     * instruction, so the same Location. */
    uintptr_t a[] = {0x1010, 0x2011}, b[] = {0x1020, 0x2011}, c2[] = {0x2010, 0x1021};
    add(p, a, 2, 1, NULL);
    add(p, b, 2, 1, "1");
    add(p, c2, 2, 1, NULL);
    add(p, a, 2, 1, "2");
    fakectx c = {0};
    tprof *t = roundtrip(p, fakesym, &c);
    cr_assert_eq(t->nloc, 3, "locations: %d", t->nloc); /* 0x1010 0x2010 0x1020 */
    cr_assert_eq(c.calls, 3);
    for (int i = 0; i < c.calls; i++)
        for (int j = 0; j < i; j++)
            cr_assert_neq(c.pc[i] - c.isreturn[i], c.pc[j] - c.isreturn[j], "address symbolized twice");
    /* The first sighting decides how the symbolizer is asked. */
    for (int i = 0; i < c.calls; i++) {
        if (c.pc[i] == 0x1010 || c.pc[i] == 0x1020)
            cr_assert_not(c.isreturn[i]);
        else
            cr_assert(c.pc[i] == 0x2011 && c.isreturn[i], "pc %#lx", (unsigned long)c.pc[i]);
    }
    cr_assert_eq(locbyaddr(t, 0x1020)->line, 12);
    /* A second write symbolizes nothing again and gives the same message. */
    uint8_t *m1, *m2;
    size_t n1, n2;
    cr_assert_eq(weft__pprof_encode(p, fakesym, &c, &m1, &n1), 0);
    cr_assert_eq(weft__pprof_encode(p, fakesym, &c, &m2, &n2), 0);
    cr_assert_eq(c.calls, 3);
    cr_assert_eq(n1, n2);
    cr_assert_arr_eq(m1, m2, n1);
    free(m1);
    free(m2);
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, functions_are_one_per_name_and_file)
{
    weft__pprof *p = newcpu();
    /* Leaf exact, then return addresses: instructions 0x1000 0x1010 ... */
    uintptr_t a[] = {0x1000, 0x1011, 0x1021, 0x4001, 0x3001, 0x2001};
    add(p, a, 6, 1, NULL);
    fakectx c = {0};
    tprof *t = roundtrip(p, fakesym, &c);
    cr_assert_eq(t->nloc, 6);
    cr_assert_eq(t->nfn, 4, "functions: %d", t->nfn); /* alpha/alpha.c alpha/other.c gamma beta */
    tloc *l0 = locbyaddr(t, 0x1000), *l1 = locbyaddr(t, 0x1010);
    cr_assert(l0 && l1);
    cr_assert_eq(locbyaddr(t, 0x1020)->fn, l0->fn, "alpha.c:alpha twice");
    cr_assert_eq(l1->fn, l0->fn);
    cr_assert_neq(l1->line, l0->line);
    tloc *other = locbyaddr(t, 0x4000);
    cr_assert_neq(other->fn, l0->fn, "alpha in another file is another function");
    for (int i = 0; i < t->nfn; i++) {
        cr_assert_eq(t->fn[i].name, t->fn[i].sys);
        cr_assert_eq(t->fn[i].start, 0);
    }
    const tfn *f = fnbyid(t, l0->fn);
    cr_assert_str_eq(S(t, f->name), "alpha");
    cr_assert_str_eq(S(t, f->file), "alpha.c");
    cr_assert_str_eq(S(t, fnbyid(t, other->fn)->file), "other.c");
    cr_assert_str_eq(S(t, fnbyid(t, locbyaddr(t, 0x3000)->fn)->file), "", "gamma has no file");
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, mappings_contain_their_locations_and_say_what_they_know)
{
    weft__pprof *p = newcpu();
    uintptr_t a[] = {0x5010, 0x4011, 0x3011, 0x2011, 0x1011, 0x9001};
    add(p, a, 6, 1, NULL);
    fakectx c = {0};
    tprof *t = roundtrip(p, fakesym, &c);
    cr_assert_eq(t->nmap, 3);
    const tmap *m1 = mapbyid(t, 1), *m2 = mapbyid(t, 2), *m3 = mapbyid(t, 3);
    cr_assert(m1 && m2 && m3);
    cr_assert_eq(m1->start, 0x1000);
    cr_assert_eq(m1->limit, 0x3000);
    cr_assert_eq(m2->off, 0x1000);
    cr_assert_str_eq(S(t, m1->file), "/fake/bin");
    cr_assert_str_eq(S(t, m1->bid), "abcd");
    cr_assert_str_eq(S(t, m2->bid), "");
    cr_assert_eq(locbyaddr(t, 0x1010)->map, 1);
    cr_assert_eq(locbyaddr(t, 0x2010)->map, 1);
    cr_assert_eq(locbyaddr(t, 0x3010)->map, 2);
    cr_assert_eq(locbyaddr(t, 0x4010)->map, 3);
    cr_assert_eq(locbyaddr(t, 0x5010)->map, 3);
    cr_assert_eq(locbyaddr(t, 0x9000)->map, 0, "outside every mapping");
    /* Unknown addresses keep a bare Location for pprof to symbolize. */
    cr_assert_eq(locbyaddr(t, 0x5010)->nline, 0);
    cr_assert_eq(locbyaddr(t, 0x9000)->nline, 0);
    cr_assert(m1->hasfn && m1->hasfile && m1->hasline);
    cr_assert(m2->hasfn && !m2->hasfile && !m2->hasline);
    cr_assert(!m3->hasfn, "has an unsymbolized location: pprof must symbolize it");
    cr_assert(m3->hasfile && !m3->hasline);
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, many_samples_grow_every_table)
{
    weft__pprof *p = newcpu();
    for (int round = 0; round < 2; round++)
        for (uintptr_t i = 0; i < 3000; i++) {
            uintptr_t st[] = {0x100000 + i * 4, 0x1011, 0x2011};
            char gid[16];
            snprintf(gid, sizeof gid, "%u", (unsigned)(i % 10));
            add(p, st, 3, 1, gid);
        }
    tprof *t = roundtrip(p, NULL, NULL); /* no symbolizer: addresses only */
    cr_assert_eq(t->nsmp, 3000);
    cr_assert_eq(t->nloc, 3002);
    cr_assert_eq(t->nfn, 0);
    for (int i = 0; i < t->nsmp; i++)
        cr_assert_eq(t->smp[i].val[0], 2);
    cr_assert_eq(t->nstr, 1 + 4 + 3 + 1 + 10 + 1, "strings: %d", t->nstr); /* "", types, mappings, abcd, gids, goroutine */
    tprof_free(t);
    weft__pprof_free(p);
}

Test(pprof, bad_arguments_are_negative_errno)
{
    cr_assert_null(weft__pprof_new(cputypes, 0, cputypes[0], 1));
    cr_assert_null(weft__pprof_new(NULL, 1, cputypes[0], 1));
    weft__pprof *p = newcpu();
    uintptr_t a[] = {0x1010};
    int64_t v[2] = {1, 1};
    cr_assert_eq(weft__pprof_add(p, a, -1, false, v, NULL, NULL), -EINVAL);
    cr_assert_eq(weft__pprof_add(p, NULL, 1, false, v, NULL, NULL), -EINVAL);
    cr_assert_eq(weft__pprof_add(p, a, 1, false, NULL, NULL, NULL), -EINVAL);
    cr_assert_eq(weft__pprof_add(p, a, 1, false, v, "goroutine", NULL), -EINVAL);
    cr_assert_eq(weft__pprof_add(p, NULL, 0, false, v, NULL, NULL), 0, "an empty stack is allowed");
    weft__pprof_label three[3] = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
    cr_assert_eq(weft__pprof_add_labels(p, a, 1, false, v, three, 3), -EINVAL);
    weft__pprof_label half[1] = {{"a", NULL}};
    cr_assert_eq(weft__pprof_add_labels(p, a, 1, false, v, half, 1), -EINVAL);
    cr_assert_eq(weft__pprof_add_mapping(p, 0x2000, 0x1000, 0, "x", NULL), -EINVAL);
    cr_assert_eq(weft__pprof_add_proc_mappings(p, -1), -EINVAL);
    cr_assert_eq(weft__pprof_add_proc_mappings(p, 0x7ffffff0), -ENOENT);
    cr_assert_eq(weft__pprof_write(p, -1, fakesym, &(fakectx){0}), -EBADF);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    close(fds[0]);
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(weft__pprof_write(p, fds[1], NULL, NULL), -EPIPE);
    close(fds[1]);
    weft__pprof_free(p);
    weft__pprof_free(NULL);
}

static void check_gzip_stored(size_t n)
{
    uint8_t *d = malloc(n + 1);
    cr_assert_not_null(d);
    for (size_t i = 0; i < n; i++)
        d[i] = (uint8_t)(i * 2654435761u >> 13);
    uint8_t *gz, *back;
    size_t ngz, nback;
    cr_assert_eq(weft__pprof_gzip_stored(d, n, &gz, &ngz), 0);
    cr_assert_eq(ngz, 10 + 5 * (n ? (n + 65534) / 65535 : 1) + n + 8, "size for %zu", n);
    back = gunzip(gz, ngz, &nback); /* zlib checks the CRC-32 and ISIZE */
    cr_assert_eq(nback, n);
    cr_assert_arr_eq(back, d, n);
    if (system("command -v gzip >/dev/null 2>&1") == 0) {
        char path[] = "/tmp/weft_pprof_gzXXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, gz, ngz), (ssize_t)ngz);
        close(fd);
        char cmd[128];
        snprintf(cmd, sizeof cmd, "gzip -t < %s", path);
        cr_assert_eq(system(cmd), 0, "gzip -t rejects %zu bytes", n);
        unlink(path);
    }
    free(d);
    free(gz);
    free(back);
}

Test(pprof, stored_gzip_fallback_is_valid_gzip)
{
    size_t sizes[] = {0, 1, 100, 65534, 65535, 65536, 131070, 200001};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        check_gzip_stored(sizes[i]);
}

Test(pprof, written_file_is_the_gzipped_message)
{
    weft__pprof *p = newcpu();
    uintptr_t a[] = {0x1010, 0x2011};
    add(p, a, 2, 9, "3");
    fakectx c = {0};
    uint8_t *raw, *gz, *back, *viastored;
    size_t nraw, ngz, nback, nvs;
    cr_assert_eq(weft__pprof_encode(p, fakesym, &c, &raw, &nraw), 0);
    FILE *f = tmpfile();
    cr_assert_eq(weft__pprof_write(p, fileno(f), fakesym, &c), 0);
    gz = slurp(fileno(f), &ngz);
    fclose(f);
    cr_assert_eq(gz[0], 0x1f);
    cr_assert_eq(gz[1], 0x8b);
    back = gunzip(gz, ngz, &nback);
    cr_assert_eq(nback, nraw);
    cr_assert_arr_eq(back, raw, nraw);
    /* The stored fallback carries the very same message. */
    uint8_t *st;
    size_t nst;
    cr_assert_eq(weft__pprof_gzip_stored(raw, nraw, &st, &nst), 0);
    viastored = gunzip(st, nst, &nvs);
    cr_assert_eq(nvs, nraw);
    cr_assert_arr_eq(viastored, raw, nraw);
    free(raw);
    free(gz);
    free(back);
    free(st);
    free(viastored);
    weft__pprof_free(p);
}

/* ---- this process -------------------------------------------------------- */

static __attribute__((noinline)) uintptr_t retaddr(void)
{
    return (uintptr_t)__builtin_return_address(0);
}

/* A return address inside this function (the asm stops a tail call). */
NOINLINE_NOCLONE uintptr_t pprof_test_caller(void)
{
    uintptr_t r = retaddr();
    __asm__ volatile("" : "+r"(r));
    return r;
}

NOINLINE_NOCLONE int pprof_test_leaf(int x)
{
    __asm__ volatile("" : "+r"(x));
    return x * 3 + 1;
}

static const tmap *selfmap(const tprof *t, uint64_t addr)
{
    const tloc *l = locbyaddr(t, addr);
    cr_assert_not_null(l);
    cr_assert_neq(l->map, 0, "%#llx is in no mapping", (unsigned long long)addr);
    return mapbyid(t, l->map);
}

Test(pprof, proc_mappings_have_files_and_build_ids)
{
    weft__pprof_vt one = {"goroutine", "count"};
    weft__pprof *p = weft__pprof_new(&one, 1, one, 1);
    cr_assert_eq(weft__pprof_add_proc_mappings(p, 0), 0);
    /* gnu_get_libc_version: in libc itself (AddressSanitizer intercepts
     * memcpy and friends, whose addresses then point into libasan) */
    uintptr_t a[] = {(uintptr_t)pprof_test_leaf, (uintptr_t)&gnu_get_libc_version};
    int64_t v = 1;
    cr_assert_eq(weft__pprof_add(p, a, 2, true, &v, NULL, NULL), 0);
    tprof *t = roundtrip(p, NULL, NULL);
    cr_assert_geq(t->nmap, 2);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    cr_assert_gt(n, 0);
    exe[n] = '\0';
    const tmap *m = selfmap(t, (uintptr_t)pprof_test_leaf);
    cr_assert_str_eq(S(t, m->file), exe);
    const char *bid = S(t, m->bid);
    cr_assert_eq(strlen(bid), 40, "build id '%s'", bid); /* GNU ld's default sha1 */
    cr_assert_eq(strspn(bid, "0123456789abcdef"), 40);
    m = selfmap(t, (uintptr_t)&gnu_get_libc_version - 1);
    cr_assert(strstr(S(t, m->file), "libc"), "gnu_get_libc_version in %s", S(t, m->file));
    cr_assert_gt(strlen(S(t, m->bid)), 0, "libc has a build id");
    for (int i = 0; i < t->nmap; i++)
        cr_assert_eq(S(t, t->map[i].file)[0], '/');
    tprof_free(t);
    /* By pid: the same maps file read another way. */
    weft__pprof *q = weft__pprof_new(&one, 1, one, 1);
    cr_assert_eq(weft__pprof_add_proc_mappings(q, getpid()), 0);
    tprof *u = roundtrip(q, NULL, NULL);
    cr_assert_geq(u->nmap, 2);
    tprof_free(u);
    weft__pprof_free(q);
    weft__pprof_free(p);
}

Test(pprof, self_symbolizer_names_this_binary)
{
    weft__pprof_vt one = {"goroutine", "count"};
    weft__pprof *p = weft__pprof_new(&one, 1, one, 1);
    cr_assert_eq(weft__pprof_add_proc_mappings(p, 0), 0);
    uintptr_t st[] = {(uintptr_t)pprof_test_leaf, pprof_test_caller()};
    int64_t v = 5;
    cr_assert_eq(weft__pprof_add(p, st, 2, true, &v, "goroutine", "1"), 0);
    cr_assert_eq(weft__pprof_add(p, st, 2, true, &v, "goroutine", "1"), 0);
    tprof *t = roundtrip(p, weft__symtab_pprof, NULL);
    cr_assert_eq(t->nsmp, 1);
    cr_assert_eq(t->smp[0].val[0], 10);
    const tloc *leaf = locbyid(t, t->smp[0].loc[0]), *caller = locbyid(t, t->smp[0].loc[1]);
    cr_assert_eq(leaf->addr, st[0]);
    cr_assert_eq(caller->addr, st[1] - 1);
    cr_assert_not_null(locname(t, leaf), "no symbol for the leaf");
    cr_assert_str_eq(locname(t, leaf), "pprof_test_leaf");
    cr_assert_not_null(locname(t, caller), "no symbol for the caller");
    cr_assert_str_eq(locname(t, caller), "pprof_test_caller");
    const tfn *f = fnbyid(t, caller->fn);
    const char *file = S(t, f->file);
    if (*file) { /* with debug info: this file, a line inside pprof_test_caller */
        cr_assert(strstr(file, "test_pprof.c"), "file %s", file);
        cr_assert_gt(caller->line, 0);
    }
    const tmap *m = selfmap(t, caller->addr);
    cr_assert(m->hasfn);
    cr_assert_eq(m->hasfile, *file != 0);
    tprof_free(t);
    weft__pprof_free(p);
    weft__symtab_fini(); /* the symbolizer's caches, for valgrind */
}

/* ---- go tool pprof ------------------------------------------------------- */

static bool have_go(void) { return system("command -v go >/dev/null 2>&1") == 0; }

/* Runs `go tool pprof ARGS FILE` and returns its stdout+stderr. */
static char *gopprof(const char *args, const char *file)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "HOME=${HOME:-/tmp} go tool pprof %s %s 2>&1", args, file);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t cap = 1 << 16, n = 0, k;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    while ((k = fread(out + n, 1, cap - 1 - n, f)) > 0)
        if ((n += k) == cap - 1)
            cr_assert_not_null(out = realloc(out, cap *= 2));
    out[n] = '\0';
    cr_assert_eq(pclose(f), 0, "%s:\n%s", cmd, out);
    return out;
}

/* A -top row: "flat flat% sum% cum cum% name". */
static bool toprow(const char *out, const char *name, const char *flat, const char *cum)
{
    for (const char *l = out; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        char f[32], c[32], nm[128];
        if (sscanf(l, "%31s %*s %*s %31s %*s %127s", f, c, nm) == 3 && strcmp(nm, name) == 0)
            return strcmp(f, flat) == 0 && strcmp(c, cum) == 0;
    }
    return false;
}

Test(pprof, go_tool_pprof_reads_it, .timeout = 120)
{
    if (!have_go())
        cr_skip_test("go is not installed");
    weft__pprof_vt types[] = {{"samples", "count"}, {"cpu", "nanoseconds"}};
    weft__pprof *p = weft__pprof_new(types, 2, (weft__pprof_vt){"cpu", "nanoseconds"}, 10000000);
    cr_assert_eq(weft__pprof_add_mapping(p, 0x1000, 0x3000, 0, "/fake/bin", "abcd"), 0);
    cr_assert_eq(weft__pprof_add_mapping(p, 0x3000, 0x4000, 0x1000, "/fake/libg.so", NULL), 0);
    weft__pprof_set_time(p, 1700000000000000000LL, 1000000000);
    uintptr_t hot[] = {0x1010, 0x2011}, warm[] = {0x3010, 0x2011};
    add(p, hot, 2, 5, "1");
    add(p, hot, 2, 2, "1");
    add(p, warm, 2, 3, "2");
    char path[] = "/tmp/weft_pprof_goXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    fakectx c = {0};
    cr_assert_eq(weft__pprof_write(p, fd, fakesym, &c), 0);
    close(fd);
    weft__pprof_free(p);

    char *raw = gopprof("-raw", path);
    cr_log_info("go tool pprof -raw:\n%s", raw);
    cr_assert(strstr(raw, "PeriodType: cpu nanoseconds"), "%s", raw);
    cr_assert(strstr(raw, "Period: 10000000"), "%s", raw);
    cr_assert(strstr(raw, "samples/count cpu/nanoseconds"), "%s", raw);
    cr_assert(strstr(raw, "7   70000000: 1 2 "), "%s", raw);
    cr_assert(strstr(raw, "3   30000000: 3 2 "), "%s", raw);
    cr_assert(strstr(raw, "goroutine:[1]"), "%s", raw);
    cr_assert(strstr(raw, "alpha alpha.c:11"), "%s", raw);
    cr_assert(strstr(raw, "beta beta.c:20"), "%s", raw);
    cr_assert(strstr(raw, "gamma"), "%s", raw);
    cr_assert(strstr(raw, "/fake/bin abcd"), "%s", raw);

    char *top = gopprof("-top -sample_index=samples", path);
    cr_log_info("go tool pprof -top -sample_index=samples:\n%s", top);
    cr_assert(strstr(top, "Showing nodes accounting for 10, 100% of 10 total"), "%s", top);
    cr_assert(toprow(top, "alpha", "7", "7"), "%s", top);
    cr_assert(toprow(top, "gamma", "3", "3"), "%s", top);
    cr_assert(toprow(top, "beta", "0", "10"), "%s", top);
    char *cpu = gopprof("-top", path);
    cr_log_info("go tool pprof -top:\n%s", cpu);
    cr_assert(toprow(cpu, "alpha", "70ms", "70ms"), "%s", cpu);
    cr_assert(toprow(cpu, "beta", "0", "100ms"), "%s", cpu);
    free(raw);
    free(top);
    free(cpu);
    unlink(path);
}

/* Writes a two-frame goroutine profile (pprof_test_caller -> leaf, count
 * v) symbolized by sym (NULL: bare addresses) and checks that go tool
 * pprof -top charges v to both functions. */
static void go_reads_leaf_profile(weft__pprof_symbolizer sym, int64_t v, const char *how)
{
    weft__pprof_vt one = {"goroutine", "count"};
    weft__pprof *p = weft__pprof_new(&one, 1, one, 1);
    cr_assert_eq(weft__pprof_add_proc_mappings(p, 0), 0);
    uintptr_t st[] = {(uintptr_t)pprof_test_leaf, pprof_test_caller()};
    cr_assert_eq(weft__pprof_add(p, st, 2, true, &v, NULL, NULL), 0);
    char path[] = "/tmp/weft_pprof_goXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(weft__pprof_write(p, fd, sym, NULL), 0);
    close(fd);
    weft__pprof_free(p);
    if (sym)
        weft__symtab_fini();
    char *top = gopprof("-top", path);
    cr_log_info("go tool pprof -top (%s):\n%s", how, top);
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)v);
    cr_assert(toprow(top, "pprof_test_leaf", n, n), "%s", top);
    cr_assert(toprow(top, "pprof_test_caller", "0", n), "%s", top);
    free(top);
    unlink(path);
}

Test(pprof, go_tool_pprof_reads_a_self_symbolized_profile, .timeout = 120)
{
    if (!have_go())
        cr_skip_test("go is not installed");
    go_reads_leaf_profile(weft__symtab_pprof, 4, "self-symbolized");
}

/* With no symbolizer, the Locations are bare addresses and the mapping says
 * has_functions=false: pprof finds this binary through the mapping (file,
 * start, offset, build id) and names the functions itself. */
Test(pprof, go_tool_pprof_symbolizes_bare_addresses_through_mappings, .timeout = 120)
{
    if (!have_go())
        cr_skip_test("go is not installed");
    go_reads_leaf_profile(NULL, 6, "symbolized by pprof");
}
