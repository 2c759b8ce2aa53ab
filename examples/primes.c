/*
 * primes — Go's concurrent prime sieve: a chain of goroutines, one per
 * prime found so far, each filtering the multiples of its prime out of the
 * stream it passes on over an unbuffered channel.
 *
 *   usage: primes [N]     print the first N primes (default 1000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <weft.h>

struct filter { weft_chan *in, *out; long prime; };

static void generate(void *arg)
{
    weft_chan *ch = arg;
    for (long i = 2;; i++)
        weft_chan_send(ch, &i);
}

static void filter(void *arg)
{
    struct filter *f = arg;
    long v;
    for (;;) {
        weft_chan_recv(f->in, &v);
        if (v % f->prime != 0)
            weft_chan_send(f->out, &v);
    }
}

static long nprimes = 1000;

static void mainfn(void *arg)
{
    (void)arg;
    weft_chan *ch = weft_chan_new(sizeof(long), 0);
    if (!ch || weft_go(generate, ch) < 0) {
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
        if (!f->out || weft_go(filter, f) < 0) {
            fprintf(stderr, "primes: out of memory\n");
            exit(1);
        }
        ch = f->out;
    }
    printf("%ld primes through %ld goroutines; %d goroutines alive\n", nprimes, nprimes + 1,
           weft_num_goroutine());
    (void)last;
    /* main returns: the filter chain ends with it (as in Go). */
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
