/*
 * test_stuck.c — why a goroutine is stuck: where it was born
 * (SCHEDDEBUG=tracebackancestors), long waits (blockwarn) and the JSON
 * goroutine dump (debug=3, checked with python3 -m json.tool).  The stuck
 * programs run in a child (prog_stuck.c) with SCHEDDEBUG set.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime.h"
#include "diag/scheddebug.h"
#include "diag/stacktab.h"
#include "testutil.h"

static char out[1 << 20], err[1 << 18];

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static int stuck(const char *mode, const char *scheddebug)
{
    if (scheddebug)
        setenv("SCHEDDEBUG", scheddebug, 1);
    else
        unsetenv("SCHEDDEBUG");
    return run_prog("prog_stuck", mode, out, sizeof out, err, sizeof err);
}

static void exits(int st, int code)
{
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == code, "status 0x%x; stderr:\n%s", st, err);
}

/* ---- SCHEDDEBUG ---------------------------------------------------------------------- */

Test(stuck, scheddebug_keys)
{
    weft__scheddebug d;
    cr_assert_eq(weft__scheddebug_parse("tracebackancestors=5,blockwarn=60", &d, NULL, NULL), 0);
    cr_assert_eq(d.tracebackancestors, 5);
    cr_assert_eq(d.blockwarn, 60);
    cr_assert_eq(weft__scheddebug_parse("tracebackancestors=101", &d, NULL, NULL), 1);
    cr_assert_eq(d.tracebackancestors, 0, "over the limit: ignored");
    cr_assert_eq(weft__scheddebug_parse("blockwarn=-1", &d, NULL, NULL), 1);
    cr_assert_eq(d.blockwarn, 0);
}

/* ---- ancestry -------------------------------------------------------------------------- */

Test(stuck, ancestry_follows_created_by_in_gos_layout, .timeout = 60)
{
    exits(stuck("dump2", "tracebackancestors=5"), 0);
    /* A leaf: created by a worker, created by the spawner, created by main. */
    const char *leaf = strstr(out, "\nstuck_leaf(...)\n");
    cr_assert_not_null(leaf, "%s", out);
    const char *c = strstr(leaf, "created by stuck_worker in goroutine ");
    cr_assert_not_null(c, "%s", out);
    const char *a = strstr(c, "\n[originating from goroutine ");
    cr_assert_not_null(a, "%s", out);
    cr_assert_not_null(strstr(a, "]:\nstuck_worker(...)\n"), "%s", out);
    cr_assert_not_null(strstr(a, "\ncreated by stuck_spawner\n"), "an ancestor's creator, without \"in\":\n%s", out);
    cr_assert_not_null(strstr(a, "]:\nstuck_spawner(...)\n"), "%s", out);
    cr_assert_not_null(strstr(a, "\n[originating from goroutine 1]:\nfamily(...)\n"), "%s", out);
    /* Three leaves and the sender each print main's creating stack. */
    cr_assert_eq(count(out, "[originating from goroutine 1]:\n"), 4, "%s", out);
    cr_assert_eq(count(out, "[originating from goroutine "), 3 * 3 + 2, "%s", out);
}

Test(stuck, ancestry_is_off_by_default, .timeout = 60)
{
    exits(stuck("dump2", NULL), 0);
    cr_assert_not_null(strstr(out, "\nstuck_leaf(...)\n"), "%s", out);
    cr_assert_null(strstr(out, "[originating"), "%s", out);
}

Test(stuck, ancestry_keeps_at_most_n, .timeout = 60)
{
    exits(stuck("dump2", "tracebackancestors=1"), 0);
    /* Each goroutine keeps only its creator: the leaves their (dead)
     * workers, the sender the spawner; nobody reaches back to main. */
    cr_assert_eq(count(out, "[originating from goroutine "), 4, "%s", out);
    cr_assert_eq(count(out, "[originating from goroutine 1]"), 0, "%s", out);
}

Test(stuck, sigquit_shows_ancestry, .timeout = 60)
{
    exits(stuck("sigquit", "tracebackancestors=3"), 2);
    cr_assert_eq(strncmp(err, "SIGQUIT: quit\n", 14), 0, "stderr:\n%s", err);
    cr_assert_eq(count(err, "\nstuck_leaf(...)\n"), 3, "%s", err);
    cr_assert_eq(count(err, "[originating from goroutine 1]:\nfamily(...)\n"), 4, "%s", err);
}

/* Many goroutines created at one site share one stack record. */
static weft_wg spawned;
static void nothing(void *arg) { (void)arg; weft_wg_done(&spawned); }

static __attribute__((noinline)) void spawn_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        weft_go(nothing, NULL);
}

static void sharing_main(void *arg)
{
    uint64_t *grew = arg;
    weft_wg_add(&spawned, 1000);
    uint64_t before = weft__stacktab_len();
    spawn_many(NULL);
    weft_wg_wait(&spawned);
    *grew = weft__stacktab_len() - before;
}

Test(stuck, one_creation_site_one_stack_record, .timeout = 60)
{
    setenv("SCHEDDEBUG", "tracebackancestors=2", 1);
    uint64_t grew = 0;
    cr_assert_eq(weft_main(sharing_main, &grew), 0);
    cr_assert_eq(weft__debug.tracebackancestors, 2);
    cr_assert_eq(grew, 1, "1000 goroutines from one stack: one record, got %llu", (unsigned long long)grew);
}

/* ---- the JSON dump ----------------------------------------------------------------------- */

/* out is one JSON document python3's json.tool accepts. */
static void valid_json(void)
{
    char path[] = "/tmp/weft_stuck_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, out, strlen(out)), (ssize_t)strlen(out));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "python3 -m json.tool %s > /dev/null", path);
    int st = system(cmd);
    unlink(path);
    cr_assert_eq(st, 0, "python3 -m json.tool refused:\n%s", out);
}

Test(stuck, json_dump_is_one_valid_document, .timeout = 60)
{
    exits(stuck("dump3", "tracebackancestors=5"), 0);
    valid_json();
    static const char head[] = "{\"goroutines\":[{\"goid\":1,\"status\":\"running\"";
    cr_assert_eq(strncmp(out, head, strlen(head)), 0, "%s", out);
    cr_assert_not_null(strstr(out, "\n\"omitted\":0}\n"), "%s", out);
    /* Three leaves parked receiving on the buffered channel ... */
    cr_assert_eq(count(out, "\"wait_reason\":\"chan receive\""), 3, "%s", out);
    cr_assert_eq(count(out, "\"direction\":\"receive\",\"len\":0,\"cap\":4,\"closed\":false,"
                            "\"receivers\":3,\"senders\":0}"), 3, "%s", out);
    /* ... and the sender on the unbuffered one. */
    cr_assert_eq(count(out, "\"direction\":\"send\",\"len\":0,\"cap\":0,\"closed\":false,"
                            "\"receivers\":0,\"senders\":1}"), 1, "%s", out);
    cr_assert_eq(count(out, "{\"function\":\"stuck_leaf\",\"file\":"), 3, "%s", out);
    cr_assert_eq(count(out, "\"created_by\":{\"goid\":"), 4, "%s", out);
    /* Each leaf's ancestry: worker, spawner, main. */
    cr_assert_eq(count(out, "\"ancestors\":[{\"goid\":"), 4, "%s", out);
    cr_assert_eq(count(out, "{\"goid\":1,\"frames\":[{\"function\":\"family\""), 4, "%s", out);
}

Test(stuck, json_dump_without_ancestry, .timeout = 60)
{
    exits(stuck("dump3", NULL), 0);
    valid_json();
    cr_assert_eq(count(out, "\"ancestors\":[]"), 5, "%s", out);
    cr_assert_not_null(strstr(out, "\"wait_ns\":"), "%s", out);
}

/* ---- blockwarn ----------------------------------------------------------------------------- */

Test(stuck, blockwarn_reports_each_long_wait_once, .timeout = 60)
{
    exits(stuck("blockwarn", "blockwarn=1,tracebackancestors=1"), 0);
    /* The program runs 2.5 s: each of the four waits is reported after
     * 1 s, once; main's sleep is not a wait on anything. */
    cr_assert_eq(count(err, "weft: blockwarn: goroutine "), 4, "%s", err);
    cr_assert_eq(count(err, "s in chan receive\n\ton chan 0x"), 3, "%s", err);
    cr_assert_eq(count(err, " (receive): len 0, cap 4, open; also parked on it: 2 receivers, 0 senders\n"
                            "goroutine "), 3, "%s", err);
    cr_assert_eq(count(err, "s in chan send\n\ton chan 0x"), 1, "%s", err);
    cr_assert_eq(count(err, " (send): len 0, cap 0, open; also parked on it: 0 receivers, 0 senders\n"), 1,
                 "%s", err);
    cr_assert_eq(count(err, " [chan receive]:\nweft_chan_recv(...)\n"), 3, "the traceback:\n%s", err);
    cr_assert_eq(count(err, "\nstuck_leaf(...)\n"), 3, "%s", err);
    cr_assert_eq(count(err, "]:\nstuck_worker(...)\n"), 3, "the ancestry:\n%s", err);
    cr_assert_null(strstr(err, "[sleep"), "%s", err);
}

Test(stuck, blockwarn_is_off_by_default, .timeout = 60)
{
    exits(stuck("blockwarn", NULL), 0);
    cr_assert_null(strstr(err, "blockwarn"), "%s", err);
}
