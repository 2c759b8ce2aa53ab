/*
 * scheddebug.c — parsing SCHEDDEBUG (Go's GODEBUG parsing, but loud: every
 * malformed or unknown entry gets one warning naming it).
 *
 *   SCHEDDEBUG=schedtrace=1000,scheddetail=1,traceback=all,hogwarn=50,tracefile=run.trace
 *   SCHEDDEBUG=lockcycle=fatal
 *   SCHEDDEBUG=flightrecorder=crash.trace
 *   SCHEDDEBUG=tracebackancestors=5,blockwarn=60
 */
#include <string.h>

#include "scheddebug.h"

weft__scheddebug weft__debug = { .traceback = TRACEBACK_SINGLE, .lockcycle = LOCKCYCLE_REPORT };

#define INT_LIMIT 2147483647L   /* as Go's ParseInt(value, 10, 32) */

/* A non-negative decimal of at most INT_LIMIT, exactly the bytes [p, p+n). */
static bool parse_ms(const char *p, size_t n, int *out, const char **why)
{
    if (n == 0) {
        *why = "empty value";
        return false;
    }
    if (p[0] == '-') {
        *why = "negative value";
        return false;
    }
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            *why = "not a decimal number";
            return false;
        }
        v = v * 10 + (p[i] - '0');
        if (v > INT_LIMIT) {
            *why = "number too large";
            return false;
        }
    }
    *out = (int)v;
    return true;
}

/* parse_ms for a setting that is 0 or 1. */
static bool parse_flag(const char *p, size_t n, int *out, const char **why)
{
    if (!parse_ms(p, n, out, why))
        return false;
    if (*out > 1) {
        *why = "want 0 or 1";
        return false;
    }
    return true;
}

/* A path value into out (WEFT_SCHEDDEBUG_PATHMAX bytes). */
static void parse_path(const char *v, size_t vlen, char *out, const char **why)
{
    if (vlen == 0) {
        *why = "empty value";
    } else if (vlen >= WEFT_SCHEDDEBUG_PATHMAX) {
        *why = "path too long";
    } else {
        memcpy(out, v, vlen);
        out[vlen] = 0;
    }
}

static bool eq(const char *p, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(p, lit, n) == 0;
}

int weft__scheddebug_parse(const char *s, weft__scheddebug *out,
                           weft__scheddebug_warnf warn, void *arg)
{
    weft__scheddebug d = { .traceback = TRACEBACK_SINGLE, .lockcycle = LOCKCYCLE_REPORT };
    int bad = 0;
    if (s) {
        const char *p = s;
        for (;;) {
            const char *end = strchr(p, ',');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            const char *why = NULL;
            const char *eqs = memchr(p, '=', len);
            if (len == 0) {
                /* "a,,b" or a trailing comma; an empty whole string is fine */
                if (end || p != s)
                    why = "empty entry";
            } else if (!eqs) {
                why = "want name=value";
            } else {
                size_t klen = (size_t)(eqs - p);
                const char *v = eqs + 1;
                size_t vlen = len - klen - 1;
                int n = 0;
                if (klen == 0) {
                    why = "empty name";
                } else if (eq(p, klen, "schedtrace")) {
                    if (parse_ms(v, vlen, &n, &why))
                        d.schedtrace = n;
                } else if (eq(p, klen, "scheddetail")) {
                    if (parse_flag(v, vlen, &n, &why))
                        d.scheddetail = n;
                } else if (eq(p, klen, "hogwarn")) {
                    if (parse_ms(v, vlen, &n, &why))
                        d.hogwarn = n;
                } else if (eq(p, klen, "tracebackancestors")) {
                    if (parse_ms(v, vlen, &n, &why)) {
                        if (n > WEFT_ANCESTORS_MAX)
                            why = "want at most 100";
                        else
                            d.tracebackancestors = n;
                    }
                } else if (eq(p, klen, "compactstacks")) {
                    if (parse_flag(v, vlen, &n, &why))
                        d.compactstacks = n;
                } else if (eq(p, klen, "blockwarn")) {
                    if (parse_ms(v, vlen, &n, &why))
                        d.blockwarn = n;
                } else if (eq(p, klen, "tracefile")) {
                    parse_path(v, vlen, d.tracefile, &why);
                } else if (eq(p, klen, "flightrecorder")) {
                    parse_path(v, vlen, d.flightrecorder, &why);
                } else if (eq(p, klen, "traceback")) {
                    if (eq(v, vlen, "none"))
                        d.traceback = TRACEBACK_NONE;
                    else if (eq(v, vlen, "single"))
                        d.traceback = TRACEBACK_SINGLE;
                    else if (eq(v, vlen, "all"))
                        d.traceback = TRACEBACK_ALL;
                    else
                        why = "want none, single or all";
                } else if (eq(p, klen, "lockcycle")) {
                    if (eq(v, vlen, "0"))
                        d.lockcycle = LOCKCYCLE_OFF;
                    else if (eq(v, vlen, "1"))
                        d.lockcycle = LOCKCYCLE_REPORT;
                    else if (eq(v, vlen, "fatal"))
                        d.lockcycle = LOCKCYCLE_FATAL;
                    else
                        why = "want 0, 1 or fatal";
                } else {
                    why = "unknown name";
                }
            }
            if (why) {
                bad++;
                if (warn)
                    warn(p, len, why, arg);
            }
            if (!end)
                break;
            p = end + 1;
        }
    }
    *out = d;
    return bad;
}
