/*
 * blockwarn.c — SCHEDDEBUG=blockwarn=N's report of a goroutine parked in
 * one wait for more than N seconds (sysmon finds it: sysmon.c), once per
 * wait, on standard error:
 *
 *   weft: blockwarn: goroutine 9 has waited 61s in chan receive
 *   	on chan 0x7f2c1c000c70 (receive): len 0, cap 4, open; also parked on it: 2 receivers, 0 senders
 *   goroutine 9 [chan receive, 1 minutes]:
 *   stuck_leaf(...)
 *   	...
 *   created by stuck_worker in goroutine 5
 *   	...
 *   [originating from goroutine 5]:     (with SCHEDDEBUG=tracebackancestors)
 *   	...
 *
 * The goroutine is not stopped while it is read: its traceback is
 * formatted into memory, and written only if it is still in the same
 * wait afterwards (a goroutine woken meanwhile is no longer stuck, and
 * its stack may have changed under the walk).  Channels are counted
 * under their lock (weft__view_chanwaiters), which also keeps
 * weft_chan_free from freeing one under the count.
 */
#include "schedview.h"
#include "traceback.h"

/* Only sysmon reports: one buffer, not on its small stack. */
static char report[64 << 10];

static void waitsline(weft__out *o, G *gp, int64_t since, const weft__waitobj *w)
{
    weft__outf(o, "\ton %s 0x%lx", weft__waitkind(w->kind), (unsigned long)w->addr);
    if (w->kind != VWAIT_CHAN) {
        weft__outf(o, "\n");
        return;
    }
    weft__waitobj c = *w;
    int nrecv = 0, nsend = 0;
    if (!weft__view_chanwaiters(gp, since, w->addr, &c, &nrecv, &nsend)) {
        weft__outf(o, "\n");
        return;
    }
    /* Others: this goroutine is one of the waiters on its side. */
    if (w->dir == VDIR_RECV && nrecv > 0)
        nrecv--;
    if (w->dir == VDIR_SEND && nsend > 0)
        nsend--;
    weft__outf(o, " (%s): len %llu, cap %llu, %s; also parked on it: %d receivers, %d senders\n",
               w->dir == VDIR_RECV ? "receive" : w->dir == VDIR_SEND ? "send" : "select",
               (unsigned long long)c.len, (unsigned long long)c.cap, c.closed ? "closed" : "open", nrecv, nsend);
}

void weft__blockwarn(G *gp, int64_t since, int64_t now)
{
    weft__gview g;
    weft__view_g(gp, &g);
    if (g.status != VGwaiting || g.waitsince != since)
        return;
    weft__out o;
    weft__out_mem(&o, report, sizeof report);
    weft__outf(&o, "weft: blockwarn: goroutine %lld has waited %llds in %s\n", (long long)g.goid,
               (long long)((now - since) / 1000000000), g.waitreason[0] ? g.waitreason : "waiting");
    weft__waitobj w[8];
    int n = weft__view_gwaits(gp, w, 8);
    for (int i = 0; i < n && i < 8; i++)
        waitsline(&o, gp, since, &w[i]);
    if (n > 8)
        weft__outf(&o, "\t...and %d more\n", n - 8);
    weft__goroutineheader(&o, &g);
    weft__unwinder u;
    if (g.walk == VGwalk_saved) {
        weft__unwind_init(&u, g.pc, g.fp, g.stacklo, g.stackhi);
        weft__unwind_alias(&u, g.sp, g.copy);
        weft__tbopts opt = { 0 };
        weft__traceback(&o, &g, &u, false, &opt);
    }
    /* Written only if the wait outlived the reading of it. */
    if (!weft__view_stillwaiting(gp, since))
        return;
    weft__out f;
    weft__out_fd(&f, 2);
    weft__out_write(&f, report, o.n);
    if (o.dropped)
        weft__outf(&f, "...additional frames elided...\n");
    weft__out_flush(&f);
}
