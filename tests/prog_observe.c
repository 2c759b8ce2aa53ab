/*
 * prog_observe.c — the observability paths end to end, twice in one
 * process (weft_main, return, weft_main again), for valgrind: the CPU
 * profiler at 1 kHz, weft_stack of everyone, the goroutine and
 * threadcreate profiles, a detailed dump.  No error and no leak allowed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <weft.h>
static weft_chan *ch;
static __attribute__((noinline)) void burn(void *a) { (void)a; volatile long x = 0; for (long i = 0; i < 20000000; i++) x += i; (void)x; int v = 1; weft_chan_send(ch, &v); }
static void mainfn(void *a) {
  (void)a;
  ch = weft_chan_new(sizeof(int), 0);
  FILE *f = tmpfile();
  if (weft_cpuprofile_start(fileno(f), 1000) != 0) abort();
  weft_go(burn, NULL);
  int v; weft_chan_recv(ch, &v);
  if (weft_cpuprofile_stop() != 0) abort();
  fclose(f);
  static char buf[1 << 16];
  int n = weft_stack(buf, sizeof buf, true);
  if (n <= 0) abort();
  FILE *g = tmpfile();
  weft_profile_write("goroutine", fileno(g), 0);
  weft_profile_write("threadcreate", fileno(g), 1);
  weft_schedtrace(fileno(g), true);
  fclose(g);
  weft_chan_free(ch);
  printf("ok %d\n", n);
}
int main(void) { int r = weft_main(mainfn, NULL); r |= weft_main(mainfn, NULL); return r; }
