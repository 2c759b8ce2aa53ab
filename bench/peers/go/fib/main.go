// Command fib is the Go peer of weft's bench_fib: fib(n) where every call
// above the cutoff computes one branch in a new goroutine, repeated r times;
// it prints the time of one fib(n).
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

const cutoff = 18

func fibSerial(n int) int {
	if n < 2 {
		return n
	}
	return fibSerial(n-1) + fibSerial(n-2)
}

func fib(n int) int {
	if n <= cutoff {
		return fibSerial(n)
	}
	var wg sync.WaitGroup
	var a int
	wg.Add(1)
	go func() {
		a = fib(n - 1)
		wg.Done()
	}()
	b := fib(n - 2)
	wg.Wait()
	return a + b
}

func main() {
	procs := flag.Int("p", 0, "GOMAXPROCS (0 = runtime default)")
	n := flag.Int("n", 27, "argument of fib")
	reps := flag.Int("r", 500, "repetitions")
	flag.Parse()
	if *procs < 0 || *n < 0 || *n > 40 || *reps <= 0 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "fib: bad arguments: -p %d -n %d -r %d %q\n", *procs, *n, *reps, flag.Args())
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	want := fibSerial(*n)

	start := time.Now()
	for i := 0; i < *reps; i++ {
		if got := fib(*n); got != want {
			fmt.Fprintf(os.Stderr, "fib: wrong answer: fib(%d) = %d, want %d\n", *n, got, want)
			os.Exit(1)
		}
	}
	elapsed := time.Since(start)

	fmt.Printf("name=fib impl=go procs=%d ms_per_op=%.4f maxrss_kb=%d\n",
		runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/1e6/float64(*reps), maxRSS())
}

// maxRSS returns the peak resident set size of this process in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}
