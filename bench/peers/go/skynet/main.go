// Command skynet is the Go peer of weft's bench_skynet, the classic skynet
// benchmark: a tree of goroutines with n leaves (default 1,000,000), each
// inner node spawning 10 children and summing their numbers over its own
// unbuffered channel.  The sum must be n(n-1)/2 (499999500000).  It prints
// the time of the whole tree and the peak RSS.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

const div = 10

func skynet(c chan int64, num, size int64) {
	if size == 1 {
		c <- num
		return
	}
	rc := make(chan int64)
	var sum int64
	sub := size / div
	for i := int64(0); i < div; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	c <- sum
}

func main() {
	procs := flag.Int("p", 0, "GOMAXPROCS (0 = runtime default)")
	n := flag.Int64("n", 1000000, "leaves (a power of 10)")
	flag.Parse()
	ok := *procs >= 0 && *n >= 1 && flag.NArg() == 0
	for s := *n; ok && s > 1; s /= div {
		ok = s%div == 0
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "skynet: bad arguments: -p %d -n %d %q\n", *procs, *n, flag.Args())
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	want := *n * (*n - 1) / 2

	start := time.Now()
	c := make(chan int64)
	go skynet(c, 0, *n)
	got := <-c
	elapsed := time.Since(start)
	if got != want {
		fmt.Fprintf(os.Stderr, "skynet: wrong answer: sum %d, want %d\n", got, want)
		os.Exit(1)
	}
	fmt.Printf("name=skynet impl=go procs=%d ms_per_op=%.3f maxrss_kb=%d sum=%d\n",
		runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/1e6, maxRSS(), got)
}

// maxRSS returns the peak resident set size of this process in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}
