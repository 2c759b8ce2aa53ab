// Command spawn is the Go peer of weft's bench_spawn: it starts n goroutines
// that each increment an atomic counter and finish, waits for all of them
// and prints the cost of one spawn+finish.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	counter int64
	wg      sync.WaitGroup
)

// work is the body of every spawned goroutine.  It is a top-level function,
// not a closure, so that spawning allocates nothing but the goroutine.
func work() {
	atomic.AddInt64(&counter, 1)
	wg.Done()
}

func main() {
	procs := flag.Int("p", 0, "GOMAXPROCS (0 = runtime default)")
	n := flag.Int("n", 1000000, "goroutines to spawn")
	flag.Parse()
	if *procs < 0 || *n <= 0 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "spawn: bad arguments: -p %d -n %d %q\n", *procs, *n, flag.Args())
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}

	start := time.Now()
	wg.Add(*n)
	for i := 0; i < *n; i++ {
		go work()
	}
	wg.Wait()
	elapsed := time.Since(start)

	if got := atomic.LoadInt64(&counter); got != int64(*n) {
		fmt.Fprintf(os.Stderr, "spawn: wrong answer: counter = %d, want %d\n", got, *n)
		os.Exit(1)
	}
	fmt.Printf("name=spawn impl=go procs=%d ns_per_op=%.1f maxrss_kb=%d\n",
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
