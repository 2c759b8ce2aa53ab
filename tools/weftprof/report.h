/*
 * report.h — the two outputs: the histogram on stdout (report.c) and the
 * gzipped pprof file (pprofout.c, through the runtime's writer pprof.h).
 */
#ifndef WEFTPROF_REPORT_H
#define WEFTPROF_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "goroutines.h"
#include "profile.h"
#include "symbols.h"

typedef struct wp_report_info {
    pid_t pid;            /* the target */
    const char *comm;     /* its name */
    int hz;               /* sampling rate asked for */
    double seconds;       /* time spent sampling */
    int top;              /* rows to print */
    int64_t start_wall;   /* CLOCK_REALTIME ns at the first sample (pprof time_nanos) */
} wp_report_info;

/* The histogram: a header line, then "%leaf %onstack function" for the top
 * rows, sorted by leaf (self) share, then on-stack (cumulative) share. */
void report_print(FILE *out, wp_profile *p, wp_symbols *s, const wp_report_info *info);

/* --by-goroutine: each goroutine's share of the thread stacks and the
 * function most often on top of its stacks, busiest first (top rows),
 * then the share of stacks that ran no goroutine. */
void report_goroutines(FILE *out, wp_profile *p, wp_symbols *s, const wp_goroutines *g,
                       const wp_report_info *info);

/* ---- pprof (pprofout.c) ---------------------------------------------- */

/* A profile under construction whose mappings are those of /proc/TID/maps
 * now.  Taken while the target lives (its maps vanish with it); a later
 * snapshot replaces an earlier one.  Returns the newest snapshot: the new
 * one, or old if reading the maps failed. */
void *pprofout_snapshot(pid_t tid, void *old, int hz);
void pprofout_free(void *snap);

/* Adds every stack of generation gen to snap (consumed), symbolizes it from
 * the names libunwind gave (symbols.h) and writes the gzipped profile to
 * fd.  Every sample is labelled with its thread's name ("thread") and, on
 * a weft program, the goroutine the thread ran ("goroutine", its id).
 * *skipped counts samples of earlier generations (before an exec), left
 * out.  0 or -errno. */
int pprofout_write(int fd, void *snap, wp_profile *p, wp_symbols *s,
                   const wp_report_info *info, int gen, int64_t *skipped);

#endif
