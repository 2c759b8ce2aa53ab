/*
 * cxx_api.cpp — weft from C++: the header compiles as C++11/17/20 and a
 * program uses goroutines, channels, a mutex and a wait group through it.
 * Exit 0 when every check holds.
 */
#include <cstdio>
#include <cstdlib>

#include <weft.h>

namespace {

struct shared {
    weft_chan *ch;
    weft_mutex mu;
    weft_wg producers, consumers;
    long total;
};

void producer(void *arg)
{
    auto *s = static_cast<shared *>(arg);
    for (int i = 1; i <= 100; i++)
        weft_chan_send(s->ch, &i);
    weft_wg_done(&s->producers);
}

void consumer(void *arg)
{
    auto *s = static_cast<shared *>(arg);
    int v;
    while (weft_chan_recv(s->ch, &v)) {
        weft_mutex_lock(&s->mu);
        s->total += v;
        weft_mutex_unlock(&s->mu);
    }
    weft_wg_done(&s->consumers);
}

void check(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "cxx_api: %s\n", what);
        std::exit(1);
    }
}

void mainfn(void *)
{
    shared s = { weft_chan_new(sizeof(int), 4), WEFT_MUTEX_INIT, WEFT_WG_INIT, WEFT_WG_INIT, 0 };
    check(s.ch != nullptr, "weft_chan_new");
    weft_wg_add(&s.producers, 4);
    for (int i = 0; i < 4; i++)
        check(weft_go(producer, &s) > 0, "weft_go");
    weft_wg_add(&s.consumers, 2);
    check(weft_go(consumer, &s) > 0 && weft_go(consumer, &s) > 0, "weft_go(consumer)");
    // A captureless lambda converts to the plain function pointer weft_go takes.
    check(weft_go([](void *arg) {
              auto *p = static_cast<shared *>(arg);
              weft_wg_wait(&p->producers);
              weft_chan_close(p->ch);
          }, &s) > 0, "weft_go(lambda)");
    weft_wg_wait(&s.consumers);
    check(s.total == 4 * 5050, "the sum of what was sent");
    weft_chan_free(s.ch);
}

} // namespace

int main()
{
    check(weft_main(mainfn, nullptr) == 0, "weft_main");
    std::puts("cxx_api: ok");
    return 0;
}
