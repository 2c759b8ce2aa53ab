/* nofp_user.h — the functions of nofp_user.c (code without frame pointers)
 * that test_nofp.c runs as goroutines. */
#ifndef WEFT_TEST_NOFP_USER_H
#define WEFT_TEST_NOFP_USER_H

#include <stdatomic.h>

#include "weft.h"

extern atomic_long nofp_sink;

/* nofp_worker -> nofp_top1 -> nofp_mid2 -> nofp_leaf3 -> weft_chan_recv(c). */
void nofp_worker(void *c);

/* nofp_via2 -> nofp_via1 -> fn(arg). */
void nofp_via2(void (*fn)(void *), void *arg);

/* qsort(.., nofp_cmp), whose first call receives from nofp_cmp_gate. */
extern weft_chan *nofp_cmp_gate;
void nofp_sorter(void *arg);

/* memset + memcpy of 64 KiB in a loop until nofp_stop. */
extern atomic_int nofp_stop;
void nofp_copier(void *arg);

/* clock_gettime in a loop, no scheduling point, until nofp_stop. */
void nofp_spinner(void *arg);

/* nofp_reader -> nofp_blocking_read: weft_syscall_enter, then a read of
 * nofp_pipe[0] (nofp_in_syscall set just before it). */
extern int nofp_pipe[2];
extern atomic_int nofp_in_syscall;
void nofp_reader(void *arg);

#endif
