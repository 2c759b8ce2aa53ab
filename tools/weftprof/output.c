/*
 * output.c — the -o file (output.h has the three cases).
 *
 * weftprof used to open -o with O_TRUNC before attaching and unlink it if
 * the attach failed, so `-p <bad pid> -o FILE` destroyed FILE, and as root
 * `-o /dev/null` deleted /dev/null.  Now the decision is taken twice: at
 * start, to report a hopeless path before any profiling, without touching
 * anything; and again at the end, just before writing, because the path
 * may have changed while weftprof sampled (a FIFO made, a file created).
 *
 * Replacing by rename keeps a reader from ever seeing half a profile and
 * keeps the old file intact until the new one is complete; it replaces
 * this name only, so other hard links to the old file keep the old
 * contents.  The replacement takes the old file's mode (and, when
 * weftprof may, its owner); a new file gets 0644 less the umask, as open
 * would give it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "output.h"

typedef struct target {
    bool inplace;       /* write path as it is (a device, a FIFO, stdout) */
    char *file;         /* else: the file to replace, symbolic links resolved ... */
    char *dir;          /* ... the directory it is in, for the temporary file ... */
    bool exists;        /* ... and whether it exists, with its stat */
    struct stat st;
} target;

bool output_is_stdout(const char *path)
{
    return strcmp(path, "-") == 0;
}

static int fail(char *err, size_t len, const char *path, int e, const char *why)
{
    snprintf(err, len, "-o %s: %s", path, why ? why : strerror(e));
    return -e;
}

static void target_free(target *t)
{
    free(t->file);
    free(t->dir);
    t->file = t->dir = NULL;
}

/* Where path's profile goes: 0, or -errno with err. */
static int classify(const char *path, target *t, char *err, size_t len)
{
    memset(t, 0, sizeof *t);
    if (output_is_stdout(path)) {
        t->inplace = true;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return fail(err, len, path, EISDIR, NULL);
        if (S_ISSOCK(st.st_mode))
            return fail(err, len, path, ENXIO, "a socket, which cannot be opened as a file");
        /* The file itself must be writable, as when it was opened in
         * place: renaming over it needs only the directory, which would
         * let -o replace a file its owner made read-only. */
        if (access(path, W_OK) != 0)
            return fail(err, len, path, errno, NULL);
        if (!S_ISREG(st.st_mode)) {
            t->inplace = true;
            return 0;
        }
        t->file = realpath(path, NULL);
        if (!t->file)
            return fail(err, len, path, errno, NULL);
        t->exists = true;
        t->st = st;
    } else if (errno != ENOENT) {
        return fail(err, len, path, errno, NULL);
    } else if (lstat(path, &st) == 0) {
        /* Where a link to nothing should lead is not weftprof's to guess,
         * and replacing the link would destroy it. */
        return fail(err, len, path, ENOENT, "a dangling symbolic link (its target does not exist)");
    } else {
        t->file = strdup(path);
        if (!t->file)
            return fail(err, len, path, ENOMEM, NULL);
    }
    const char *slash = strrchr(t->file, '/');
    if (slash && !slash[1]) {
        target_free(t);
        return fail(err, len, path, EISDIR, NULL);
    }
    t->dir = !slash ? strdup(".") : strndup(t->file, slash == t->file ? 1 : (size_t)(slash - t->file));
    if (!t->dir) {
        target_free(t);
        return fail(err, len, path, ENOMEM, NULL);
    }
    if (access(t->dir, W_OK | X_OK) != 0) {
        int e = errno;
        target_free(t);
        return fail(err, len, path, e, NULL);
    }
    return 0;
}

int output_check(const char *path, char *err, size_t len)
{
    if (output_is_stdout(path) && isatty(STDOUT_FILENO))
        return fail(err, len, path, ENOTTY, "stdout is a terminal: redirect it to a file or a pipe");
    target t;
    int e = classify(path, &t, err, len);
    target_free(&t);
    return e;
}

/* A device, a FIFO or stdout: opened now, written in place. */
static int write_inplace(const char *path, wp_output_fn fn, void *arg, char *err, size_t len)
{
    /* Opening a FIFO waits for a reader.  The target is detached by now,
     * so let Ctrl-C, SIGTERM and SIGHUP end weftprof meanwhile, as they
     * would end any program waiting there (the sampling loop keeps them
     * blocked to take them synchronously). */
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    sigprocmask(SIG_UNBLOCK, &stops, &old);
    bool out = output_is_stdout(path);
    int fd = out ? STDOUT_FILENO : open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
    int e = fd < 0 ? -errno : fn(fd, arg);
    if (fd >= 0 && !out && close(fd) < 0 && e == 0)
        e = -errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (e < 0)
        snprintf(err, len, "writing %s: %s", out ? "stdout" : path, strerror(-e));
    return e;
}

/* A regular file, or none yet: a temporary file beside it, renamed over it
 * once complete. */
static int write_replace(const char *path, const target *t, wp_output_fn fn, void *arg,
                         char *err, size_t len)
{
    const char *slash = strrchr(t->file, '/');
    const char *base = slash ? slash + 1 : t->file;
    size_t n = strlen(t->dir) + strlen(base) + sizeof "/..XXXXXX";
    char *tmp = malloc(n);
    if (!tmp)
        return fail(err, len, path, ENOMEM, NULL);
    snprintf(tmp, n, "%s/.%s.XXXXXX", t->dir, base);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return fail(err, len, path, e, NULL);
    }
    mode_t mode;
    if (t->exists) {
        mode = t->st.st_mode & 07777;
        /* Keeps the owner when weftprof may (as root); otherwise the file
         * becomes the caller's, as any file it creates.  Before fchmod,
         * which a chown would undo for setuid bits. */
        if (t->st.st_uid != geteuid() || t->st.st_gid != getegid())
            (void)!fchown(fd, t->st.st_uid, t->st.st_gid);
    } else {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0644 & ~mask;
    }
    int e = fchmod(fd, mode) < 0 ? -errno : 0;
    if (e == 0)
        e = fn(fd, arg);
    if (e == 0 && fsync(fd) < 0)    /* the data is on disk before the name points at it */
        e = -errno;
    if (close(fd) < 0 && e == 0)
        e = -errno;
    if (e == 0 && rename(tmp, t->file) < 0)
        e = -errno;
    if (e < 0) {
        unlink(tmp);    /* our own temporary file: the only file weftprof ever unlinks */
        snprintf(err, len, "writing %s: %s", path, strerror(-e));
    }
    free(tmp);
    return e;
}

int output_write(const char *path, wp_output_fn fn, void *arg, char *err, size_t len)
{
    target t;
    int e = classify(path, &t, err, len);
    if (e == 0)
        e = t.inplace ? write_inplace(path, fn, arg, err, len) : write_replace(path, &t, fn, arg, err, len);
    target_free(&t);
    return e;
}
