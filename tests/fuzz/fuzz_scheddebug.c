/*
 * fuzz_scheddebug.c — libFuzzer harness for the SCHEDDEBUG parser
 * (runtime/diag/scheddebug.c, a pure function).
 *
 * fuzz-sources: runtime/diag/scheddebug.c
 *
 * For every input it checks, trapping on any violation:
 *   - the result is in range: schedtrace, hogwarn >= 0; scheddetail 0 or 1;
 *     traceback one of TRACEBACK_NONE / SINGLE / ALL; tracefile a string
 *     (NUL inside the array) holding no ',';
 *   - the return value equals the number of warnings delivered;
 *   - every warned (entry, len) lies inside the string, holds no ',' and
 *     comes with a reason; warnings <= comma-separated items;
 *   - the input is not written to, and the same input parses the same way
 *     twice (and with warn == NULL);
 *   - an independent reference parser below, written from the rules in
 *     scheddebug.c and tests/test_schedtrace.c, gets the same result, the
 *     same warned entries and the same reasons.
 *
 * The parser sees a C string, so it stops at the first NUL.  The input is
 * copied into an exactly-sized buffer plus a NUL (so ASan catches any read
 * past the terminator); the bytes after an embedded NUL are parsed as a
 * second string of their own, so both halves of such an input are used.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag/scheddebug.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* ---- recording warnings ------------------------------------------------------- */

typedef struct warning {
    size_t off, len;
    const char *why;
} warning;

typedef struct recorder {
    const char *s;      /* the string being parsed */
    size_t slen;        /* strlen(s) */
    warning *w;
    size_t n, cap;
} recorder;

static void record(const char *entry, size_t len, const char *why, void *arg)
{
    recorder *r = arg;
    CHECK(r->n < r->cap);                     /* more warnings than items */
    CHECK(entry >= r->s && entry <= r->s + r->slen);
    CHECK(len <= (size_t)(r->s + r->slen - entry));
    CHECK(memchr(entry, ',', len) == NULL);
    CHECK(why != NULL && why[0] != '\0');
    (void)strlen(why);                        /* a real string (ASan checks) */
    r->w[r->n++] = (warning){ (size_t)(entry - r->s), len, why };
}

static void never_called(const char *entry, size_t len, const char *why, void *arg)
{
    (void)entry, (void)len, (void)why, (void)arg;
    __builtin_trap();
}

/* ---- the reference parser ------------------------------------------------------ */
/*
 * Written separately from scheddebug.c: items first, then each item on its
 * own.  Rules (scheddebug.c comments, tests/test_schedtrace.c):
 *   - items are separated by ','; an empty item warns "empty entry", except
 *     that the whole string being empty is fine;
 *   - an item without '=' warns "want name=value"; the name is what precedes
 *     the first '=', the value everything after it (it may hold more '=');
 *   - an empty name warns "empty name", an unknown one "unknown name";
 *   - schedtrace, hogwarn: a non-negative decimal, digits only, at most
 *     2147483647 (leading zeros fine); scheddetail: such a number, 0 or 1;
 *     traceback: none, single or all; tracefile: a non-empty path shorter
 *     than WEFT_SCHEDDEBUG_PATHMAX ("empty value", "path too long"), kept
 *     verbatim;
 *   - a rejected item leaves the result alone; later items win.
 */

static const char *ref_number(const char *v, size_t n, int *out)
{
    if (n == 0)
        return "empty value";
    if (v[0] == '-')
        return "negative value";
    /* Scanning left to right, the first problem wins: a non-digit, or the
     * digits so far already exceeding the limit.  "Exceeds" is decided on
     * the digit string (significant digits vs "2147483647"), not by
     * arithmetic. */
    static const char lim[] = "2147483647";
    size_t sig0 = n;        /* index of the first significant digit */
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return "not a decimal number";
        if (sig0 == n && v[i] != '0')
            sig0 = i;
        if (sig0 != n) {
            size_t nsig = i + 1 - sig0;
            if (nsig > 10 || (nsig == 10 && memcmp(v + sig0, lim, 10) > 0))
                return "number too large";
        }
    }
    int x = 0;
    for (size_t i = sig0; i < n; i++)
        x = x * 10 + (v[i] - '0');   /* cannot overflow: checked above */
    *out = x;
    return NULL;
}

static int same(const char *p, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i]; i++)
        if (p[i] != lit[i])
            return 0;
    return i == n && lit[i] == '\0';
}

static const char *ref_item(const char *p, size_t len, weft__scheddebug *d)
{
    size_t k = 0;
    while (k < len && p[k] != '=')
        k++;
    if (k == len)
        return "want name=value";
    if (k == 0)
        return "empty name";
    const char *v = p + k + 1;
    size_t vn = len - k - 1;
    int x = 0;
    const char *why;
    if (same(p, k, "schedtrace")) {
        if (!(why = ref_number(v, vn, &x)))
            d->schedtrace = x;
        return why;
    }
    if (same(p, k, "hogwarn")) {
        if (!(why = ref_number(v, vn, &x)))
            d->hogwarn = x;
        return why;
    }
    if (same(p, k, "scheddetail")) {
        if ((why = ref_number(v, vn, &x)))
            return why;
        if (x != 0 && x != 1)
            return "want 0 or 1";
        d->scheddetail = x;
        return NULL;
    }
    if (same(p, k, "tracefile")) {
        if (vn == 0)
            return "empty value";
        if (vn + 1 > WEFT_SCHEDDEBUG_PATHMAX)
            return "path too long";
        for (size_t i = 0; i < vn; i++)
            d->tracefile[i] = v[i];
        d->tracefile[vn] = '\0';
        return NULL;
    }
    if (same(p, k, "traceback")) {
        static const struct { const char *name; int val; } tb[] = {
            { "none", TRACEBACK_NONE }, { "single", TRACEBACK_SINGLE }, { "all", TRACEBACK_ALL },
        };
        for (size_t i = 0; i < sizeof tb / sizeof tb[0]; i++)
            if (same(v, vn, tb[i].name)) {
                d->traceback = tb[i].val;
                return NULL;
            }
        return "want none, single or all";
    }
    return "unknown name";
}

/* Parses s[0, n) (n = strlen(s)); fills w[] (room for every item). */
static int ref_parse(const char *s, size_t n, weft__scheddebug *out, warning *w, size_t *nw)
{
    weft__scheddebug d = { .schedtrace = 0, .scheddetail = 0,
                           .traceback = TRACEBACK_SINGLE, .hogwarn = 0, .tracefile = "" };
    *nw = 0;
    if (n > 0) {
        size_t start = 0;
        for (size_t i = 0; i <= n; i++) {
            if (i < n && s[i] != ',')
                continue;
            size_t len = i - start;
            const char *why = len == 0 ? "empty entry" : ref_item(s + start, len, &d);
            if (why)
                w[(*nw)++] = (warning){ start, len, why };
            start = i + 1;
        }
    }
    *out = d;
    return (int)*nw;
}

/* ---- one string ----------------------------------------------------------------- */

static void check_result(const weft__scheddebug *d)
{
    CHECK(d->schedtrace >= 0);
    CHECK(d->hogwarn >= 0);
    CHECK(d->scheddetail == 0 || d->scheddetail == 1);
    CHECK(d->traceback == TRACEBACK_NONE || d->traceback == TRACEBACK_SINGLE ||
          d->traceback == TRACEBACK_ALL);
    CHECK(memchr(d->tracefile, '\0', sizeof d->tracefile) != NULL);
    CHECK(memchr(d->tracefile, ',', strlen(d->tracefile)) == NULL);
}

static int same_result(const weft__scheddebug *a, const weft__scheddebug *b)
{
    return a->schedtrace == b->schedtrace && a->scheddetail == b->scheddetail &&
           a->traceback == b->traceback && a->hogwarn == b->hogwarn &&
           strcmp(a->tracefile, b->tracefile) == 0;
}

static int same_warnings(const warning *a, size_t na, const warning *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].off != b[i].off || a[i].len != b[i].len || strcmp(a[i].why, b[i].why) != 0)
            return 0;
    return 1;
}

/* s is NUL-terminated; the parser must not look past it. */
static void check_string(const char *s)
{
    size_t n = strlen(s);
    size_t items = 1;
    for (size_t i = 0; i < n; i++)
        items += s[i] == ',';

    /* A private, exactly-sized copy so that writes to the input are seen
     * and reads past the NUL are caught by ASan. */
    char *in = malloc(n + 1);
    CHECK(in != NULL);
    memcpy(in, s, n + 1);

    warning *w1 = calloc(items, sizeof *w1), *w2 = calloc(items, sizeof *w2),
            *wr = calloc(items, sizeof *wr);
    CHECK(w1 && w2 && wr);

    weft__scheddebug d1, d2, d3, dr;
    memset(&d1, 0xA5, sizeof d1);   /* every field must be written */
    memset(&d2, 0x5A, sizeof d2);
    memset(&d3, 0xA5, sizeof d3);

    recorder r1 = { in, n, w1, 0, items };
    int ret1 = weft__scheddebug_parse(in, &d1, record, &r1);
    CHECK(memcmp(in, s, n + 1) == 0);          /* input untouched */
    check_result(&d1);
    CHECK(ret1 >= 0 && (size_t)ret1 == r1.n);  /* return value == warnings */
    CHECK((size_t)ret1 <= items);
    for (size_t i = 1; i < r1.n; i++)          /* in order, no overlap */
        CHECK(w1[i].off >= w1[i - 1].off + w1[i - 1].len + 1);
    if (n == 0)
        CHECK(ret1 == 0);                      /* an empty SCHEDDEBUG is fine */

    /* Deterministic: the same again, and the same without a callback. */
    recorder r2 = { in, n, w2, 0, items };
    int ret2 = weft__scheddebug_parse(in, &d2, record, &r2);
    CHECK(ret2 == ret1 && same_result(&d1, &d2));
    CHECK(same_warnings(w1, r1.n, w2, r2.n));
    int ret3 = weft__scheddebug_parse(in, &d3, NULL, NULL);
    CHECK(ret3 == ret1 && same_result(&d1, &d3));
    CHECK(memcmp(in, s, n + 1) == 0);

    /* Differential: the reference parser agrees on everything. */
    size_t nwr = 0;
    int retr = ref_parse(in, n, &dr, wr, &nwr);
    CHECK(retr == ret1);
    CHECK(same_result(&d1, &dr));
    CHECK(same_warnings(w1, r1.n, wr, nwr));

    free(w1);
    free(w2);
    free(wr);
    free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        /* NULL means "not set": the defaults, no warning. */
        weft__scheddebug d;
        memset(&d, 0xA5, sizeof d);
        CHECK(weft__scheddebug_parse(NULL, &d, never_called, NULL) == 0);
        CHECK(d.schedtrace == 0 && d.scheddetail == 0 && d.hogwarn == 0 &&
              d.traceback == TRACEBACK_SINGLE);
        once = 1;
    }

    char *buf = malloc(size + 1);
    CHECK(buf != NULL);
    memcpy(buf, data, size);
    buf[size] = '\0';

    check_string(buf);                   /* up to the first NUL */
    size_t n = strlen(buf);
    if (n < size)                        /* what follows the first NUL */
        check_string(buf + n + 1);

    free(buf);
    return 0;
}
