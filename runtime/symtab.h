/*
 * symtab.h — moved to diag/symtab.h with the rest of the diagnostics.
 *
 * proc.c still includes this name for weft__symtab_fini (proc.c is being
 * reworked on another branch and was left alone here); this forwarding
 * header goes away once it includes "diag/symtab.h" itself.
 */
#include "diag/symtab.h"
