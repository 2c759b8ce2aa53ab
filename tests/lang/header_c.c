/*
 * header_c.c — weft.h compiles cleanly as strict C (built as C99 and C11
 * with -pedantic-errors by tests/CMakeLists.txt).
 */
#include <weft.h>

int weft_header_check_c(void);
int weft_header_check_c(void)
{
    weft_mutex m = WEFT_MUTEX_INIT;
    (void)m;
    return WEFT_MAXPROCS_MAX;
}
