/*
 * httpreq.h — the debug server's reading of what a client sent: the HTTP/1.x
 * request head, query values, and the addresses of /debug/pprof/symbol.
 *
 * Pure functions over bytes (no I/O, no allocation, no runtime), so that
 * the one part of the debug server that parses hostile input can be
 * fuzzed on its own (tests/fuzz/fuzz_httpreq.c).  The grammar accepted is
 * written down in httpreq.c and in docs/formats.md (the debug server
 * endpoints).
 */
#ifndef WEFT_HTTPREQ_H
#define WEFT_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    WEFT__HTTP_OTHER = 0,   /* a well-formed method the server does not serve (405) */
    WEFT__HTTP_GET,
    WEFT__HTTP_HEAD,
    WEFT__HTTP_POST,
};

typedef struct weft__httpreq {
    int method;             /* WEFT__HTTP_* */
    char *path;             /* in the head, NUL-terminated: starts with '/' */
    char *query;            /* in the head, NUL-terminated: after the first '?'; NULL if none */
    int minor;              /* HTTP/1.<minor>, 0..9 */
    int64_t clen;           /* Content-Length (saturated at INT64_MAX), -1 if absent */
} weft__httpreq;

/* The length of the request head at the start of buf[0..n): the bytes up to
 * and including the empty line that ends it (a line ends with "\n", an
 * optional "\r" before it belonging to the line), or 0 if that line has
 * not arrived. */
size_t weft__http_headlen(const char *buf, size_t n);

/* Parses the head buf[0..hlen) (hlen from weft__http_headlen), writing NULs
 * into the request line to split it, and fills *req.  Returns 0, 400 (a
 * malformed request line or header line, or a bad or conflicting
 * Content-Length) or 405 (a well-formed request whose method is not GET,
 * HEAD or POST: req->method is WEFT__HTTP_OTHER, the rest is filled). */
int weft__http_parse(char *buf, size_t hlen, weft__httpreq *req);

/* Go's r.FormValue(key) on a raw query ("a=1&b=%32"): copies the first
 * value of key, unescaped (%XX, '+' is a space), into v (vlen > 0) and
 * returns true; false if no pair has that key.  Pairs with a bad escape
 * are skipped, as Go's ParseQuery does.  A value that does not fit in v
 * becomes "?" (never a number).  query may be NULL. */
bool weft__http_query(const char *query, const char *key, char *v, size_t vlen);

/* strconv.Atoi for small numbers: an optional sign and 1..9 decimal digits,
 * nothing else.  False otherwise. */
bool weft__http_atoi(const char *s, long *out);

/* The next '+'-separated word of a /debug/pprof/symbol request from *p
 * (which advances past it and its '+'; NULL once the list is used up), as
 * Go's strconv.ParseUint(word, 0, 64): "0x"/"0X" hex, "0o"/"0O" or a
 * leading "0" octal, "0b"/"0B" binary, else decimal; no sign, no space,
 * no underscore.  The address, or 0 for a word that is not one (or is 0,
 * or does not fit in 64 bits): Go ignores those words too. */
uint64_t weft__http_nextaddr(const char **p);

#endif
