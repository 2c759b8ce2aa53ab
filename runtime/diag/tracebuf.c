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
#include "schedview.h"
#include "symtab.h"
#include "trace.h"

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
    weft__note wake;            /* the writer sleeps here between drains */
    AO_t quit;                  /* atomic: finish asks the writer to end */
    pthread_t writer;
    bool writer_started;
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

static uint32_t putvarint(uint8_t *p, uint64_t v)
{
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

/* A fresh buffer opened by its batch header.  NULL: out of memory (the
 * event is lost, the trace stays well formed). */
static weft__tracebuf *newbuf(int32_t pid, int64_t now)
{
    weft__tracebuf *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    b->link = NULL;
    b->pos = 0;
    b->data[b->pos++] = TEV_BATCH | 1 << 6;
    /* a negative pid goes out as Go writes uint64(int32): sign-extended */
    b->pos += putvarint(b->data + b->pos, (uint64_t)(int64_t)pid);
    b->pos += putvarint(b->data + b->pos, (uint64_t)now);
    b->lastts = now;
    return b;
}

/* Makes room for an event of at most need bytes. */
static weft__tracebuf *room(weft__tracebuf **bufp, int32_t pid, uint32_t need, int64_t now)
{
    weft__tracebuf *b = *bufp;
    if (b && TRACE_BUFSIZE - b->pos >= need)
        return b;
    /* The writer finds it at its next drain (a note cannot be woken
     * twice, and a wake-up per buffer would be a syscall per 64 KiB). */
    if (b)
        queue_full(bufp);
    *bufp = b = newbuf(pid, now);
    return b;
}

#define MAXVARINT 10

int64_t weft__trace_emit(weft__tracebuf **bufp, int32_t pid, int ev, const uint64_t *args,
                         int nargs, bool hasstk, uint64_t stk)
{
    int64_t now = weft__nanotime();
    weft__tracebuf *b = room(bufp, pid, 2 + (uint32_t)(nargs + 2) * MAXVARINT, now);
    if (!b)
        return now;
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
    b->pos += n;
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
    int64_t now = weft__nanotime();
    weft__tracebuf *b = room(bufp, pid, 2 + 5 * MAXVARINT + (uint32_t)len, now);
    if (!b)
        return;
    uint64_t args[2] = { 0, category };
    weft__trace_emit(bufp, pid, TEV_USERLOG, args, 2, true, stk);
    b->pos += putvarint(b->data + b->pos, len);
    memcpy(b->data + b->pos, msg, len);
    b->pos += (uint32_t)len;
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
    putv(&out, 1000000000);
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
        return -r;
    }
    pthread_setname_np(tr.writer, "weft-flightrec");
    tr.writer_started = true;
    weft__trace_gen++;
    return 0;
}

static void freeseg(struct frseg *sg)
{
    weft__tracebuf *b = sg->head;
    while (b) {
        weft__tracebuf *next = b->link;
        free(b);
        b = next;
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

/* Writes the buffers of sg from the one after skip (NULL: all). */
static int writeseg(int fd, struct frseg *sg, weft__tracebuf *skip)
{
    weft__tracebuf *b = skip ? skip->link : sg->head;
    for (; b; b = b->link) {
        int e = weft__writeall(fd, b->data, b->pos);
        if (e < 0)
            return e;
    }
    return 0;
}

int weft__fr_write(int fd)
{
    static const char header[16] = "go 1.19 trace\0\0\0";
    weft__lock(&tracelock);
    weft__trace_flush(&tr.global);
    weft__unlock(&tracelock);
    struct frseg *prev = &tr.seg[tr.cur ^ 1], *cur = &tr.seg[tr.cur];
    int e = weft__writeall(fd, header, sizeof header);
    if (e == 0 && prev->head)
        e = writeseg(fd, prev, NULL);
    if (e == 0)
        e = writeseg(fd, cur, prev->head ? cur->declend : NULL);
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
    tr.fr = false;
    weft__unlock(&tracelock);
    freetables();
}
