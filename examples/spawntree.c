/*
 * spawntree — a tree of goroutines spread over every CPU.
 *
 * Each inner node spawns FANOUT children; each of the LEAVES leaves does a
 * little arithmetic and notes which OS thread it ran on.  The program prints
 * the answer (checked), how many goroutines it started, and how the leaves
 * spread over the runtime's threads: work stealing at work.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <weft.h>

#define FANOUT 10
#define DEPTH  5                        /* 10^5 leaves */
#define MAXTHREADS 64

static atomic_llong sum;
static atomic_long leaves, spawned;
static struct { atomic_long tid, count; } threads[MAXTHREADS];

struct node { long first; int depth; };

static long leaf_work(long i)
{
    long x = i;
    for (int k = 0; k < 200; k++)
        x = (x * 1103515245 + 12345) & 0x7fffffff;
    return i + (x & 0);                 /* the answer is i; the loop is the work */
}

static void note_thread(void)
{
    long tid = syscall(SYS_gettid);
    for (int i = 0; i < MAXTHREADS; i++) {
        long cur = atomic_load(&threads[i].tid);
        if (cur == 0 && atomic_compare_exchange_strong(&threads[i].tid, &cur, tid))
            cur = tid;
        if (cur == tid) {
            atomic_fetch_add(&threads[i].count, 1);
            return;
        }
    }
}

static void node(void *arg)
{
    struct node *n = arg;
    if (n->depth == DEPTH) {
        atomic_fetch_add(&sum, leaf_work(n->first));
        note_thread();
        atomic_fetch_add(&leaves, 1);
        free(n);
        return;
    }
    long span = 1;
    for (int d = n->depth + 1; d < DEPTH; d++)
        span *= FANOUT;
    for (int c = 0; c < FANOUT; c++) {
        struct node *ch = malloc(sizeof *ch);
        ch->first = n->first + c * span;
        ch->depth = n->depth + 1;
        if (weft_go(node, ch) < 0) {
            fprintf(stderr, "spawntree: weft_go failed\n");
            exit(1);
        }
        atomic_fetch_add(&spawned, 1);
    }
    free(n);
}

static void mainfn(void *arg)
{
    (void)arg;
    long nleaves = 1;
    for (int d = 0; d < DEPTH; d++)
        nleaves *= FANOUT;
    printf("gomaxprocs=%d, spawning a %d-ary tree of depth %d (%ld leaves)\n",
           weft_maxprocs(0), FANOUT, DEPTH, nleaves);
    int64_t t0 = weft_nanotime();
    struct node *root = malloc(sizeof *root);
    root->first = 0;
    root->depth = 0;
    node(root);
    while (atomic_load(&leaves) < nleaves)
        weft_yield();
    int64_t t = weft_nanotime() - t0;
    long long want = (long long)nleaves * (nleaves - 1) / 2;
    printf("sum=%lld (%s), %ld goroutines in %.1f ms (%.0f ns each)\n",
           (long long)atomic_load(&sum), atomic_load(&sum) == want ? "correct" : "WRONG",
           atomic_load(&spawned), t / 1e6, (double)t / (double)atomic_load(&spawned));
    printf("leaves per OS thread:\n");
    for (int i = 0; i < MAXTHREADS && atomic_load(&threads[i].tid); i++)
        printf("  thread %ld: %ld\n", atomic_load(&threads[i].tid), atomic_load(&threads[i].count));
    if (atomic_load(&sum) != want)
        exit(1);
}

int main(void)
{
    int r = weft_main(mainfn, NULL);
    if (r < 0) {
        fprintf(stderr, "weft_main: %d\n", r);
        return 1;
    }
    return 0;
}
