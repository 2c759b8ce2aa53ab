#!/bin/sh
# check.sh PROG_TRACE WORKDIR — Go's own trace parser judges weft's traces.
#
# Runs tests/prog_trace (a known workload: spawns, yields, every blocking
# primitive, syscalls sysmon hands off, weft_maxprocs changes, 2 Ps) three
# times through weft_trace_start/stop and twice under
# SCHEDDEBUG=tracefile, and checks for each trace that
#   - `go tool trace -d` parses it (Go's parser rejects out-of-order
#     timestamps, a start of a goroutine that is not runnable, an unblock
#     of one that is not waiting, a P stopped while running a goroutine ...);
#   - it holds one GoCreate per goroutine created, plus main's;
#   - every kind of event the workload must cause is there;
#   - `go tool trace -pprof=sched` and `-pprof=sync` name the workload's
#     own functions;
# and that the flight recorder's windows, cut while the workload runs,
# parse too.
# Exits 77 (ctest's SKIP_RETURN_CODE) without a Go toolchain.
set -u
prog=$1
dir=$2
command -v go >/dev/null 2>&1 || { echo "go not found: skipped"; exit 77; }
mkdir -p "$dir"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

check() {
    name=$1; trace=$2; created=$3
    if ! go tool trace -d "$trace" > "$dir/$name.txt" 2> "$dir/$name.err"; then
        bad "$name: go tool trace -d: $(tail -1 "$dir/$name.err")"
        return
    fi
    n=$(grep -c ' GoCreate ' "$dir/$name.txt")
    [ "$n" -eq $((created + 1)) ] || bad "$name: $n GoCreate events, want $((created + 1))"
    for ev in GoStart GoEnd GoSched GoUnblock GoBlockSelect GoBlockSync GoBlockCond \
              GoBlockNet GoSleep GoSysCall GoSysBlock GoSysExit ProcStart ProcStop Gomaxprocs \
              UserLog UserRegion; do
        grep -q " $ev " "$dir/$name.txt" || bad "$name: no $ev event"
    done
    # a channel hand-off blocks the receiver or the sender, whichever came first
    grep -Eq ' GoBlock(Recv|Send) ' "$dir/$name.txt" || bad "$name: no GoBlockRecv or GoBlockSend event"
    # gomaxprocs went 2 -> 1 -> 3 -> 2 -> 1 -> 2
    for p in 1 3; do
        grep -q " Gomaxprocs .* procs=$p\$" "$dir/$name.txt" || bad "$name: no Gomaxprocs procs=$p"
    done
    go tool trace -pprof=sched "$trace" > "$dir/$name.sched.pb" 2>/dev/null || bad "$name: -pprof=sched"
    go tool trace -pprof=sync "$trace" > "$dir/$name.sync.pb" 2>/dev/null || bad "$name: -pprof=sync"
    go tool pprof -top -nodefraction=0 -nodecount=1000 "$dir/$name.sched.pb" > "$dir/$name.sched.txt" 2>&1
    go tool pprof -top -nodefraction=0 -nodecount=1000 "$dir/$name.sync.pb" > "$dir/$name.sync.txt" 2>&1
    grep -q trace_worker_ "$dir/$name.sched.txt" || bad "$name: -pprof=sched names no trace_worker_"
    for f in trace_worker_mutex trace_worker_condwait trace_worker_select; do
        grep -q "$f" "$dir/$name.sync.txt" || bad "$name: -pprof=sync does not name $f"
    done
}

for i in 1 2 3; do
    t="$dir/api$i.trace"
    out=$("$prog" "$t") || { bad "api$i: prog_trace failed"; continue; }
    check "api$i" "$t" "${out#created=}"
done
for i in 1 2; do
    t="$dir/boot$i.trace"
    out=$(SCHEDDEBUG="tracefile=$t" "$prog" -) || { bad "boot$i: prog_trace failed"; continue; }
    check "boot$i" "$t" "${out#created=}"
done
# The flight recorder: windows cut at arbitrary moments while goroutines
# churn (its segments turn over several times) all parse, and the last
# one holds the workload's end and no longer its start.
for i in 1 2 3; do
    t="$dir/flight$i.trace"
    "$prog" -f "$t" > /dev/null || { bad "flight$i: prog_trace -f failed"; continue; }
    for w in "$t" "$t.1" "$t.2" "$t.3" "$t.4"; do
        go tool trace -d "$w" > "$w.txt" 2> "$w.err" || bad "flight$i: $(basename "$w"): $(tail -1 "$w.err")"
    done
    grep -q 'message=end$' "$t.txt" || bad "flight$i: the last window misses the workload's end"
    grep -q 'message=start$' "$t.txt" && bad "flight$i: the last window still holds the start (no turnover)"
done
[ $fail -eq 0 ] && echo "ok: every trace parses, counts and profiles match"
exit $fail
