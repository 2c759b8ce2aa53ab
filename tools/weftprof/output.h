/*
 * output.h — where the -o profile goes, without ever destroying a file.
 *
 *   regular file, or none yet   a temporary file beside it (mkstemp), renamed
 *                               over it once the whole profile is written; a
 *                               symbolic link is followed, so the file it
 *                               points to is replaced and the link stays
 *   any other existing file     (a device such as /dev/null, a FIFO) opened
 *                               only once the profile is complete, and written
 *                               in place: never created, truncated or unlinked
 *   "-"                         stdout, as the previous case (the histogram
 *                               then goes to stderr)
 *
 * Nothing is opened or created before the profile is complete, so a failed
 * attach or a missing command leaves everything as it was.  The only file
 * weftprof ever unlinks is its own temporary file, when the write fails.
 */
#ifndef WEFTPROF_OUTPUT_H
#define WEFTPROF_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

/* Writes the profile to fd: 0 or -errno. */
typedef int (*wp_output_fn)(int fd, void *arg);

/* At start, before attaching: can a profile go to path?  Checks without
 * creating, opening or changing anything.  0, or -errno with a one-line
 * reason in err ("-o PATH: ..."). */
int output_check(const char *path, char *err, size_t len);

/* At the end, with a complete profile: writes it to path through fn as the
 * table above says.  0, or -errno with a one-line reason in err; on an
 * error every existing file is as it was. */
int output_write(const char *path, wp_output_fn fn, void *arg, char *err, size_t len);

/* Is path "-", stdout? */
bool output_is_stdout(const char *path);

#endif
