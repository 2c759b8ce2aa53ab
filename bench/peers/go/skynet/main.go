// Command skynet is the Go peer of weft's bench_skynet, the classic skynet
// benchmark: a tree of goroutines with n leaves (default 1,000,000), each
// inner node spawning 10 children and summing their numbers over its own
// unbuffered channel.  The sum must be n(n-1)/2 (499999500000).  It prints
// the time of the whole tree and the peak RSS, and per goroutine spawned
// the minor page faults and (peak RSS - RSS before the tree).
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
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

	rssBefore := rss()
	fltBefore := minflt()
	start := time.Now()
	c := make(chan int64)
	go skynet(c, 0, *n)
	got := <-c
	elapsed := time.Since(start)
	fltAfter := minflt()
	if got != want {
		fmt.Fprintf(os.Stderr, "skynet: wrong answer: sum %d, want %d\n", got, want)
		os.Exit(1)
	}
	var ngoroutines int64
	for s := *n; s >= 1; s /= div {
		ngoroutines += s
	}
	peak := maxRSS()
	fmt.Printf("name=skynet impl=go procs=%d ms_per_op=%.3f maxrss_kb=%d sum=%d faults_per_g=%.2f rss_bytes_per_g=%.0f\n",
		runtime.GOMAXPROCS(0), float64(elapsed.Nanoseconds())/1e6, peak, got,
		float64(fltAfter-fltBefore)/float64(ngoroutines), float64(peak-rssBefore)*1024/float64(ngoroutines))
}

// minflt returns the minor page faults of this process so far.
func minflt() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Minflt)
}

// rss returns the resident set size of this process now in KiB (VmRSS),
// or -1.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return v
			}
		}
	}
	return -1
}

// maxRSS returns the peak resident set size of this process in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}
