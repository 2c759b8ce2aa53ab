/*
 * fuzz_httpreq.c — libFuzzer harness for the debug server's request parser
 * (runtime/diag/httpreq.c, pure functions over what a client sent).
 *
 * fuzz-sources: runtime/diag/httpreq.c
 * fuzz-max-len: 2048
 *
 * Every input is used four ways, each checked against a reference written
 * here separately from httpreq.c (from the grammar at the top of that file
 * and Go's rules), trapping on any difference or violation:
 *
 *   - weft__http_headlen over the whole input: the length of the head (the
 *     bytes through the first empty line) or 0, as the reference finds it,
 *     never more than the input; and the same on every prefix the server
 *     would scan from a line start (readhead resumes at the last LF);
 *   - weft__http_parse over that head, in an exactly-sized copy (ASan sees
 *     any access outside it): the status (0, 400, 405), the method, path,
 *     query, version and Content-Length agree with the reference; on
 *     success the request line rebuilt from the parts is the line sent,
 *     and nothing but the request line was written to;
 *   - weft__http_query on the input as a query (up to its first NUL), with
 *     the keys "debug" and "seconds" and a key taken from the input: the
 *     reference decodes every pair first, then looks;
 *   - weft__http_nextaddr over the input as a '+'-separated list: each
 *     address agrees with the reference (which accumulates in 128 bits),
 *     and the walk ends after exactly as many words as there are.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "diag/httpreq.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

/* ---- the head's length ---------------------------------------------------------- */

/* Lines first (split at LF), then the first empty one. */
static size_t ref_headlen(const char *b, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] != '\n')
            continue;
        size_t len = i - start;
        if (len == 0 || (len == 1 && b[start] == '\r'))
            return i + 1;
        start = i + 1;
    }
    return 0;
}

/* ---- the request ------------------------------------------------------------------ */

typedef struct line {
    const char *p;
    size_t n;           /* without the LF and a CR before it */
} line;

static int istchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    for (size_t i = 0; i < sizeof extra - 1; i++)
        if (c == (unsigned char)extra[i])
            return 1;
    return 0;
}

typedef struct refreq {
    int status;
    char method[16];    /* "" if longer */
    const char *target; /* into the original head */
    size_t targetlen;
    int minor;
    int64_t clen;
} refreq;

/* Content-Length's value: -2 if malformed. */
static int64_t ref_clen(const char *v, size_t n)
{
    size_t a = 0, b = n;
    while (a < b && (v[a] == ' ' || v[a] == '\t'))
        a++;
    while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
        b--;
    if (a == b)
        return -2;
    unsigned __int128 x = 0;
    for (size_t i = a; i < b; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -2;
        x = x * 10 + (unsigned)(v[i] - '0');
        if (x > INT64_MAX)
            x = INT64_MAX;      /* saturates, and stays there */
    }
    return (int64_t)x;
}

/* Checks a head already split into its lines (the last one empty). */
static refreq ref_request(const line *lines, size_t nl)
{
    refreq r = { .status = 400, .clen = -1 };
    for (size_t i = 0; i + 1 < nl; i++)
        if (lines[i].n == 0)
            return r;           /* the first empty line ends the head */

    /* The request line: three fields separated by single spaces. */
    line rl = lines[0];
    const char *sp1 = memchr(rl.p, ' ', rl.n);
    if (!sp1)
        return r;
    size_t ml = (size_t)(sp1 - rl.p);
    const char *tg = sp1 + 1;
    const char *sp2 = memchr(tg, ' ', rl.n - ml - 1);
    if (!sp2)
        return r;
    size_t tl = (size_t)(sp2 - tg);
    const char *ver = sp2 + 1;
    size_t vl = rl.n - ml - 1 - tl - 1;
    if (ml == 0 || tl == 0 || tg[0] != '/')
        return r;
    for (size_t i = 0; i < ml; i++)
        if (rl.p[i] < 'A' || rl.p[i] > 'Z')
            return r;
    for (size_t i = 0; i < tl; i++)
        if ((unsigned char)tg[i] < 0x21 || (unsigned char)tg[i] > 0x7e)
            return r;
    if (vl != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9')
        return r;

    /* The header lines. */
    int64_t clen = -1;
    for (size_t i = 1; i + 1 < nl; i++) {
        line l = lines[i];
        const char *colon = memchr(l.p, ':', l.n);
        if (!colon || colon == l.p)
            return r;
        size_t nlen = (size_t)(colon - l.p);
        for (size_t k = 0; k < nlen; k++)
            if (!istchar((unsigned char)l.p[k]))
                return r;
        for (size_t k = nlen + 1; k < l.n; k++) {
            unsigned char c = (unsigned char)l.p[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return r;
        }
        if (nlen == 14 && strncasecmp(l.p, "content-length", 14) == 0) {
            int64_t v = ref_clen(colon + 1, l.n - nlen - 1);
            if (v == -2 || (clen != -1 && clen != v))
                return r;
            clen = v;
        }
    }
    if (ml < sizeof r.method) {
        memcpy(r.method, rl.p, ml);
        r.method[ml] = 0;
    }
    r.clen = clen;
    r.target = tg;
    r.targetlen = tl;
    r.minor = ver[7] - '0';
    r.status = strcmp(r.method, "GET") == 0 || strcmp(r.method, "HEAD") == 0 ||
               strcmp(r.method, "POST") == 0 ? 0 : 405;
    return r;
}

/* The head split into lines first (at LF, a CR before it dropped), then
 * checked line by line. */
static refreq ref_parse(const char *h, size_t hlen)
{
    refreq r = { .status = 400, .clen = -1 };
    line *lines = malloc((hlen + 1) * sizeof *lines);
    CHECK(lines != NULL);
    size_t nl = 0, start = 0;
    for (size_t i = 0; i < hlen; i++)
        if (h[i] == '\n') {
            size_t n = i - start;
            if (n > 0 && h[i - 1] == '\r')
                n--;
            lines[nl++] = (line){ h + start, n };
            start = i + 1;
        }
    /* A head ends with its one empty line, and has a request line before. */
    if (nl >= 2 && lines[nl - 1].n == 0 && start == hlen)
        r = ref_request(lines, nl);
    free(lines);
    return r;
}

static const char *methodname(int m)
{
    return m == WEFT__HTTP_GET ? "GET" : m == WEFT__HTTP_HEAD ? "HEAD" :
           m == WEFT__HTTP_POST ? "POST" : NULL;
}

static void check_head(const char *in, size_t n)
{
    size_t h = weft__http_headlen(in, n);
    CHECK(h == ref_headlen(in, n));
    CHECK(h <= n);
    /* The server scans again from the start of each line it had not seen
     * the end of: the same head, counted from there. */
    int starts = 0;
    for (size_t from = 1; from < n && starts < 32; from++)
        if (in[from - 1] == '\n') {
            starts++;
            size_t hf = weft__http_headlen(in + from, n - from);
            CHECK(hf == ref_headlen(in + from, n - from));
            if (from < h)
                CHECK(from + hf == h);
        }
    if (h == 0)
        return;

    char *buf = malloc(h);
    CHECK(buf != NULL);
    memcpy(buf, in, h);
    weft__httpreq req;
    memset(&req, 0xA5, sizeof req);
    int st = weft__http_parse(buf, h, &req);
    refreq ref = ref_parse(in, h);
    CHECK(st == ref.status);
    if (st == 400) {
        CHECK(memcmp(buf, in, h) == 0);     /* untouched */
        free(buf);
        return;
    }
    CHECK(st == 0 || st == 405);
    CHECK(req.clen == ref.clen);
    CHECK(req.minor == ref.minor);
    const char *name = methodname(req.method);
    CHECK(st == 405 ? req.method == WEFT__HTTP_OTHER : name != NULL);
    CHECK(st == 405 || strcmp(name, ref.method) == 0);

    /* path and query lie in the request line, NUL-terminated there. */
    const char *nl = memchr(in, '\n', h);
    size_t rl = (size_t)(nl - in);
    CHECK(req.path > buf && req.path < buf + rl);
    CHECK(req.path[0] == '/');
    size_t pl = strlen(req.path), ql = 0;
    CHECK(req.path + pl < buf + rl + 1);
    if (req.query) {
        CHECK(req.query == req.path + pl + 1);
        ql = strlen(req.query);
        CHECK(req.query + ql < buf + rl + 1);
        CHECK(memchr(req.path, '?', pl) == NULL);
    }
    /* The target is path, then '?' and query if there was one. */
    CHECK(pl + (req.query ? 1 + ql : 0) == ref.targetlen);
    CHECK(memcmp(req.path, ref.target, pl) == 0);
    if (req.query)
        CHECK(ref.target[pl] == '?' && memcmp(req.query, ref.target + pl + 1, ql) == 0);
    else
        CHECK(memchr(ref.target, '?', ref.targetlen) == NULL);
    /* Rebuilt from the parts (the method from the reference: a 405 method
     * has no name in req), the request line is what was sent. */
    if (ref.method[0]) {
        char *rebuilt = malloc(rl + 64);
        CHECK(rebuilt != NULL);
        size_t k = 0;
        k += (size_t)strlen(strcpy(rebuilt, ref.method));
        rebuilt[k++] = ' ';
        memcpy(rebuilt + k, req.path, pl);
        k += pl;
        if (req.query) {
            rebuilt[k++] = '?';
            memcpy(rebuilt + k, req.query, ql);
            k += ql;
        }
        memcpy(rebuilt + k, " HTTP/1.", 8);
        k += 8;
        rebuilt[k++] = (char)('0' + req.minor);
        size_t want = rl - (rl > 0 && in[rl - 1] == '\r');
        CHECK(k == want && memcmp(rebuilt, in, k) == 0);
        free(rebuilt);
    }
    /* Only the request line was written to. */
    CHECK(memcmp(buf + rl + 1, in + rl + 1, h - rl - 1) == 0);
    free(buf);
}

/* ---- query values ------------------------------------------------------------------ */

static int hexv(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Go's QueryUnescape of [s, s+n) into out (room for n): the length, or -1. */
static long ref_unescape(const char *s, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n)
                return -1;      /* fewer than two characters follow */
            int hi = hexv(s[i + 1]), lo = hexv(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            out[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[k++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    return (long)k;
}

/* Go's ParseQuery then FormValue: every pair decoded first, the first good
 * one with the key wins.  found: 0, or 1 with the value in val/vlen. */
static int ref_query(const char *q, const char *key, char *val, long *vlen)
{
    size_t n = strlen(q), klen = strlen(key);
    char *k = malloc(n + 1), *v = malloc(n + 1);
    CHECK(k && v);
    int found = 0;
    for (size_t a = 0; a <= n && !found;) {
        size_t b = a;
        while (b < n && q[b] != '&')
            b++;
        if (b > a && !memchr(q + a, ';', b - a)) {
            const char *eq = memchr(q + a, '=', b - a);
            size_t ke = eq ? (size_t)(eq - q) : b;
            long kl = ref_unescape(q + a, ke - a, k);
            long vl = eq ? ref_unescape(eq + 1, b - ke - 1, v) : 0;
            if (kl >= 0 && vl >= 0 && (size_t)kl == klen && memcmp(k, key, klen) == 0) {
                memcpy(val, v, (size_t)vl);
                *vlen = vl;
                found = 1;
            }
        }
        a = b + 1;
    }
    free(k);
    free(v);
    return found;
}

static void check_query(const char *q, const char *key)
{
    static const size_t sizes[] = { 1, 2, 8, 32 };
    size_t n = strlen(q);
    char *want = malloc(n + 1);
    CHECK(want != NULL);
    long wl = 0;
    int found = ref_query(q, key, want, &wl);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t vlen = sizes[s];
        char *v = malloc(vlen);
        CHECK(v != NULL);
        memset(v, 0xA5, vlen);
        bool got = weft__http_query(q, key, v, vlen);
        CHECK(got == (found != 0));
        CHECK(memchr(v, 0, vlen) != NULL);      /* always a C string */
        if (got) {
            bool fits = (size_t)wl < vlen && !memchr(want, 0, (size_t)wl);
            if (fits)
                CHECK(strlen(v) == (size_t)wl && memcmp(v, want, (size_t)wl) == 0);
            else
                CHECK(strcmp(v, vlen >= 2 ? "?" : "") == 0);
        } else {
            CHECK(v[0] == 0);
        }
        free(v);
    }
    free(want);
}

/* ---- symbol addresses ----------------------------------------------------------- */

static uint64_t ref_addr(const char *w, size_t n)
{
    unsigned base = 10;
    size_t i = 0;
    if (n >= 2 && w[0] == '0') {
        if (w[1] == 'x' || w[1] == 'X')
            base = 16, i = 2;
        else if (w[1] == 'o' || w[1] == 'O')
            base = 8, i = 2;
        else if (w[1] == 'b' || w[1] == 'B')
            base = 2, i = 2;
        else
            base = 8, i = 1;
    }
    if (i == n)
        return 0;
    unsigned __int128 x = 0;
    for (; i < n; i++) {
        int d = hexv(w[i]);
        if (d < 0 || (unsigned)d >= base)
            return 0;
        x = x * base + (unsigned)d;
        if (x > UINT64_MAX)
            return 0;
    }
    return (uint64_t)x;
}

static void check_addrs(const char *s)
{
    size_t words = 1;
    for (const char *c = s; *c; c++)
        words += *c == '+';
    const char *p = s, *w = s;
    size_t seen = 0;
    while (p) {
        const char *before = p;
        CHECK(before == w);
        uint64_t got = weft__http_nextaddr(&p);
        const char *e = strchr(w, '+');
        size_t n = e ? (size_t)(e - w) : strlen(w);
        CHECK(got == ref_addr(w, n));
        CHECK(p == (e ? e + 1 : NULL));
        w = e ? e + 1 : NULL;
        seen++;
    }
    CHECK(seen == words);
}

/* ---- one input ------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The raw bytes, exactly sized (the head parser never needs a NUL). */
    char *raw = malloc(size ? size : 1);
    CHECK(raw != NULL);
    memcpy(raw, data, size);
    check_head(raw, size);
    free(raw);

    /* As C strings: the query up to the first NUL, a key after it. */
    char *s = malloc(size + 1);
    CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = 0;
    size_t n = strlen(s);
    const char *key = n < size ? s + n + 1 : "";
    check_query(s, "debug");
    check_query(s, "seconds");
    check_query(s, key);
    check_addrs(s);
    free(s);
    return 0;
}
