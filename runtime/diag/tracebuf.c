/*
 * tracebuf.c — the execution tracer's writer: event encoding, buffers,
 * the string and stack tables, and the thread that writes full buffers to
 * the file (the format and the buffer model: diag/trace.h; what the
 * scheduler emits when: runtime/trace.c).
 *
 *   P owner ──event──▶ its P's buffer ──full──▶ full list ──writer──▶ fd
 *   no P ──tracelock──▶ global buffer ──full──▶ full list
 *   stop: every buffer ──▶ full list; writer ends; footer (strings,
 *         stacks symbolized, frequency) ──▶ fd
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nosigpipe.h"
#include "print.h"
#include "schedview.h"
#include "symtab.h"
#include "trace.h"
#include "weft.h"       /* WEFT_MAXPROCS_MAX */

AO_t weft__trace_on;
uint32_t weft__trace_gen;

/* The global buffer, the full list and both tables. */
static weft__mutex tracelock = WEFT__MUTEX_INIT(LOCKRANK_TRACEBUF);

typedef struct {
    uint64_t id;
    int n;
    uintptr_t pcs[TRACE_MAXSTACK];
} tstack;

static struct {
    int fd;                     /* const while tracing */
    int err;                    /* writer: first write error */
    weft__tracebuf *global;     /* tracelock */
    weft__tracebuf *fullhead, *fulltail; /* tracelock: oldest first */
    /* The flight recorder keeps full buffers in two segments instead of
     * writing them (see "The flight recorder" below). */
    bool fr;                    /* const while recording */
    size_t frlimit;             /* const while recording: the bytes to keep */
    void (*checkpoint)(void);   /* const while recording */
    struct frseg {
        weft__tracebuf *head, *tail;    /* tracelock: oldest first */
        weft__tracebuf *declend;        /* world stopped: its last declaration buffer */
        size_t bytes;                   /* tracelock */
    } seg[2];
    int cur;                    /* world stopped: the segment being filled */
    weft__tracebuf *spare;      /* tracelock: free buffers, linked by link ... */
    size_t nspare;              /* ... and how many */
    weft__note wake;            /* the writer sleeps here between drains */
    AO_t quit;                  /* atomic: finish asks the writer to end */
    pthread_t writer;
    bool writer_started;
    /* the clocks when the trace or recorder began: tickfreq */
    int64_t tick0, ns0;         /* const while tracing */
    /* strings: id i+1 is strs[i] (tracelock) */
    char **strs;
    uint32_t nstrs, capstrs;
    uint32_t *strhash;          /* open addressing: index+1, 0 empty */
    uint32_t caphash;
    /* stacks: id i+1 is stks[i] (tracelock) */
    tstack *stks;
    uint32_t nstks, capstks;
    uint32_t *stkhash;
    uint32_t capstkhash;
} tr;

#define WRITER_PERIOD_NS (10 * 1000 * 1000)

/* ---- encoding ------------------------------------------------------------ */

/* Unsigned LEB128.  Most values of an event are small (a timestamp's
 * difference from the last event's, a goroutine id, a stack id): one or
 * two bytes without a loop. */
static inline uint32_t putvarint(uint8_t *p, uint64_t v)
{
    if (v < 0x80) {
        p[0] = (uint8_t)v;
        return 1;
    }
    if (v < 0x4000) {
        p[0] = (uint8_t)(v | 0x80);
        p[1] = (uint8_t)(v >> 7);
        return 2;
    }
    uint32_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* tracelock held. */
static void queue_full_locked(weft__tracebuf *b)
{
    b->link = NULL;
    b->queued = true;
    if (tr.fr) {
        struct frseg *sg = &tr.seg[tr.cur];
        if (sg->tail)
            sg->tail->link = b;
        else
            sg->head = b;
        sg->tail = b;
        sg->bytes += b->pos;
        return;
    }
    if (tr.fulltail)
        tr.fulltail->link = b;
    else
        tr.fullhead = b;
    tr.fulltail = b;
}

/* The global buffer is written under tracelock already. */
static void queue_full(weft__tracebuf **bufp)
{
    if (bufp == &tr.global) {
        queue_full_locked(*bufp);
    } else {
        weft__lock(&tracelock);
        queue_full_locked(*bufp);
        weft__unlock(&tracelock);
    }
}

/* Frees a list of buffers linked by link. */
static void freebufs(weft__tracebuf *b)
{
    while (b) {
        weft__tracebuf *next = b->link;
        free(b);
        b = next;
    }
}

/* A fresh buffer opened by its batch header.  NULL: out of memory (the
 * event is lost, the trace stays well formed). */
static weft__tracebuf *newbuf(weft__tracebuf **bufp, int32_t pid, int64_t now)
{
    /* A written buffer (drain) or a segment's (the recorder) is reused
     * while still resident: a fresh one costs page faults, up to 15 us a
     * page on a VM.  The global buffer's writers hold tracelock. */
    if (bufp != &tr.global)
        weft__lock(&tracelock);
    weft__tracebuf *b = tr.spare;
    if (b) {
        tr.spare = b->link;
        tr.nspare--;
    }
    if (bufp != &tr.global)
        weft__unlock(&tracelock);
    if (!b)
        b = malloc(sizeof *b);
    if (!b)
        return NULL;
    b->link = NULL;
    b->queued = false;
    unsigned int n = 0;
    b->data[n++] = TEV_BATCH | 1 << 6;
    /* a negative pid goes out as Go writes uint64(int32): sign-extended */
    n += putvarint(b->data + n, (uint64_t)(int64_t)pid);
    n += putvarint(b->data + n, (uint64_t)now);
    b->pos = n;     /* published with the buffer (room) */
    b->lastts = now;
    return b;
}

static __attribute__((noinline)) weft__tracebuf *nextbuf(weft__tracebuf **bufp, int32_t pid, int64_t now);

/* Makes room for an event of at most need bytes: the buffer, or NULL. */
static inline weft__tracebuf *room(weft__tracebuf **bufp, int32_t pid, uint32_t need, int64_t now)
{
    weft__tracebuf *b = *bufp;
    if (__builtin_expect(b && TRACE_BUFSIZE - b->pos >= need, 1))
        return b;
    return nextbuf(bufp, pid, now);
}

/* room's other case, once per 64 KiB: queues the full buffer and opens
 * the next. */
static __attribute__((noinline)) weft__tracebuf *nextbuf(weft__tracebuf **bufp, int32_t pid, int64_t now)
{
    weft__tracebuf *b = *bufp;
    /* The writer finds it at its next drain (a note cannot be woken
     * twice, and a wake-up per buffer would be a syscall per 64 KiB). */
    if (b)
        queue_full(bufp);
    b = newbuf(bufp, pid, now);
    /* store-release: the batch header and pos are written before a crash
     * can find the buffer (pairs with weft__trace_crash's load-acquire of
     * the P's buffer) */
    AO_store_release((AO_t *)bufp, (AO_t)b);
    return b;
}

#define MAXVARINT 10
/* Batch pids a window tracks: the global one (-1) and every P. */
#define WINDOW_PIDS (WEFT_MAXPROCS_MAX + 1)

/* Publishes the bytes appended to b up to pos. */
static inline void publish(weft__tracebuf *b, unsigned int pos)
{
    /* store-release: the event's bytes before its end (pairs with the
     * crash writer's load-acquire of pos); a plain store on x86-64 */
    AO_int_store_release(&b->pos, pos);
}

/* Encodes one event at the end of b, which has room for it, without
 * publishing it.  Returns its length. */
static inline __attribute__((always_inline)) uint32_t encode(weft__tracebuf *b, int64_t now, int ev,
                                                             const uint64_t *args, int nargs,
                       bool hasstk, uint64_t stk)
{
    /* The buffer has one writer at a time, but the writers of a P's
     * buffer change (the owner, sysmon retaking the P, the stopper): a
     * clock read by one may precede the last event of another by a few
     * ns.  Go's parser wants each batch in order. */
    if (now < b->lastts)
        now = b->lastts;
    uint64_t diff = (uint64_t)(now - b->lastts);
    b->lastts = now;
    int narg = nargs + (hasstk ? 1 : 0);
    uint8_t *p = b->data + b->pos;
    uint32_t n = 0;
    p[n++] = (uint8_t)(ev | (narg > 3 ? 3 : narg) << 6);
    if (narg < 3) {
        n += putvarint(p + n, diff);
        for (int i = 0; i < nargs; i++)
            n += putvarint(p + n, args[i]);
        if (hasstk)
            n += putvarint(p + n, stk);
    } else {
        /* length-prefixed: the rest is at most 5 varints here, well under
         * 128 bytes, so the length is one byte */
        uint32_t lenpos = n++;
        uint32_t start = n;
        n += putvarint(p + n, diff);
        for (int i = 0; i < nargs; i++)
            n += putvarint(p + n, args[i]);
        if (hasstk)
            n += putvarint(p + n, stk);
        p[lenpos] = (uint8_t)(n - start);
    }
    return n;
}

int64_t weft__trace_emit(weft__tracebuf **bufp, int32_t pid, int ev, const uint64_t *args,
                         int nargs, bool hasstk, uint64_t stk, int64_t *gts)
{
    int64_t now;
    if (gts) {
        now = weft__trace_ticks_nofence();
        if (now < *gts)
            now = *gts;
    } else {
        now = weft__trace_ticks();
    }
    weft__tracebuf *b = room(bufp, pid, 2 + (uint32_t)(nargs + 2) * MAXVARINT, now);
    if (b) {
        if (now < b->lastts)    /* as encode does: the stamp the event gets */
            now = b->lastts;
        publish(b, b->pos + encode(b, now, ev, args, nargs, hasstk, stk));
    }
    if (gts)
        *gts = now;
    return now;
}

void weft__trace_emit_log(weft__tracebuf **bufp, int32_t pid, uint64_t category,
                          uint64_t stk, const char *msg)
{
    size_t len = strlen(msg);
    /* a message longer than a buffer's room is cut, as Go cuts it */
    size_t max = TRACE_BUFSIZE / 2;
    if (len > max)
        len = max;
    int64_t now = weft__trace_ticks();
    weft__tracebuf *b = room(bufp, pid, 2 + 5 * MAXVARINT + (uint32_t)len, now);
    if (!b)
        return;
    uint64_t args[2] = { 0, category };
    unsigned int pos = b->pos + encode(b, now, TEV_USERLOG, args, 2, true, stk);
    pos += putvarint(b->data + pos, len);
    memcpy(b->data + pos, msg, len);
    publish(b, pos + (unsigned int)len);     /* the event with its message */
}

/* ---- tables ------------------------------------------------------------------ */

static uint64_t hashbytes(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ULL;       /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}

/* Open addressing with linear probing, at most half full.  slots hold an
 * index + 1 into the table's array, 0 is empty. */
static bool rehash(uint32_t **slots, uint32_t *cap, uint32_t count, uint64_t (*keyhash)(uint32_t))
{
    uint32_t ncap = *cap ? *cap * 2 : 1024;
    uint32_t *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t h = (uint32_t)keyhash(i) & (ncap - 1);
        while (ns[h])
            h = (h + 1) & (ncap - 1);
        ns[h] = i + 1;
    }
    free(*slots);
    *slots = ns;
    *cap = ncap;
    return true;
}

static uint64_t strkey(uint32_t i) { return hashbytes(tr.strs[i], strlen(tr.strs[i])); }
static uint64_t stkkey(uint32_t i) { return hashbytes(tr.stks[i].pcs, tr.stks[i].n * sizeof(uintptr_t)); }

/* tracelock held. */
static uint64_t string_locked(const char *s)
{
    if (!s || !*s)
        return 0;
    if ((tr.nstrs + 1) * 2 > tr.caphash && !rehash(&tr.strhash, &tr.caphash, tr.nstrs, strkey))
        return 0;
    uint32_t h = (uint32_t)hashbytes(s, strlen(s)) & (tr.caphash - 1);
    for (; tr.strhash[h]; h = (h + 1) & (tr.caphash - 1))
        if (strcmp(tr.strs[tr.strhash[h] - 1], s) == 0)
            return tr.strhash[h];
    if (tr.nstrs == tr.capstrs) {
        uint32_t nc = tr.capstrs ? tr.capstrs * 2 : 256;
        char **ns = realloc(tr.strs, nc * sizeof *ns);
        if (!ns)
            return 0;
        tr.strs = ns;
        tr.capstrs = nc;
    }
    char *copy = strdup(s);
    if (!copy)
        return 0;
    tr.strs[tr.nstrs++] = copy;
    tr.strhash[h] = tr.nstrs;
    return tr.nstrs;
}

uint64_t weft__trace_string(const char *s)
{
    weft__lock(&tracelock);
    uint64_t id = string_locked(s);
    weft__unlock(&tracelock);
    return id;
}

/* Each thread remembers the ids of the stacks it interned last, by a
 * 64-bit hash of their pcs, so that a stack seen again (a loop's park,
 * the same yield) costs a hash and no lock: every M would otherwise take
 * tracelock for every event.  Two different stacks with the same 64-bit
 * hash would share an id: a chance of 2^-64 per pair, accepted.  Direct
 * mapped; an entry is valid for the trace (generation) that made it. */
#define STKCACHE 128
static __thread struct {
    uint64_t hash;
    uint64_t id;
    uint32_t gen;
} stkcache[STKCACHE];

static uint64_t stack_locked(const uintptr_t *pcs, int n);

static uint64_t hashpcs(const uintptr_t *pcs, int n)
{
    uint64_t h = (uint64_t)n * 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < n; i++)
        h = (h ^ pcs[i]) * 0xff51afd7ed558ccdULL;
    return h ^ (h >> 29);
}

uint64_t weft__trace_stack(const uintptr_t *pcs, int n)
{
    if (n <= 0)
        return 0;
    if (n > TRACE_MAXSTACK)
        n = TRACE_MAXSTACK;
    uint64_t hp = hashpcs(pcs, n);
    uint32_t slot = (uint32_t)hp & (STKCACHE - 1);
    if (stkcache[slot].gen == weft__trace_gen && stkcache[slot].hash == hp)
        return stkcache[slot].id;
    weft__lock(&tracelock);
    uint64_t id = stack_locked(pcs, n);
    weft__unlock(&tracelock);
    if (id) {
        stkcache[slot].hash = hp;
        stkcache[slot].id = id;
        stkcache[slot].gen = weft__trace_gen;
    }
    return id;
}

uint64_t weft__trace_stack_locked(const uintptr_t *pcs, int n)
{
    if (n <= 0)
        return 0;
    return stack_locked(pcs, n > TRACE_MAXSTACK ? TRACE_MAXSTACK : n);
}

/* tracelock held; 0 < n <= TRACE_MAXSTACK. */
static uint64_t stack_locked(const uintptr_t *pcs, int n)
{
    uint64_t id = 0;
    if ((tr.nstks + 1) * 2 > tr.capstkhash &&
        !rehash(&tr.stkhash, &tr.capstkhash, tr.nstks, stkkey))
        goto out;
    size_t sz = (size_t)n * sizeof(uintptr_t);
    uint32_t h = (uint32_t)hashbytes(pcs, sz) & (tr.capstkhash - 1);
    for (; tr.stkhash[h]; h = (h + 1) & (tr.capstkhash - 1)) {
        tstack *s = &tr.stks[tr.stkhash[h] - 1];
        if (s->n == n && memcmp(s->pcs, pcs, sz) == 0) {
            id = s->id;
            goto out;
        }
    }
    if (tr.nstks == tr.capstks) {
        uint32_t nc = tr.capstks ? tr.capstks * 2 : 256;
        tstack *ns = realloc(tr.stks, nc * sizeof *ns);
        if (!ns)
            goto out;
        tr.stks = ns;
        tr.capstks = nc;
    }
    tstack *s = &tr.stks[tr.nstks++];
    s->id = tr.nstks;
    s->n = n;
    memcpy(s->pcs, pcs, sz);
    tr.stkhash[h] = tr.nstks;
    id = s->id;
out:
    return id;
}

/* ---- the global buffer -------------------------------------------------------------- */

void weft__trace_lock(void) { weft__lock(&tracelock); }
void weft__trace_unlock(void) { weft__unlock(&tracelock); }
weft__tracebuf **weft__trace_globalbuf(void) { return &tr.global; }

/* ---- the writer ----------------------------------------------------------------------- */

/* Written buffers kept for reuse when tracing to a file (2 MiB). */
#define DRAIN_SPARES 32

/* Writes every full buffer queued so far, oldest first. */
static void drain(void)
{
    weft__lock(&tracelock);
    weft__tracebuf *b = tr.fullhead;
    tr.fullhead = tr.fulltail = NULL;
    weft__unlock(&tracelock);
    while (b) {
        weft__tracebuf *next = b->link;
        if (!tr.err) {
            int e = weft__writeall(tr.fd, b->data, b->pos);
            if (e < 0)
                tr.err = e;
        }
        /* kept for newbuf, up to what a busy 10 ms period fills */
        weft__lock(&tracelock);
        bool keep = tr.nspare < DRAIN_SPARES;
        if (keep) {
            b->link = tr.spare;
            tr.spare = b;
            tr.nspare++;
        }
        weft__unlock(&tracelock);
        if (!keep)
            free(b);
        b = next;
    }
}

static void *writer(void *arg)
{
    (void)arg;
    /* load-acquire: pairs with finish's store-release of quit, after which
     * every buffer is on the list */
    while (!AO_load_acquire(&tr.quit)) {
        weft__notetsleep(&tr.wake, WRITER_PERIOD_NS);
        weft__noteclear(&tr.wake);
        if (!tr.fr) {
            drain();
            continue;
        }
        weft__lock(&tracelock);
        bool full = tr.seg[tr.cur].bytes > tr.frlimit / 2;
        weft__unlock(&tracelock);
        if (full && !AO_load_acquire(&tr.quit))
            tr.checkpoint();
    }
    if (!tr.fr)
        drain();
    return NULL;
}

/* ---- start and stop -------------------------------------------------------------------- */

/* Notes both clocks at a trace's start, for tickfreq. */
static void tickstart(void)
{
    tr.ns0 = weft__nanotime();
    tr.tick0 = weft__trace_ticks();
}

/* Ticks per second of weft__trace_ticks, measured against CLOCK_MONOTONIC
 * since the trace began (Go's StopTrace computes its frequency the same
 * way).  The two reads at each end are a few dozen ns apart, so the error
 * is below 1e-4 once the trace has run 1 ms; a shorter one waits until it
 * has, as the result scales every timestamp in the file.  No allocation,
 * no lock: crash paths call it. */
static uint64_t tickfreq(void)
{
    int64_t ns, ticks;
    do {
        ticks = weft__trace_ticks();
        ns = weft__nanotime();
    } while (ns - tr.ns0 < 1000 * 1000);
    if (ticks <= tr.tick0)
        return 1000000000;      /* no counter worth the name: say ns */
    return (uint64_t)((double)(ticks - tr.tick0) * 1e9 / (double)(ns - tr.ns0) + 0.5);
}

static void freetables(void)
{
    for (uint32_t i = 0; i < tr.nstrs; i++)
        free(tr.strs[i]);
    free(tr.strs);
    free(tr.strhash);
    free(tr.stks);
    free(tr.stkhash);
    tr.strs = NULL;
    tr.strhash = NULL;
    tr.stks = NULL;
    tr.stkhash = NULL;
    tr.nstrs = tr.capstrs = tr.caphash = 0;
    tr.nstks = tr.capstks = tr.capstkhash = 0;
}

int weft__trace_begin(int fd)
{
    static const char header[16] = "go 1.19 trace\0\0\0";
    int e = weft__writeall(fd, header, sizeof header);
    if (e < 0)
        return e;
    tr.fd = fd;
    tr.err = 0;
    /* plain store: published to the writer thread by pthread_create */
    AO_store(&tr.quit, 0);
    weft__noteclear(&tr.wake);
    int r = pthread_create(&tr.writer, NULL, writer, NULL);
    if (r != 0)
        return -r;
    pthread_setname_np(tr.writer, "weft-tracewrite");
    tr.writer_started = true;
    weft__trace_gen++;
    tickstart();
    return 0;
}

void weft__trace_enable(void)
{
    weft__lock(&tracelock);
    /* store (under tracelock, the world stopped): see weft__tracing */
    AO_store(&weft__trace_on, 1);
    weft__unlock(&tracelock);
}

void weft__trace_disable(void)
{
    weft__lock(&tracelock);
    AO_store(&weft__trace_on, 0);     /* as enable */
    weft__unlock(&tracelock);
}

void weft__trace_flush(weft__tracebuf **bufp)
{
    if (*bufp) {
        queue_full(bufp);
        *bufp = NULL;
    }
}

/* A growable byte string for the footer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} bytes;

static void put(bytes *b, const void *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64 * 1024;
        while (nc < b->n + n)
            nc *= 2;
        uint8_t *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void putv(bytes *b, uint64_t v)
{
    uint8_t tmp[MAXVARINT];
    put(b, tmp, putvarint(tmp, v));
}

/* The stacks, symbolized (interning function and file names), then every
 * string, then the frequency. */
static int footer(int fd)
{
    bytes stk = { 0 }, out = { 0 }, body = { 0 };
    for (uint32_t i = 0; i < tr.nstks; i++) {
        tstack *s = &tr.stks[i];
        body.n = 0;
        putv(&body, s->id);
        putv(&body, (uint64_t)s->n);
        for (int j = 0; j < s->n; j++) {
            weft__sym sym = { 0 };
            /* return addresses: look up the call instruction */
            weft__symbolize(s->pcs[j] - 1, &sym);
            weft__lock(&tracelock);
            uint64_t fn = string_locked(sym.func ? sym.func : "?");
            uint64_t file = string_locked(sym.file ? sym.file : "?");
            weft__unlock(&tracelock);
            putv(&body, s->pcs[j] - 1);
            putv(&body, fn);
            putv(&body, file);
            putv(&body, sym.line > 0 ? (uint64_t)sym.line : 0);
        }
        uint8_t h = TEV_STACK | 3 << 6;
        put(&stk, &h, 1);
        putv(&stk, body.n);
        put(&stk, body.p, body.n);
    }
    for (uint32_t i = 0; i < tr.nstrs; i++) {
        uint8_t h = TEV_STRING;
        size_t len = strlen(tr.strs[i]);
        put(&out, &h, 1);
        putv(&out, i + 1);
        putv(&out, len);
        put(&out, tr.strs[i], len);
    }
    put(&out, stk.p, stk.n);
    uint8_t h = TEV_FREQUENCY;
    put(&out, &h, 1);
    putv(&out, tickfreq());
    int err = out.oom || stk.oom || body.oom ? -ENOMEM : weft__writeall(fd, out.p, out.n);
    free(stk.p);
    free(out.p);
    free(body.p);
    return err;
}

int weft__trace_finish(void)
{
    weft__lock(&tracelock);
    weft__trace_flush(&tr.global);
    weft__unlock(&tracelock);
    /* from here on only this thread and the writer touch the list */
    if (tr.writer_started) {
        /* store-release: every buffer was queued before (pairs with the
         * writer's load-acquire) */
        AO_store_release(&tr.quit, 1);
        weft__notewakeup(&tr.wake);
        pthread_join(tr.writer, NULL);
        tr.writer_started = false;
    }
    drain();    /* anything a late emitter queued */
    int err = tr.err;
    if (!err)
        err = footer(tr.fd);
    freebufs(tr.spare);
    tr.spare = NULL;
    tr.nspare = 0;
    freetables();
    return err;
}

/* ---- the flight recorder ------------------------------------------------------------
 *
 * The same events, kept in memory instead of written: full buffers go to
 * the current of two segments.  When it holds more than half the bytes
 * asked for, the recorder thread calls runtime/trace.c's checkpoint,
 * which stops the world, flushes every buffer into the segment, starts
 * the other one (freeing what it held) and opens it with a declaration
 * of every goroutine the trace knows (GoCreate, then GoWaiting for those
 * waiting), as a trace's start does.  A window is the previous segment,
 * declaration included, followed by the current one without its
 * declaration: the goroutines the window's events speak of are declared
 * at its start, in the state its first events need.  Sequence numbers
 * cannot be declared (GoCreate always makes them 1), so the recorder's
 * events are the sequence-free "Local" variants (GoStartLocal,
 * GoUnblockLocal, and GoUnblockLocal for a syscall's exit too: Go 1.19's
 * parser takes GoSysExitLocal's goroutine from the batch, not from its
 * argument).  The parser then orders a goroutine's events by their state
 * and timestamps, which one monotonic clock keeps consistent. */

int weft__fr_begin(size_t limit, void (*checkpoint)(void))
{
    /* The window's buffers, allocated and touched now, and reused from
     * one segment to the next: recording never faults in memory (a first
     * touch costs up to 15 us a page on a VM, which made the recorder
     * dearer than tracing to a file, whose few buffers are reused as soon
     * as they are written), and a crash finds the window resident.  A
     * segment may pass half the window by what is written between two of
     * the recorder thread's checks, and each P holds one open buffer:
     * those come from malloc as needed. */
    freebufs(tr.spare);     /* none: a trace's stop freed them */
    tr.spare = NULL;
    tr.nspare = 0;
    for (size_t i = 0; i < limit / TRACE_BUFSIZE + 1; i++) {
        weft__tracebuf *b = malloc(sizeof *b);
        if (!b)
            break;      /* the rest from malloc as needed */
        for (size_t off = 0; off < sizeof *b; off += 4096)
            ((volatile uint8_t *)b)[off] = 0;
        b->link = tr.spare;
        tr.spare = b;
        tr.nspare++;
    }
    tr.fr = true;
    tr.frlimit = limit;
    tr.checkpoint = checkpoint;
    memset(tr.seg, 0, sizeof tr.seg);
    tr.cur = 0;
    tr.err = 0;
    /* plain store: published to the recorder thread by pthread_create */
    AO_store(&tr.quit, 0);
    weft__noteclear(&tr.wake);
    int r = pthread_create(&tr.writer, NULL, writer, NULL);
    if (r != 0) {
        tr.fr = false;
        freebufs(tr.spare);
        tr.spare = NULL;
        tr.nspare = 0;
        return -r;
    }
    pthread_setname_np(tr.writer, "weft-flightrec");
    tr.writer_started = true;
    weft__trace_gen++;
    tickstart();
    return 0;
}

/* tracelock held: sg's buffers go back to the spares. */
static void freeseg(struct frseg *sg)
{
    for (weft__tracebuf *b = sg->head; b; b = b->link)
        tr.nspare++;
    if (sg->tail) {
        sg->tail->link = tr.spare;
        tr.spare = sg->head;
    }
    memset(sg, 0, sizeof *sg);
}

void weft__fr_rotate(void)
{
    weft__trace_flush(&tr.global);
    tr.cur ^= 1;
    freeseg(&tr.seg[tr.cur]);
}

void weft__fr_declared(void)
{
    weft__trace_flush(&tr.global);
    tr.seg[tr.cur].declend = tr.seg[tr.cur].tail;
}

static int writewindow(weft__out *o, weft__tracebuf *const *bufs, int n, int64_t cut,
                       uint64_t *running);

int weft__fr_write(int fd)
{
    weft__lock(&tracelock);
    weft__trace_flush(&tr.global);
    weft__unlock(&tracelock);
    uint64_t *running = calloc(WINDOW_PIDS, sizeof *running);
    if (!running)
        return -ENOMEM;
    weft__out o;
    weft__out_fd(&o, fd);
    int e = writewindow(&o, NULL, 0, weft__trace_ticks(), running);
    free(running);
    if (e == 0)
        e = footer(fd);
    return e;
}

void weft__fr_quit(void)
{
    if (tr.writer_started) {
        /* store-release: pairs with the recorder thread's load-acquire */
        AO_store_release(&tr.quit, 1);
        weft__notewakeup(&tr.wake);
        pthread_join(tr.writer, NULL);
        tr.writer_started = false;
    }
}

void weft__fr_end(void)
{
    weft__lock(&tracelock);
    weft__trace_flush(&tr.global);
    freeseg(&tr.seg[0]);
    freeseg(&tr.seg[1]);
    freebufs(tr.spare);
    tr.spare = NULL;
    tr.nspare = 0;
    tr.fr = false;
    weft__unlock(&tracelock);
    freetables();
}

/* ---- a window from a crash -------------------------------------------------------------
 *
 * SCHEDDEBUG=flightrecorder writes the window when the process dies: in
 * a signal handler that may have interrupted malloc or the scheduler,
 * while the other Ms go on running goroutines and appending to their
 * Ps' buffers.  Nothing here allocates or stops the world:
 *
 *  1. tracelock, waited for at most 100 ms (the crashing thread may hold
 *     it; then no window).  Held, it freezes the segments, the global
 *     buffer and the string and stack tables, and it freezes which
 *     buffer each P writes: a P's owner hands a full buffer over under
 *     tracelock (queue_full), so its current one stays its current one,
 *     and a buffer already handed over is marked queued and written from
 *     its segment, never twice.
 *  2. cut, a clock read after that: every event in the segments and the
 *     global buffer is older.
 *  3. Each P's buffer up to its published end (pos, store-released after
 *     each whole event), but only its events up to cut.  That makes the
 *     window a consistent cut although the Ps are read one after the
 *     other: an event is emitted before the transition it records is
 *     published (trace.c, "Timestamps and ordering"), so an event of one
 *     P that depends on another's (a GoStartLocal on P1 of a goroutine
 *     P0 unblocked) is later in time; if it is in the window (not later
 *     than cut), the one it depends on was published before cut, hence
 *     before its P was read.
 *  4. The footer from the tables as they are, stacks symbolized with
 *     weft__symbolize_try (frames print as "?" if another thread is
 *     inside the symbolizer), the names as new strings deduplicated by
 *     pointer in static memory, written through a stack buffer. */

#define CRASH_LOCK_WAIT_NS (100 * 1000 * 1000)
#define CRASH_NAMES 4096        /* names deduplicated; past that, repeated */

static struct {
    const char *key[CRASH_NAMES];       /* a name's pointer, from the symbolizer */
    uint32_t id[CRASH_NAMES];           /* its string id */
    uint8_t body[8 + TRACE_MAXSTACK * 4 * MAXVARINT];   /* one stack event */
} crash;

bool weft__trace_lock_crash(void)
{
    int64_t deadline = weft__nanotime() + CRASH_LOCK_WAIT_NS;
    while (!weft__trylock(&tracelock))
        if (weft__nanotime() > deadline)
            return false;
    return true;
}

bool weft__fr_recording(void) { return tr.fr; }

static uint64_t getvarint(const uint8_t *p, uint32_t end, uint32_t *i)
{
    uint64_t v = 0;
    for (int shift = 0; *i < end && shift < 64; shift += 7) {
        uint8_t c = p[(*i)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            break;
    }
    return v;
}

/* Whether an event type ends the running of its P's goroutine, as Go's
 * parser sees it. */
static bool stopsg(int ev)
{
    switch (ev) {
    case TEV_GOEND: case TEV_GOSCHED: case TEV_GOPREEMPT: case TEV_GOSLEEP:
    case TEV_GOBLOCK: case TEV_GOBLOCKSEND: case TEV_GOBLOCKRECV: case TEV_GOBLOCKSELECT:
    case TEV_GOBLOCKSYNC: case TEV_GOBLOCKCOND: case TEV_GOBLOCKNET: case TEV_GOSYSBLOCK:
        return true;
    default:
        return false;
    }
}

/* How many bytes of b's first end bytes hold whole events no later than
 * cut, decoding the batch as encode wrote it; running[pid + 1] follows
 * the goroutine the parser will take to run on the batch's P at the end
 * of it (0: none). */
static uint32_t scanbatch(const weft__tracebuf *b, uint32_t end, int64_t cut, uint64_t *running)
{
    const uint8_t *p = b->data;
    uint32_t i = 1;
    int64_t pid = (int64_t)getvarint(p, end, &i);
    int64_t ts = (int64_t)getvarint(p, end, &i);
    uint64_t *run = pid >= -1 && pid < WEFT_MAXPROCS_MAX ? &running[pid + 1] : NULL;
    uint32_t keep = i;
    while (i < end) {
        uint8_t h = p[i++];
        int ev = h & 0x3f, narg = h >> 6;
        uint32_t argstart = i;
        if (narg == 3)
            argstart = ++i;                     /* the one-byte length */
        ts += (int64_t)getvarint(p, end, &i);
        if (ts > cut)
            break;
        uint64_t arg0 = 0;
        if (narg == 3) {
            i = argstart + p[argstart - 1];
        } else {
            for (int k = 0; k < narg; k++) {
                uint64_t v = getvarint(p, end, &i);
                if (k == 0)
                    arg0 = v;
            }
        }
        if (ev == TEV_USERLOG)
            i += (uint32_t)getvarint(p, end, &i);
        if (i > end)
            break;
        keep = i;
        if (run && (ev == TEV_GOSTART || ev == TEV_GOSTARTLOCAL))
            *run = arg0;
        else if (run && stopsg(ev))
            *run = 0;
    }
    return keep;
}

/* The id of a symbolized name, written as a string event the first time
 * (ids after the tables' own). */
static uint64_t crashname(weft__out *o, const char *s, uint64_t *next)
{
    if (!s)
        s = "?";
    uint32_t h = (uint32_t)((uintptr_t)s >> 3) & (CRASH_NAMES - 1);
    for (int probe = 0; probe < 16; probe++, h = (h + 1) & (CRASH_NAMES - 1)) {
        if (crash.key[h] == s)
            return crash.id[h];
        if (!crash.key[h])
            break;
    }
    uint64_t id = (*next)++;
    if (!crash.key[h]) {
        crash.key[h] = s;
        crash.id[h] = (uint32_t)id;
    }
    uint8_t tmp[1 + 2 * MAXVARINT];
    uint32_t n = 0;
    size_t len = strlen(s);
    tmp[n++] = TEV_STRING;
    n += putvarint(tmp + n, id);
    n += putvarint(tmp + n, len);
    weft__out_write(o, (const char *)tmp, n);
    weft__out_write(o, s, len);
    return id;
}

static void crashfooter(weft__out *o)
{
    uint8_t tmp[1 + 2 * MAXVARINT];
    for (uint32_t i = 0; i < tr.nstrs; i++) {
        size_t len = strlen(tr.strs[i]);
        uint32_t n = 0;
        tmp[n++] = TEV_STRING;
        n += putvarint(tmp + n, i + 1);
        n += putvarint(tmp + n, len);
        weft__out_write(o, (const char *)tmp, n);
        weft__out_write(o, tr.strs[i], len);
    }
    uint64_t next = tr.nstrs + 1;
    memset(crash.key, 0, sizeof crash.key);
    for (uint32_t i = 0; i < tr.nstks; i++) {
        tstack *s = &tr.stks[i];
        uint64_t fn[TRACE_MAXSTACK], file[TRACE_MAXSTACK], line[TRACE_MAXSTACK];
        for (int j = 0; j < s->n; j++) {
            weft__sym sym = { 0 };
            weft__symbolize_try(s->pcs[j] - 1, &sym);
            fn[j] = crashname(o, sym.func, &next);
            file[j] = crashname(o, sym.file, &next);
            line[j] = sym.line > 0 ? (uint64_t)sym.line : 0;
        }
        uint32_t n = 0;
        n += putvarint(crash.body + n, s->id);
        n += putvarint(crash.body + n, (uint64_t)s->n);
        for (int j = 0; j < s->n; j++) {
            n += putvarint(crash.body + n, s->pcs[j] - 1);
            n += putvarint(crash.body + n, fn[j]);
            n += putvarint(crash.body + n, file[j]);
            n += putvarint(crash.body + n, line[j]);
        }
        uint32_t h = 0;
        tmp[h++] = TEV_STACK | 3 << 6;
        h += putvarint(tmp + h, n);
        weft__out_write(o, (const char *)tmp, h);
        weft__out_write(o, (const char *)crash.body, n);
    }
    uint32_t n = 0;
    tmp[n++] = TEV_FREQUENCY;
    n += putvarint(tmp + n, tickfreq());
    weft__out_write(o, (const char *)tmp, n);
}

/* Writes b's whole events up to end and no later than cut through o. */
static void windowbatch(weft__out *o, const weft__tracebuf *b, uint32_t end, int64_t cut,
                        uint64_t *running)
{
    uint32_t n = scanbatch(b, end, cut, running);
    weft__out_flush(o);
    if (!o->err)
        o->err = weft__writeall(o->fd, b->data, n);
}

/* The window: the header, the previous segment, the current one without
 * its declaration, the global buffer, then bufs (n P buffers still being
 * written, read up to their published end), every event no later than
 * cut.  Last, for each P on which Go's parser would see a goroutine still
 * running at the end, a batch that deschedules it at cut (GoSched, as
 * Go's StopTrace ends the trace of its caller): the viewer of go tool
 * trace draws a running goroutine's span up to its next event and fails
 * on one without.  running: WINDOW_PIDS zeroed words. */
static int writewindow(weft__out *o, weft__tracebuf *const *bufs, int n, int64_t cut,
                       uint64_t *running)
{
    static const char header[16] = "go 1.19 trace\0\0\0";
    weft__out_write(o, header, sizeof header);
    struct frseg *prev = &tr.seg[tr.cur ^ 1], *cur = &tr.seg[tr.cur];
    for (weft__tracebuf *b = prev->head; b; b = b->link)
        windowbatch(o, b, b->pos, cut, running);
    for (weft__tracebuf *b = prev->head && cur->declend ? cur->declend->link : cur->head; b; b = b->link)
        windowbatch(o, b, b->pos, cut, running);
    if (tr.global)
        windowbatch(o, tr.global, tr.global->pos, cut, running);
    for (int i = 0; i < n; i++) {
        const weft__tracebuf *b = bufs[i];
        if (b->queued)
            continue;       /* already written from its segment */
        /* load-acquire: pairs with the owner's store-release of each
         * event's end (publish) */
        windowbatch(o, b, AO_int_load_acquire((unsigned int *)&b->pos), cut, running);
    }
    for (int pid = 0; pid < WEFT_MAXPROCS_MAX; pid++) {
        if (!running[pid + 1])
            continue;
        uint8_t tmp[4 + 3 * MAXVARINT];
        uint32_t k = 0;
        tmp[k++] = TEV_BATCH | 1 << 6;
        k += putvarint(tmp + k, (uint64_t)pid);
        k += putvarint(tmp + k, (uint64_t)cut);
        tmp[k++] = TEV_GOSCHED | 1 << 6;
        tmp[k++] = 0;       /* at cut */
        tmp[k++] = 0;       /* no stack */
        weft__out_write(o, (const char *)tmp, k);
    }
    weft__out_flush(o);
    return o->err;
}

int weft__fr_crashwrite(int fd, weft__tracebuf *const *bufs, int n, int64_t cut)
{
    static uint64_t running[WINDOW_PIDS];
    memset(running, 0, sizeof running);
    weft__out o;
    weft__out_fd(&o, fd);
    writewindow(&o, bufs, n, cut, running);
    crashfooter(&o);
    weft__out_flush(&o);
    return o.err;
}
