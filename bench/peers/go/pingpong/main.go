// Command pingpong is the Go peer of weft's bench_pingpong: main sends a
// counter on an unbuffered channel, another goroutine adds one and sends it
// back on a second one; the cost of one round trip is printed.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	procs := flag.Int("p", 1, "GOMAXPROCS")
	n := flag.Int("n", 1000000, "round trips")
	flag.Parse()
	if *procs <= 0 || *n < 1 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "pingpong: bad arguments: -p %d -n %d %q\n", *procs, *n, flag.Args())
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)

	ping := make(chan int)
	pong := make(chan int)
	go func() {
		for v := range ping {
			pong <- v + 1
		}
	}()
	start := time.Now()
	v := 0
	for i := 0; i < *n; i++ {
		ping <- v
		v = <-pong
	}
	elapsed := time.Since(start)
	close(ping)
	if v != *n {
		fmt.Fprintf(os.Stderr, "pingpong: wrong answer: counter is %d after %d round trips\n", v, *n)
		os.Exit(1)
	}
	fmt.Printf("name=pingpong impl=go procs=%d ns_per_op=%.1f maxrss_kb=%d\n",
		runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/float64(*n), maxRSS())
}

// maxRSS returns the peak resident set size of this process in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}
