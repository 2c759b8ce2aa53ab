/*
 * env.c — settings read once at start-up: WEFT_MAXPROCS and WEFT_STACK, and
 * whether AddressSanitizer or a race detector is in the process.
 * A bad value gets one warning naming it and is otherwise ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "race.h"

#if !defined(__SANITIZE_ADDRESS__)
bool weft__asan;
bool weft__tsan;
bool weft__sanswitch;
#endif

static int maxprocs_env;            /* 0: unset */
static AO_t maxprocs_preboot;       /* weft_maxprocs before boot */
static AO_t env_done;

/* A decimal count with an optional k/M suffix.  No sign and no
 * whitespace anywhere (strtoull would skip leading blanks but not
 * trailing ones): as Go's strconv.Atoi reads GOMAXPROCS. */
static bool parse_size(const char *s, unsigned long long *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    if (*end != '\0' || end == s)
        return false;
    if (v > (1ull << 40) / mul)
        return false;
    *out = v * mul;
    return true;
}

void weft__env_init(void)
{
    if (!AO_compare_and_swap_full(&env_done, 0, 1))
        return;
#if !defined(__SANITIZE_ADDRESS__)
    /* The program was built with -fsanitize=address: announce stack
     * switches to it (runtime.h).  Set before the first goroutine. */
    weft__asan = __sanitizer_start_switch_fiber && __sanitizer_finish_switch_fiber &&
                 __asan_unpoison_memory_region;
#endif
    /* ThreadSanitizer, helgrind or DRD (race.c): also before the first
     * goroutine, whose creation makes its fiber. */
    weft__race_init();
    /* store: before the first goroutine, whose creation publishes it */
    AO_char_store(&weft__chanhooks, weft__race ? CHANHOOK_RACE : 0);
#if !defined(__SANITIZE_ADDRESS__)
    weft__sanswitch = weft__asan || weft__tsan || weft__vgswitch;
#endif
    weft__scheddebug_init();
    weft__newproc_init();
    const char *s = getenv("WEFT_MAXPROCS");
    if (s) {
        unsigned long long v;
        if (parse_size(s, &v) && v >= 1 && v <= WEFT_MAXPROCS_MAX && !strpbrk(s, "kKmM"))
            maxprocs_env = (int)v;
        else
            weft__printf(2, "weft: ignoring WEFT_MAXPROCS=\"%s\": want an integer from 1 to %d\n",
                         s, WEFT_MAXPROCS_MAX);
    }
    s = getenv("WEFT_STACK");
    if (s) {
        unsigned long long v;
        if (parse_size(s, &v) && v >= WEFT_STACK_MIN && v <= WEFT_STACK_MAX)
            weft__stack_default = ((size_t)v + 4095) & ~(size_t)4095;
        else
            weft__printf(2, "weft: ignoring WEFT_STACK=\"%s\": want bytes (k/M suffix allowed) from %u to %u\n",
                         s, (unsigned)WEFT_STACK_MIN, (unsigned)WEFT_STACK_MAX);
    }
}

int weft__env_maxprocs(void)
{
    weft__env_init();
    AO_t pre = AO_load(&maxprocs_preboot);
    if (pre)
        return (int)pre;
    if (maxprocs_env)
        return maxprocs_env;
    return weft__ncpu();
}

/* weft_maxprocs before the runtime runs: remembers the value for boot. */
int weft__maxprocs_preboot(int n)
{
    int prev = weft__env_maxprocs();
    if (n > 0)
        AO_store(&maxprocs_preboot, (AO_t)n);    /* the caller checked the maximum */
    return prev;
}
