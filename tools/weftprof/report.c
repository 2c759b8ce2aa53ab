/*
 * report.c — the histogram.
 *
 * A stack's leaf function gets its count as "leaf" (self); every function
 * on the stack gets it once as "on-stack" (cumulative), however often
 * recursion repeats it — a stamp per function marks the last stack that
 * counted it.  Shares are of all thread stacks, each weighted by the ticks
 * it stands for (profile.h), so with four threads a function that is
 * always running in one of them shows 25%.
 */
#include <stdlib.h>
#include <string.h>

#include "report.h"

typedef struct row {
    int func;
    int64_t leaf, onstack;
} row;

static int by_leaf(const void *a, const void *b)
{
    const row *x = a, *y = b;
    if (x->leaf != y->leaf)
        return x->leaf < y->leaf ? 1 : -1;
    if (x->onstack != y->onstack)
        return x->onstack < y->onstack ? 1 : -1;
    return x->func - y->func;
}

void report_print(FILE *out, wp_profile *p, wp_symbols *s, const wp_report_info *info)
{
    double per = p->samples ? (double)p->threadstacks / (double)p->samples : 0;
    fprintf(out, "weftprof: pid %d (%s): %lld samples, %.2f threads/sample, %d Hz over %.2f s\n",
            (int)info->pid, info->comm, (long long)p->samples, per, info->hz, info->seconds);
    if (p->total == 0)
        return;

    /* Resolve every frame first: this may intern names, growing the table. */
    for (uint32_t i = 0; i < p->nstacks; i++) {
        wp_stack *st = p->stacks[i];
        for (int j = 0; j < st->depth; j++)
            symbols_func(s, profile_key(st->pcs, j), st->gen);
    }
    int n = s->nnames;
    row *rows = calloc((size_t)n, sizeof *rows);
    uint32_t *stamp = calloc((size_t)n, sizeof *stamp);
    if (!rows || !stamp) {
        fprintf(out, "weftprof: out of memory\n");
        free(rows);
        free(stamp);
        return;
    }
    for (int f = 0; f < n; f++)
        rows[f].func = f;
    for (uint32_t i = 0; i < p->nstacks; i++) {
        wp_stack *st = p->stacks[i];
        for (int j = 0; j < st->depth; j++) {
            int f = symbols_func(s, profile_key(st->pcs, j), st->gen);
            if (f < 0 || f >= n)
                continue;
            if (j == 0)
                rows[f].leaf += st->count;
            if (stamp[f] != i + 1) {
                stamp[f] = i + 1;
                rows[f].onstack += st->count;
            }
        }
    }
    qsort(rows, (size_t)n, sizeof *rows, by_leaf);
    fprintf(out, " %%leaf %%onstack  function\n");
    double total = (double)p->total;
    for (int r = 0; r < n && r < info->top; r++) {
        if (rows[r].onstack == 0)
            break;
        fprintf(out, "%5.1f%% %7.1f%%  %s\n", 100.0 * (double)rows[r].leaf / total,
                100.0 * (double)rows[r].onstack / total, symbols_name(s, rows[r].func));
    }
    free(rows);
    free(stamp);
}

/* ---- --by-goroutine ------------------------------------------------------------ */

typedef struct gleaf {
    int64_t goid;
    int func;           /* the stack's leaf function */
    int64_t count;
} gleaf;

typedef struct gorow {
    int64_t goid;
    int64_t count;      /* its stacks' weight */
    int top;            /* the leaf function with the most weight */
    int64_t topcount;
} gorow;

static int by_goid_func(const void *a, const void *b)
{
    const gleaf *x = a, *y = b;
    if (x->goid != y->goid)
        return x->goid < y->goid ? -1 : 1;
    return x->func - y->func;
}

static int by_count(const void *a, const void *b)
{
    const gorow *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return x->goid < y->goid ? -1 : x->goid > y->goid;
}

void report_goroutines(FILE *out, wp_profile *p, wp_symbols *s, const wp_goroutines *g,
                       const wp_report_info *info)
{
    if (!g->found) {
        fprintf(out, "weftprof: --by-goroutine: pid %d (%s) runs no weft runtime "
                "(no weft_debug_info in the objects it maps)\n", (int)info->pid, info->comm);
        return;
    }
    if (p->total == 0)
        return;
    gleaf *leaves = malloc((size_t)(p->nstacks ? p->nstacks : 1) * sizeof *leaves);
    gorow *rows = malloc((size_t)(p->nstacks ? p->nstacks : 1) * sizeof *rows);
    if (!leaves || !rows) {
        fprintf(out, "weftprof: out of memory\n");
        free(leaves);
        free(rows);
        return;
    }
    /* Sum each (goroutine, leaf function), then keep each goroutine's sum
     * and its heaviest leaf. */
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->nstacks; i++) {
        wp_stack *st = p->stacks[i];
        leaves[n++] = (gleaf){ st->goid, st->depth ? symbols_func(s, profile_key(st->pcs, 0), st->gen) : -1,
                               st->count };
    }
    qsort(leaves, n, sizeof *leaves, by_goid_func);
    uint32_t nrows = 0;
    int64_t none = 0;
    for (uint32_t i = 0; i < n;) {
        uint32_t j = i;
        int64_t sum = 0;
        while (j < n && leaves[j].goid == leaves[i].goid && leaves[j].func == leaves[i].func)
            sum += leaves[j++].count;
        if (leaves[i].goid <= 0) {
            none += sum;
        } else {
            if (nrows == 0 || rows[nrows - 1].goid != leaves[i].goid)
                rows[nrows++] = (gorow){ leaves[i].goid, 0, -1, 0 };
            gorow *r = &rows[nrows - 1];
            r->count += sum;
            if (sum > r->topcount) {
                r->top = leaves[i].func;
                r->topcount = sum;
            }
        }
        i = j;
    }
    qsort(rows, nrows, sizeof *rows, by_count);
    double total = (double)p->total;
    fprintf(out, "weftprof: by goroutine: %u goroutines on the sampled threads\n", nrows);
    fprintf(out, " %%stacks  goroutine  name              top function\n");
    for (uint32_t r = 0; r < nrows && r < (uint32_t)info->top; r++) {
        const char *name = goroutines_name(g, rows[r].goid);
        fprintf(out, "%7.1f%%  %9lld  %-16s  %s (%.1f%%)\n", 100.0 * (double)rows[r].count / total,
                (long long)rows[r].goid, name ? name : "-",
                rows[r].top >= 0 ? symbols_name(s, rows[r].top) : "?",
                100.0 * (double)rows[r].topcount / (double)rows[r].count);
    }
    if (none)
        fprintf(out, "%7.1f%%  %9s  %-16s  (threads running no goroutine: the scheduler, sysmon, others)\n",
                100.0 * (double)none / total, "-", "-");
    free(leaves);
    free(rows);
}
