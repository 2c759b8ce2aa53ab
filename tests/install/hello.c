/* The smallest weft program, built against the installed library. */
#include <stdio.h>
#include <weft.h>

static void hello(void *arg)
{
    (void)arg;
    printf("hello from goroutine %lld\n", (long long)weft_id());
}

static void mainfn(void *arg)
{
    (void)arg;
    weft_go(hello, NULL);
    weft_yield();
    weft_yield();
}

int main(void)
{
    return weft_main(mainfn, NULL);
}
