/*
 * sample.c — one stack of one stopped thread, through libunwind-ptrace.
 *
 * The address space is created once with _UPT_accessors and caching policy
 * UNW_CACHE_GLOBAL: libunwind then remembers, per instruction address, the
 * register-save rules it parsed from .eh_frame, so a warm sample costs a few
 * PTRACE_PEEKDATA reads per frame instead of a lookup of the ELF image (each
 * _UPT handle caches one image only; a stack through libc, the program and
 * libc again would otherwise open and map files at every step).  Each thread
 * keeps its own _UPT handle (it names the tid to read registers from) for as
 * long as it lives.  Names are not looked up here: the target is stopped
 * while this runs, so the pcs are resolved after it resumes (symbols.c).
 * Only a frame's function bounds are, once per new address: they need the
 * target's memory (the FDE tables are read through ptrace), and they tell a
 * true symbol from the nearest exported one in a stripped library.
 *
 * A frame without unwind info (a thread's first instruction after clone,
 * hand-written assembly) makes libunwind guess through the frame pointer,
 * and the guess may be any word on the stack.  Each step from such an
 * address costs libunwind a read of /proc/PID/maps and a failed attempt to
 * open the "object" it lies in, so the walk stops at the first return
 * address outside every executable mapping.  The mappings are reread when a
 * miss might be a library loaded since, at most every 100 ms.
 */
#include <libunwind-ptrace.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

int sampler_init(wp_sampler *s)
{
    s->as = unw_create_addr_space(&_UPT_accessors, 0);
    if (!s->as)
        return -1;
    unw_set_caching_policy(s->as, UNW_CACHE_GLOBAL);
    unw_set_cache_size(s->as, 4096, 0);  /* hot pcs of a large program fit */
    return 0;
}

void sampler_fini(wp_sampler *s)
{
    if (s->as)
        unw_destroy_addr_space(s->as);
    free(s->exec);
    memset(s, 0, sizeof *s);
}

void sampler_flush(wp_sampler *s)
{
    unw_flush_cache(s->as, 0, 0);
    s->nexec = 0;
    s->exec_read = 0;
}

static int by_lo(const void *a, const void *b)
{
    const wp_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void read_exec_ranges(wp_sampler *s, pid_t tid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)tid);
    s->exec_read = wp_now();
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    s->nexec = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3 || perms[2] != 'x')
            continue;
        if (s->nexec == s->capexec) {
            int nc = s->capexec ? 2 * s->capexec : 64;
            wp_range *nr = realloc(s->exec, (size_t)nc * sizeof *nr);
            if (!nr)
                break;
            s->exec = nr;
            s->capexec = nc;
        }
        s->exec[s->nexec++] = (wp_range){ lo, hi };
    }
    fclose(f);
    qsort(s->exec, (size_t)s->nexec, sizeof *s->exec, by_lo);
}

static bool in_ranges(const wp_sampler *s, uint64_t ip)
{
    int lo = 0, hi = s->nexec;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ip < s->exec[mid].lo)
            hi = mid;
        else if (ip >= s->exec[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

/* Whether ip lies in an executable mapping of the target. */
static bool executable(wp_sampler *s, pid_t tid, uint64_t ip)
{
    if (in_ranges(s, ip))
        return true;
    if (s->exec_read && wp_now() - s->exec_read < 100000000)
        return false;
    read_exec_ranges(s, tid);
    return in_ranges(s, ip);
}

void sampler_thread_gone(wp_sampler *s, wp_thread *th)
{
    (void)s;
    if (th->upt)
        _UPT_destroy(th->upt);
    th->upt = NULL;
}

int sampler_unwind(wp_sampler *s, wp_thread *th, uintptr_t *pcs, uint64_t *starts, int max,
                   wp_isnew isnew, void *arg)
{
    if (!th->upt && !(th->upt = _UPT_create(th->tid)))
        return 0;
    unw_cursor_t c;
    if (unw_init_remote(&c, s->as, th->upt) < 0)
        return 0;
    int n = 0;
    bool exact = false;  /* this frame's ip was interrupted, not returned to */
    unw_word_t lastip = 0, lastsp = 0;
    while (n < max) {
        unw_word_t ip, sp = 0;
        if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        unw_get_reg(&c, UNW_REG_SP, &sp);
        if (n > 0 && ip == lastip && sp == lastsp)
            break;  /* no progress: bad unwind info would loop forever */
        bool code = executable(s, th->tid, ip);
        if (!code && n > 0)
            break;  /* a guess, not a return address */
        lastip = ip;
        lastsp = sp;
        pcs[n] = (uintptr_t)ip + (n > 0 && exact);
        starts[n] = 0;
        unw_proc_info_t pi;
        if (isnew(arg, n == 0 ? pcs[0] : pcs[n] - 1) && unw_get_proc_info(&c, &pi) == 0 &&
            !(pi.start_ip == ip && pi.end_ip == ip + 1))  /* libunwind's stand-in for "no FDE" */
            starts[n] = pi.start_ip;
        n++;
        exact = unw_is_signal_frame(&c) > 0;
        if (!code || unw_step(&c) <= 0)
            break;
    }
    return n;
}
