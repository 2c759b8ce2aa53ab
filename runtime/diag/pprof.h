/*
 * pprof.h — the one profile.proto writer (github.com/google/pprof
 * proto/profile.proto; docs/formats.md, profile.proto) shared by every
 * profile weft writes: goroutine and threadcreate (debug=0), the CPU
 * profiler, and tools/weftprof.
 *
 *   weft__pprof *p = weft__pprof_new(types, 1, (weft__pprof_vt){"goroutine", "count"}, 1);
 *   weft__pprof_add_proc_mappings(p, 0);            // this process
 *   weft__pprof_add(p, pcs, n, false, values, "goroutine", "7");
 *   weft__pprof_write(p, fd, weft__symtab_pprof, NULL);   // diag/symtab.h
 *   weft__pprof_free(p);
 *
 * Samples with the same stack and label are merged (values added).  The
 * output is the gzipped message, as Go writes it.
 *
 * Self-contained: it knows nothing of the runtime (no scheduler, no
 * symbolizer of its own; the caller passes one), so it is built as a small
 * library of its own (CMake target weft_pprof) that libweft and weftprof
 * both link.
 */
#ifndef WEFT_PPROF_H
#define WEFT_PPROF_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct weft__pprof weft__pprof;
typedef struct { const char *type, *unit; } weft__pprof_vt;

/* What a symbolizer says about one address.  The strings need only live
 * until the symbolizer's caller returns (the writer copies them). */
typedef struct weft__pprof_sym {
    const char *func;       /* function name; NULL: unknown */
    const char *file;       /* source file, or NULL */
    int line;               /* source line, or 0 */
} weft__pprof_sym;

/* Resolves one address for a Location.  pc is the address as sampled;
 * the symbolizer is told whether it is a return address (look up pc-1) or
 * an exact pc (the leaf of a CPU sample).  Returns false if unknown. */
typedef bool (*weft__pprof_symbolizer)(uintptr_t pc, bool isreturn, weft__pprof_sym *out, void *arg);

/* A new, empty profile: ntypes sample types (copied), the period type and
 * period.  NULL if out of memory or ntypes < 1. */
weft__pprof *weft__pprof_new(const weft__pprof_vt *types, int ntypes,
                             weft__pprof_vt period_type, int64_t period);
void weft__pprof_free(weft__pprof *p);

/* time_nanos (wall clock at the start) and duration_nanos; 0 = omit. */
void weft__pprof_set_time(weft__pprof *p, int64_t time_nanos, int64_t duration_nanos);

/* One sample: pcs leaf first; pcs[0] is an exact pc if leaf_exact (a CPU
 * sample's interrupted instruction), every other entry a return address.
 * values has ntypes entries.  label_key/label_str: an optional string
 * label (both NULL for none).  0 or -ENOMEM. */
int weft__pprof_add(weft__pprof *p, const uintptr_t *pcs, int npcs, bool leaf_exact,
                    const int64_t *values, const char *label_key, const char *label_str);

/* The same with up to WEFT__PPROF_MAXLABELS string labels (weftprof's
 * "thread" and "goroutine"); both strings of each are required. */
#define WEFT__PPROF_MAXLABELS 2
typedef struct weft__pprof_label { const char *key, *str; } weft__pprof_label;
int weft__pprof_add_labels(weft__pprof *p, const uintptr_t *pcs, int npcs, bool leaf_exact,
                           const int64_t *values, const weft__pprof_label *labels, int nlabels);

/* Mappings: one per executable region.  build_id is hex, may be NULL. */
int weft__pprof_add_mapping(weft__pprof *p, uint64_t start, uint64_t limit, uint64_t offset,
                            const char *file, const char *build_id);
/* Every executable mapping of /proc/PID/maps (pid 0 = this process), with
 * each file's GNU build id.  0 or -errno. */
int weft__pprof_add_proc_mappings(weft__pprof *p, pid_t pid);

/* Encodes (symbolizing each distinct address once through sym), gzips and
 * writes it all to fd.  0 or -errno. */
int weft__pprof_write(weft__pprof *p, int fd, weft__pprof_symbolizer sym, void *arg);

/* What weft__pprof_write does before gzip: symbolizes and encodes the
 * message into a malloc'd buffer (*out, *len; the caller frees it).  For
 * tests and for writers that compress or send it themselves.  0 or -errno. */
int weft__pprof_encode(weft__pprof *p, weft__pprof_symbolizer sym, void *arg,
                       uint8_t **out, size_t *len);

/* The gzip fallback used without zlib: a valid gzip member of stored
 * (uncompressed) deflate blocks, malloc'd into *out.  Exposed so tests can
 * check it when zlib is present.  0 or -ENOMEM. */
int weft__pprof_gzip_stored(const void *data, size_t n, uint8_t **out, size_t *outlen);

#endif
