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
