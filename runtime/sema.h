/*
 * sema.h — semaphores keyed by address (sema.c), on which the sync types
 * wait.
 */
#ifndef WEFT_SEMA_H
#define WEFT_SEMA_H

#include "runtime.h"

/* Takes one unit of *addr, waiting (with reason r) until there is one.
 * lifo: queue at the head (a mutex waiter that already waited once).
 * deadline: absolute nanotime, 0 for none.  Returns true with the unit,
 * false on timeout (or -ENOMEM arming it: no unit either way). */
bool weft__semacquire(uint32_t *addr, bool lifo, weft__waitreason r, int64_t deadline);
/* Adds a unit and hands it to the first waiter for addr, if any; handoff:
 * and lets that waiter run at once (a starving mutex). */
void weft__semrelease(uint32_t *addr, bool handoff);

#endif
