// Command yield is the Go peer of weft's bench_yield: two goroutines on one
// P (the main goroutine and one other) each call runtime.Gosched n/2 times,
// and the cost of one switch is printed.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func yieldLoop(k int) {
	for i := 0; i < k; i++ {
		runtime.Gosched()
	}
}

func main() {
	procs := flag.Int("p", 1, "GOMAXPROCS")
	n := flag.Int("n", 10000000, "total switches (each goroutine yields n/2 times)")
	flag.Parse()
	if *procs <= 0 || *n < 2 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "yield: bad arguments: -p %d -n %d %q\n", *procs, *n, flag.Args())
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)
	half := *n / 2

	// The main goroutine is the second of the two yielders, so exactly
	// two goroutines take turns; at the end it parks in wg.Wait until the
	// other one has finished its last few yields.
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		yieldLoop(half)
		wg.Done()
	}()
	yieldLoop(half)
	wg.Wait()
	elapsed := time.Since(start)

	fmt.Printf("name=yield impl=go procs=%d ns_per_op=%.1f maxrss_kb=%d\n",
		runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/float64(2*half), maxRSS())
}

// maxRSS returns the peak resident set size of this process in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}
