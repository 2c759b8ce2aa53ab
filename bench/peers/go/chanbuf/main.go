// Command chanbuf is the Go peer of weft's bench_chanbuf: one producer sends
// 1..n through a channel of capacity 128 to one consumer, which sums them;
// the time per item is printed and the sum checked.
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
	n := flag.Int("n", 10000000, "items")
	flag.Parse()
	if *procs <= 0 || *n < 1 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "chanbuf: bad arguments: -p %d -n %d %q\n", *procs, *n, flag.Args())
		os.Exit(2)
	}
	runtime.GOMAXPROCS(*procs)

	items := make(chan int, 128)
	result := make(chan int64)
	start := time.Now()
	go func() {
		var sum int64
		for v := range items {
			sum += int64(v)
		}
		result <- sum
	}()
	go func() {
		for i := 1; i <= *n; i++ {
			items <- i
		}
		close(items)
	}()
	total := <-result
	elapsed := time.Since(start)
	want := int64(*n) * int64(*n+1) / 2
	if total != want {
		fmt.Fprintf(os.Stderr, "chanbuf: wrong answer: sum %d, want %d\n", total, want)
		os.Exit(1)
	}
	fmt.Printf("name=chanbuf impl=go procs=%d ns_per_op=%.1f maxrss_kb=%d\n",
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
