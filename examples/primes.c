/*
 * primes — Go's concurrent prime sieve: a chain of goroutines, one per
 * prime found so far, each filtering the multiples of its prime out of the
 * stream it passes on over an unbuffered channel.
 *
 * When main has its primes it closes `done`: the generator stops and closes
 * its channel, and the close ripples down the chain, each filter closing
 * its output and exiting, so the program ends with nothing leaked.
 *
 *   usage: primes [N]     print the first N primes (default 1000)
 */
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <weft.h>

struct filter { weft_chan *in, *out; long prime; };

static weft_chan *done;             /* closed by main: stop generating */
static weft_wg running = WEFT_WG_INIT;

static void generate(void *arg)
{
    weft_chan *ch = arg;
    for (long i = 2;; i++) {
        weft_case cases[2] = {
            { .ch = ch, .dir = WEFT_SEND, .elem = &i },
            { .ch = done, .dir = WEFT_RECV, .elem = NULL },
        };
        if (weft_select(cases, 2, -1) == 1)
            break;
    }
    weft_chan_close(ch);
    weft_wg_done(&running);
}

static void filter(void *arg)
{
    struct filter *f = arg;
    long v;
    while (weft_chan_recv(f->in, &v))
        if (v % f->prime != 0)
            weft_chan_send(f->out, &v);
    weft_chan_close(f->out);        /* pass the end of the stream on */
    weft_wg_done(&running);
}

static long nprimes = 1000;

static void mainfn(void *arg)
{
    (void)arg;
    /* PRIMES_CPUPROFILE=FILE: a CPU profile of the whole run (pprof). */
    const char *cpuprof = getenv("PRIMES_CPUPROFILE");
    FILE *pf = cpuprof ? fopen(cpuprof, "w") : NULL;
    if (cpuprof && (!pf || weft_cpuprofile_start(fileno(pf), 100) < 0))
        fprintf(stderr, "primes: cannot profile into %s\n", cpuprof);
    weft_chan *first = weft_chan_new(sizeof(long), 0), *ch = first;
    done = weft_chan_new(0, 0);
    struct filter **filters = calloc((size_t)nprimes, sizeof *filters);
    weft_wg_add(&running, 1);
    if (!ch || !done || !filters || weft_go(generate, ch) < 0) {
        fprintf(stderr, "primes: out of memory\n");
        exit(1);
    }
    long last = 0;
    for (long i = 0; i < nprimes; i++) {
        long prime;
        weft_chan_recv(ch, &prime);
        if (i < 10 || i == nprimes - 1)
            printf("prime %ld: %ld\n", i + 1, prime);
        else if (i == 10)
            printf("...\n");
        last = prime;
        struct filter *f = malloc(sizeof *f);
        f->in = ch;
        f->out = weft_chan_new(sizeof(long), 0);
        f->prime = prime;
        filters[i] = f;
        weft_wg_add(&running, 1);
        if (!f->out || weft_go(filter, f) < 0) {
            fprintf(stderr, "primes: out of memory\n");
            exit(1);
        }
        ch = f->out;
    }
    printf("%ld primes through %ld goroutines; %d goroutines alive\n", nprimes, nprimes + 1,
           weft_num_goroutine());
    /* PRIMES_DUMP=FILE: every goroutine's traceback, while the chain is
     * whole (Go's /debug/pprof/goroutine?debug=2). */
    const char *dump = getenv("PRIMES_DUMP");
    if (dump) {
        FILE *f = fopen(dump, "w");
        int r = f ? weft_profile_write("goroutine", fileno(f), 2) : -errno;
        if (f)
            fclose(f);
        if (r < 0)
            fprintf(stderr, "primes: writing %s: %s\n", dump, strerror(-r));
    }
    (void)last;
    /* Drain the last channel while the chain shuts down. */
    weft_chan_close(done);
    long v;
    while (weft_chan_recv(ch, &v))
        ;
    weft_wg_wait(&running);
    if (pf) {
        int r = weft_cpuprofile_stop();
        if (r < 0)
            fprintf(stderr, "primes: writing %s: %s\n", cpuprof, strerror(-r));
        fclose(pf);
    }
    weft_chan_free(first);
    for (long i = 0; i < nprimes; i++) {
        weft_chan_free(filters[i]->out);
        free(filters[i]);
    }
    free(filters);
    weft_chan_free(done);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        char *end;
        nprimes = strtol(argv[1], &end, 10);
        if (*end || nprimes < 1 || nprimes > 1000000) {
            fprintf(stderr, "primes: bad count '%s' (want 1..1000000)\n", argv[1]);
            return 2;
        }
    }
    return weft_main(mainfn, NULL) == 0 ? 0 : 1;
}
