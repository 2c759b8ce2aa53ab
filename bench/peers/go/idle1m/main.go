// Command idle1m is the Go peer of weft's bench_idle1m: n goroutines
// (default 1,000,000) check in on a WaitGroup and park receiving from one
// shared channel; it reports (RSS with all parked - RSS before) / n from
// /proc/self/status and the minor page faults the spawns and parks took per
// goroutine (getrusage), then closes the channel and checks that every one
// woke up and finished.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	release         = make(chan struct{})
	ready, finished sync.WaitGroup
	woken           int64
)

// parked is the body of every goroutine; a top-level function, not a
// closure, so that spawning allocates nothing but the goroutine.
func parked() {
	ready.Done()
	<-release
	atomic.AddInt64(&woken, 1)
	finished.Done()
}

// status returns VmRSS and VmPTE of this process in KiB (-1 if unreadable).
func status() (rss, pte int64) {
	rss, pte = -1, -1
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		v, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "VmPTE:":
			pte = v
		}
	}
	return
}

func main() {
	procs := flag.Int("p", 0, "GOMAXPROCS (0 = runtime default)")
	n := flag.Int("n", 1000000, "goroutines")
	flag.Parse()
	if *procs < 0 || *n < 1 || flag.NArg() != 0 {
		fmt.Fprintf(os.Stderr, "idle1m: bad arguments: -p %d -n %d %q\n", *procs, *n, flag.Args())
		os.Exit(2)
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	rssBefore, pteBefore := status()
	fltBefore := minflt()

	start := time.Now()
	ready.Add(*n)
	finished.Add(*n)
	for i := 0; i < *n; i++ {
		go parked()
	}
	ready.Wait()
	spawn := time.Since(start)
	time.Sleep(10 * time.Millisecond)
	parkedSeen := runtime.NumGoroutine()
	rssParked, pteParked := status()
	fltParked := minflt()

	start = time.Now()
	close(release)
	finished.Wait()
	rel := time.Since(start)

	if rssBefore < 0 || rssParked < 0 {
		fmt.Fprintln(os.Stderr, "idle1m: cannot read VmRSS from /proc/self/status")
		os.Exit(1)
	}
	if got := atomic.LoadInt64(&woken); got != int64(*n) || parkedSeen < *n {
		fmt.Fprintf(os.Stderr, "idle1m: wrong answer: %d goroutines existed while parked and %d woke up and finished, want %d\n",
			parkedSeen, got, *n)
		os.Exit(1)
	}
	perG := float64(rssParked-rssBefore) * 1024 / float64(*n)
	ptePerG := float64(pteParked-pteBefore) * 1024 / float64(*n)
	fmt.Printf("name=idle1m impl=go procs=%d bytes_per_g=%.0f maxrss_kb=%d pte_bytes_per_g=%.0f spawn_ms=%.1f release_ms=%.1f faults_per_g=%.2f\n",
		runtime.GOMAXPROCS(0), perG, maxRSS(), ptePerG,
		float64(spawn.Nanoseconds())/1e6, float64(rel.Nanoseconds())/1e6,
		float64(fltParked-fltBefore)/float64(*n))
}

// minflt returns the minor page faults of this process so far.
func minflt() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Minflt)
}

// maxRSS returns the peak resident set size of this process in KiB.
func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return int64(ru.Maxrss)
}
