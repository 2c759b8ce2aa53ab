/*
 * httpreq.c — the debug server's request parser (httpreq.h): what a client
 * sent, read without trusting it.
 *
 * The grammar (RFC 9112's, narrowed to what the debug server serves):
 *
 *   head         = request-line *( header-line ) empty-line
 *   request-line = method SP target SP "HTTP/1." DIGIT EOL
 *   method       = 1*( "A".."Z" )
 *   target       = "/" *( %x21-7E )              ; no space, no control byte
 *   header-line  = name ":" *( HT / %x20-7E / %x80-FF ) EOL
 *   name         = 1*tchar                       ; RFC 9110's token
 *   empty-line   = EOL
 *   EOL          = [ CR ] LF
 *
 * A line that does not match is 400, as is a header line that starts with
 * whitespace (obsolete line folding, which Go rejects too) or a NUL
 * anywhere.  Content-Length (any case) must be digits between optional
 * spaces or tabs; repeated, every copy must agree (Go's rule, against
 * request smuggling).  Other headers are not interpreted.  The head is at
 * most as long as the server's buffer (HDR_MAX in debugserver.c); that
 * bound, and the bound on the body, are the server's.
 */
#include <string.h>
#include <strings.h>

#include "httpreq.h"

size_t weft__http_headlen(const char *buf, size_t n)
{
    /* Each line starts at 0 or after a LF; the first that is empty, or
     * just a CR, ends the head. */
    for (size_t line = 0; line < n;) {
        const char *nl = memchr(buf + line, '\n', n - line);
        if (!nl)
            return 0;
        size_t end = (size_t)(nl - buf);
        if (end == line || (end == line + 1 && buf[line] == '\r'))
            return end + 1;
        line = end + 1;
    }
    return 0;
}

/* RFC 9110's tchar. */
static bool tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A byte a header value may hold: HT, visible ASCII and space, obs-text. */
static bool valuebyte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Parses a Content-Length value [v, e): digits between optional spaces or
 * tabs, saturated at INT64_MAX.  -1 if malformed. */
static int64_t contentlength(const char *v, const char *e)
{
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (v == e)
        return -1;
    int64_t n = 0;
    for (; v < e; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        int d = *v - '0';
        n = n > (INT64_MAX - d) / 10 ? INT64_MAX : n * 10 + d;
    }
    return n;
}

int weft__http_parse(char *buf, size_t hlen, weft__httpreq *req)
{
    *req = (weft__httpreq){ .method = WEFT__HTTP_OTHER, .clen = -1 };
    char *end = buf + hlen;
    char *nl = memchr(buf, '\n', hlen);
    if (!nl)
        return 400;
    char *eol = nl > buf && nl[-1] == '\r' ? nl - 1 : nl;

    /* The request line: [buf, eol). */
    char *m = buf;
    while (m < eol && *m >= 'A' && *m <= 'Z')
        m++;
    if (m == buf || m == eol || *m != ' ')
        return 400;
    char *target = m + 1, *t = target;
    while (t < eol && (unsigned char)*t > ' ' && (unsigned char)*t < 0x7f)
        t++;
    if (t == target || *target != '/' || t == eol || *t != ' ')
        return 400;
    char *ver = t + 1;
    if (eol - ver != 8 || memcmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9')
        return 400;

    /* The header lines, up to the empty one, which must end the head. */
    bool ended = false;
    for (char *line = nl + 1; line < end;) {
        char *lnl = memchr(line, '\n', (size_t)(end - line));
        if (!lnl)
            return 400;
        char *le = lnl > line && lnl[-1] == '\r' ? lnl - 1 : lnl;
        if (le == line) {
            if (lnl + 1 != end)
                return 400;
            ended = true;
            break;
        }
        char *colon = line;
        while (colon < le && tchar((unsigned char)*colon))
            colon++;
        if (colon == line || colon == le || *colon != ':')
            return 400;
        for (char *v = colon + 1; v < le; v++)
            if (!valuebyte((unsigned char)*v))
                return 400;
        if (colon - line == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            int64_t n = contentlength(colon + 1, le);
            if (n < 0 || (req->clen >= 0 && req->clen != n))
                return 400;
            req->clen = n;
        }
        line = lnl + 1;
    }
    if (!ended)
        return 400;     /* not a head weft__http_headlen measured */

    /* Well-formed: split the request line in place. */
    *m = 0;
    *t = 0;
    *eol = 0;
    char *q = memchr(target, '?', (size_t)(t - target));
    if (q) {
        *q = 0;
        req->query = q + 1;
    }
    req->path = target;
    req->minor = ver[7] - '0';
    req->method = strcmp(buf, "GET") == 0 ? WEFT__HTTP_GET :
                  strcmp(buf, "HEAD") == 0 ? WEFT__HTTP_HEAD :
                  strcmp(buf, "POST") == 0 ? WEFT__HTTP_POST : WEFT__HTTP_OTHER;
    return req->method == WEFT__HTTP_OTHER ? 405 : 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' :
           c >= 'a' && c <= 'f' ? c - 'a' + 10 :
           c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Go's QueryUnescape of [s, e) into out (NULL: only check, or compare
 * against want when want is not NULL).  Returns the decoded length, or -1
 * for a bad escape, -2 if it differs from want / does not fit in cap. */
static long unescape(const char *s, const char *e, char *out, size_t cap, const char *want)
{
    size_t n = 0;
    bool over = false;
    for (; s < e; s++, n++) {
        char c = *s;
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = e - s > 2 ? hexval(s[1]) : -1, lo = hi >= 0 ? hexval(s[2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi << 4 | lo);
            s += 2;
        }
        if (want && !over && (c == 0 || want[n] != c))
            over = true;    /* keep going: a bad escape later still voids the pair */
        if (out) {
            if (n + 1 >= cap || c == 0)
                over = true;    /* too long for out, or a NUL no C string can hold */
            else
                out[n] = c;
        }
    }
    if (want && !over && want[n] != 0)
        over = true;
    return over ? -2 : (long)n;
}

bool weft__http_query(const char *query, const char *key, char *v, size_t vlen)
{
    v[0] = 0;
    for (const char *p = query; p && *p;) {
        const char *amp = strchr(p, '&');
        const char *e = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        /* Go's ParseQuery: a pair with ';' or a bad escape is an error and
         * is skipped; the first good pair with the key wins. */
        if (e > p && !memchr(p, ';', (size_t)(e - p)) && unescape(p, ke, NULL, 0, key) >= 0) {
            long n = eq ? unescape(eq + 1, e, v, vlen, NULL) : 0;
            if (n != -1) {
                if (n == -2 && vlen >= 2)
                    memcpy(v, "?", 2);
                else
                    v[n < 0 ? 0 : n] = 0;
                return true;
            }
        }
        p = amp ? amp + 1 : NULL;
    }
    v[0] = 0;
    return false;
}

bool weft__http_atoi(const char *s, long *out)
{
    bool neg = *s == '-';
    s += *s == '-' || *s == '+';
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 9 || s[n] != 0)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    *out = neg ? -v : v;
    return true;
}

uint64_t weft__http_nextaddr(const char **p)
{
    const char *s = *p;
    const char *plus = strchr(s, '+');
    const char *e = plus ? plus : s + strlen(s);
    *p = plus ? plus + 1 : NULL;
    unsigned base = 10;
    if (e - s >= 2 && s[0] == '0') {
        char c = (char)(s[1] | 0x20);
        base = c == 'x' ? 16 : c == 'o' ? 8 : c == 'b' ? 2 : 8;
        s += base == 8 && c != 'o' ? 1 : 2;
        if (s == e)
            return 0;       /* "0x" alone */
    }
    if (s == e)
        return 0;
    uint64_t v = 0;
    for (; s < e; s++) {
        int d = hexval(*s);
        if (d < 0 || (unsigned)d >= base || v > (UINT64_MAX - (unsigned)d) / base)
            return 0;
        v = v * base + (unsigned)d;
    }
    return v;
}
