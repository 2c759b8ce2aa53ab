/*
 * test_trace.c — the execution tracer: argument errors, the file's
 * structure read back by a decoder written here from Go 1.19's parser
 * (header, batches, every event's length, strings, stacks, the
 * frequency), the events a known workload must produce and their order
 * per goroutine (sequence numbers), user logs and regions, and
 * SCHEDDEBUG=tracefile's parsing, the flight recorder's calls.  Go's own
 * parser judges the same traces, and flight-recorder windows, in
 * tests/trace/check.sh.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/scheddebug.h"

/* ---- a decoder ------------------------------------------------------------------ */

typedef struct {
    int type;
    int32_t p;              /* the batch's pid */
    int64_t ts;
    uint64_t args[6];
    int nargs;              /* values after the timestamp */
    char msg[64];           /* UserLog's message */
} tev;

typedef struct {
    tev *ev;
    int n;
    int count[64];
    int nstrings, nstacks;
    char *strings[4096];    /* by id, up to 4095 */
    uint64_t freq;
} ttrace;

/* The footer's frequency is a plausible counter's: 1 MHz to 100 GHz (the
 * TSC, AArch64's virtual counter, or nanoseconds). */
static void assert_clock(const ttrace *t)
{
    cr_assert(t->freq >= 1000000 && t->freq <= 100000000000ULL, "frequency %llu",
              (unsigned long long)t->freq);
}

static uint64_t varint(const uint8_t *b, size_t n, size_t *off)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        cr_assert_lt(*off, n, "varint past the end");
        uint8_t c = b[(*off)++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    cr_assert_fail("varint too long");
    return 0;
}

/* Reads the whole file, checking every record's framing. */
static ttrace *decode(int fd)
{
    size_t cap = 1 << 20, n = 0;
    uint8_t *b = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        if (n == cap)
            b = realloc(b, cap *= 2);
        ssize_t r = read(fd, b + n, cap - n);
        cr_assert_geq(r, 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    cr_assert_geq(n, 16);
    cr_assert_eq(memcmp(b, "go 1.19 trace\0\0\0", 16), 0, "header");
    ttrace *t = calloc(1, sizeof *t);
    int capev = 1024;
    t->ev = malloc(capev * sizeof *t->ev);
    size_t off = 16;
    int32_t p = 0;
    int64_t lastts = 0;
    bool inbatch = false;
    while (off < n) {
        uint8_t h = b[off++];
        int type = h & 0x3f, narg = (h >> 6) + 1;
        cr_assert(type > 0 && type < 50, "event type %d at %zu", type, off - 1);
        if (type == TEV_STRING) {
            uint64_t id = varint(b, n, &off), len = varint(b, n, &off);
            cr_assert(id > 0 && id < 4096 && !t->strings[id], "string id %lu", (unsigned long)id);
            cr_assert(len > 0 && off + len <= n);
            t->strings[id] = strndup((const char *)b + off, len);
            off += len;
            t->nstrings++;
            continue;
        }
        uint64_t v[64];
        int nv = 0;
        if (narg < 4) {
            for (int i = 0; i < narg; i++)
                v[nv++] = varint(b, n, &off);
        } else {
            uint64_t len = varint(b, n, &off);
            size_t end = off + len;
            cr_assert_leq(end, n);
            while (off < end) {
                cr_assert_lt(nv, 64);
                v[nv++] = varint(b, n, &off);
            }
            cr_assert_eq(off, end, "event length");
        }
        if (type == TEV_BATCH) {
            cr_assert_eq(nv, 2);
            p = (int32_t)(int64_t)v[0];
            lastts = (int64_t)v[1];
            inbatch = true;
            continue;
        }
        if (type == TEV_FREQUENCY) {
            t->freq = v[0];
            continue;
        }
        if (type == TEV_STACK) {
            cr_assert_geq(nv, 2);
            cr_assert_eq((uint64_t)nv, 2 + 4 * v[1], "stack record size");
            t->nstacks++;
            continue;
        }
        cr_assert(inbatch, "event outside a batch");
        if (t->n == capev)
            t->ev = realloc(t->ev, (capev *= 2) * sizeof *t->ev);
        tev *e = &t->ev[t->n++];
        memset(e, 0, sizeof *e);
        e->type = type;
        e->p = p;
        lastts += (int64_t)v[0];
        e->ts = lastts;
        e->nargs = nv - 1 < 6 ? nv - 1 : 6;
        memcpy(e->args, v + 1, e->nargs * sizeof(uint64_t));
        if (type == TEV_USERLOG) {
            uint64_t len = varint(b, n, &off);
            cr_assert_leq(off + len, n);
            snprintf(e->msg, sizeof e->msg, "%.*s", (int)len, (const char *)b + off);
            off += len;
        }
        t->count[type]++;
    }
    free(b);
    return t;
}

static void freetrace(ttrace *t)
{
    for (int i = 0; i < 4096; i++)
        free(t->strings[i]);
    free(t->ev);
    free(t);
}

static const char *str(ttrace *t, uint64_t id) { return id < 4096 && t->strings[id] ? t->strings[id] : ""; }

/* ---- errors ---------------------------------------------------------------------- */

static void errors_main(void *arg)
{
    (void)arg;
    FILE *f = tmpfile();
    cr_assert_eq(weft_trace_start(-1), -EBADF);
    int ro = open("/dev/null", O_RDONLY);
    cr_assert_eq(weft_trace_start(ro), -EBADF, "a read-only fd");
    close(ro);
    cr_assert_eq(weft_trace_stop(), -EINVAL, "stop without start");
    cr_assert_eq(weft_trace_start(fileno(f)), 0);
    cr_assert_eq(weft_trace_start(fileno(f)), -EBUSY);
    cr_assert_eq(weft_trace_stop(), 0);
    cr_assert_eq(weft_trace_stop(), -EINVAL);
    /* and again: a second trace in the same run */
    FILE *g = tmpfile();
    cr_assert_eq(weft_trace_start(fileno(g)), 0);
    cr_assert_eq(weft_trace_stop(), 0);
    ttrace *t = decode(fileno(g));
    assert_clock(t);
    cr_assert_eq(t->count[TEV_GOCREATE], 1, "main, declared at the start");
    freetrace(t);
    fclose(f);
    fclose(g);
}

Test(trace, start_stop_errors, .timeout = 30)
{
    cr_assert_eq(weft_trace_start(1), -ESRCH, "before the runtime runs");
    cr_assert_eq(weft_main(errors_main, NULL), 0);
}

/* ---- a workload read back --------------------------------------------------------- */

static weft_chan *ch;
static weft_mutex mu = WEFT_MUTEX_INIT;
static weft_wg wg;

static void sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        weft_chan_send(ch, &i);
    weft_wg_done(&wg);
}

static void locker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        weft_mutex_lock(&mu);
        weft_yield();
        weft_mutex_unlock(&mu);
    }
    weft_wg_done(&wg);
}

static void sleeper(void *arg)
{
    (void)arg;
    weft_trace_region_begin("nap");
    weft_sleep(1000 * 1000);
    weft_trace_log("cat", "woke");
    weft_trace_region_end();
    weft_syscall_enter();
    usleep(30 * 1000);
    weft_syscall_exit();
    weft_wg_done(&wg);
}

static FILE *wf;
static int64_t workload_ns;     /* from before weft_trace_start to after its stop */

static void workload_main(void *arg)
{
    (void)arg;
    weft_maxprocs(2);
    wf = tmpfile();
    ch = weft_chan_new(sizeof(int), 0);
    int64_t t0 = weft_nanotime();
    cr_assert_eq(weft_trace_start(fileno(wf)), 0);
    weft_wg_add(&wg, 6);
    weft_go(sender, NULL);
    weft_go(locker, NULL);
    weft_go(locker, NULL);
    weft_go(locker, NULL);
    weft_go(sleeper, NULL);
    weft_go(sleeper, NULL);
    for (int i = 0; i < 100; i++) {
        int v;
        weft_chan_recv(ch, &v);
    }
    weft_wg_wait(&wg);
    weft_maxprocs(1);
    cr_assert_eq(weft_trace_stop(), 0);
    workload_ns = weft_nanotime() - t0;
}

typedef struct { uint64_t g, seq; } gseq;

static int gseqcmp(const void *x, const void *y)
{
    const gseq *a = x, *b = y;
    if (a->g != b->g)
        return a->g < b->g ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

Test(trace, workload_events_and_order, .timeout = 60)
{
    cr_assert_eq(weft_main(workload_main, NULL), 0);
    ttrace *t = decode(fileno(wf));
    cr_assert_eq(t->count[TEV_GOCREATE], 7, "main + 6");
    cr_assert_eq(t->count[TEV_GOEND], 6);
    cr_assert_gt(t->count[TEV_GOBLOCKSEND] + t->count[TEV_GOBLOCKRECV], 0);
    cr_assert_gt(t->count[TEV_GOBLOCKSYNC], 0, "the mutex or the WaitGroup");
    cr_assert_eq(t->count[TEV_GOSLEEP], 2);
    cr_assert_eq(t->count[TEV_GOSYSCALL], 2);
    cr_assert_eq(t->count[TEV_GOSYSEXIT], 2);
    cr_assert_eq(t->count[TEV_USERLOG], 2);
    cr_assert_eq(t->count[TEV_USERREGION], 4);
    cr_assert_gt(t->nstacks, 0);
    /* The frequency converts the counter's ticks to time: the trace spans
     * at least the sleepers' 30 ms syscalls and at most the time from
     * start to stop. */
    assert_clock(t);
    int64_t first = t->ev[0].ts, last = t->ev[0].ts;
    for (int i = 0; i < t->n; i++) {
        first = t->ev[i].ts < first ? t->ev[i].ts : first;
        last = t->ev[i].ts > last ? t->ev[i].ts : last;
    }
    double span = (double)(last - first) * 1e9 / (double)t->freq;
    cr_assert_geq(span, 30e6, "the trace spans %.0f ns at %llu ticks/s", span,
                  (unsigned long long)t->freq);
    cr_assert_leq(span, (double)workload_ns, "the trace spans %.0f ns at %llu ticks/s, more than the %lld ns it ran",
                  span, (unsigned long long)t->freq, (long long)workload_ns);

    /* Per goroutine, GoStart, GoUnblock and GoSysExit carry the sequence
     * numbers 1, 2, 3 ... (GoCreate makes it 1: the parser orders a
     * goroutine's events across Ps by them), each once; per P, time never
     * goes backwards; logs and regions carry their strings. */
    gseq *gs = malloc(t->n * sizeof *gs);
    int seqevents = 0, maxprocs1 = 0;
    int64_t lastts[64] = { 0 };
    for (int i = 0; i < t->n; i++) {
        tev *e = &t->ev[i];
        int slot = e->p + 1;        /* the global buffer's pid is -1 */
        cr_assert(slot >= 0 && slot < 64);
        cr_assert_geq(e->ts, lastts[slot], "time order within P %d", e->p);
        lastts[slot] = e->ts;
        switch (e->type) {
        case TEV_GOSTART:
        case TEV_GOUNBLOCK:
        case TEV_GOSYSEXIT:
            gs[seqevents++] = (gseq){ e->args[0], e->args[1] };
            break;
        case TEV_USERLOG:
            cr_assert_str_eq(str(t, e->args[1]), "cat");
            cr_assert_str_eq(e->msg, "woke");
            break;
        case TEV_USERREGION:
            cr_assert_str_eq(str(t, e->args[2]), "nap");
            break;
        case TEV_GOMAXPROCS:
            maxprocs1 += e->args[0] == 1;
            break;
        }
    }
    qsort(gs, seqevents, sizeof *gs, gseqcmp);
    for (int i = 0; i < seqevents; i++) {
        uint64_t want = i > 0 && gs[i - 1].g == gs[i].g ? gs[i - 1].seq + 1 : 1;
        cr_assert_eq(gs[i].seq, want, "g%lu: seq %lu, want %lu", (unsigned long)gs[i].g,
                     (unsigned long)gs[i].seq, (unsigned long)want);
    }
    free(gs);
    cr_assert_gt(seqevents, 100);
    cr_assert_eq(maxprocs1, 1, "weft_maxprocs(1)");
    freetrace(t);
    fclose(wf);
}

/* ---- free when off ------------------------------------------------------------------ */

static void off_main(void *arg)
{
    (void)arg;
    /* no trace: nothing is remembered, so a region ended after a trace
     * starts emits nothing unmatched */
    weft_trace_region_begin("never");
    weft_trace_log("cat", "never");
    FILE *f = tmpfile();
    cr_assert_eq(weft_trace_start(fileno(f)), 0);
    weft_trace_region_end();
    weft_trace_region_begin("seen");
    weft_trace_region_end();
    cr_assert_eq(weft_trace_stop(), 0);
    ttrace *t = decode(fileno(f));
    cr_assert_eq(t->count[TEV_USERLOG], 0);
    cr_assert_eq(t->count[TEV_USERREGION], 2);
    for (int i = 0; i < t->n; i++)
        if (t->ev[i].type == TEV_USERREGION)
            cr_assert_str_eq(str(t, t->ev[i].args[2]), "seen");
    freetrace(t);
    fclose(f);
}

Test(trace, annotations_only_while_tracing, .timeout = 30)
{
    cr_assert_eq(weft_main(off_main, NULL), 0);
}

/* ---- the flight recorder ------------------------------------------------------------ */

static void fr_main(void *arg)
{
    (void)arg;
    FILE *f = tmpfile();
    cr_assert_eq(weft_flightrecorder_write(fileno(f)), -EINVAL, "not recording");
    cr_assert_eq(weft_flightrecorder_stop(), -EINVAL);
    cr_assert_eq(weft_flightrecorder_start(1000), -EINVAL, "too small");
    cr_assert_eq(weft_flightrecorder_start(1 << 20), 0);
    cr_assert_eq(weft_flightrecorder_start(1 << 20), -EBUSY);
    cr_assert_eq(weft_trace_start(fileno(f)), -EBUSY, "one tracer at a time");
    cr_assert_eq(weft_trace_stop(), -EINVAL, "the recorder is not a trace");
    cr_assert_eq(weft_flightrecorder_write(-1), -EBADF);
    weft_trace_log("cat", "woke");
    cr_assert_eq(weft_flightrecorder_write(fileno(f)), 0);
    cr_assert_eq(weft_flightrecorder_stop(), 0);
    cr_assert_eq(weft_flightrecorder_stop(), -EINVAL);
    ttrace *t = decode(fileno(f));
    assert_clock(t);
    cr_assert_eq(t->count[TEV_GOCREATE], 1, "main, declared at the start");
    cr_assert_eq(t->count[TEV_USERLOG], 1);
    cr_assert_eq(t->count[TEV_GOSTART], 0, "the recorder's GoStarts are Local");
    freetrace(t);
    /* a trace may follow */
    FILE *g = tmpfile();
    cr_assert_eq(weft_trace_start(fileno(g)), 0);
    cr_assert_eq(weft_trace_stop(), 0);
    fclose(f);
    fclose(g);
}

Test(trace, flightrecorder_api, .timeout = 30)
{
    cr_assert_eq(weft_flightrecorder_start(1 << 20), -ESRCH, "before the runtime runs");
    cr_assert_eq(weft_main(fr_main, NULL), 0);
}

/* ---- SCHEDDEBUG=tracefile ------------------------------------------------------------- */

static int warnings;
static char lastwhy[64];

static void warn(const char *entry, size_t len, const char *why, void *arg)
{
    (void)entry, (void)len, (void)arg;
    warnings++;
    snprintf(lastwhy, sizeof lastwhy, "%s", why);
}

Test(trace, scheddebug_tracefile)
{
    weft__scheddebug d;
    warnings = 0;
    cr_assert_eq(weft__scheddebug_parse("schedtrace=5,tracefile=/tmp/a b.trace,hogwarn=1", &d, warn, NULL), 0);
    cr_assert_str_eq(d.tracefile, "/tmp/a b.trace");
    cr_assert_eq(d.schedtrace, 5);
    cr_assert_eq(weft__scheddebug_parse("tracefile=", &d, warn, NULL), 1);
    cr_assert_str_eq(lastwhy, "empty value");
    cr_assert_str_eq(d.tracefile, "");
    char longv[WEFT_SCHEDDEBUG_PATHMAX + 20] = "tracefile=";
    memset(longv + 10, 'x', WEFT_SCHEDDEBUG_PATHMAX);
    longv[10 + WEFT_SCHEDDEBUG_PATHMAX] = 0;
    cr_assert_eq(weft__scheddebug_parse(longv, &d, warn, NULL), 1);
    cr_assert_str_eq(lastwhy, "path too long");
    cr_assert_eq(weft__scheddebug_parse(NULL, &d, warn, NULL), 0);
    cr_assert_str_eq(d.tracefile, "", "off by default");
}

Test(trace, scheddebug_flightrecorder)
{
    weft__scheddebug d;
    cr_assert_eq(weft__scheddebug_parse("flightrecorder=/tmp/crash.trace,traceback=all", &d, warn, NULL), 0);
    cr_assert_str_eq(d.flightrecorder, "/tmp/crash.trace");
    cr_assert_str_eq(d.tracefile, "");
    cr_assert_eq(d.traceback, TRACEBACK_ALL);
    cr_assert_eq(weft__scheddebug_parse("flightrecorder=", &d, warn, NULL), 1);
    cr_assert_str_eq(lastwhy, "empty value");
    cr_assert_str_eq(d.flightrecorder, "");
    cr_assert_eq(weft__scheddebug_parse(NULL, &d, warn, NULL), 0);
    cr_assert_str_eq(d.flightrecorder, "", "off by default");
}
