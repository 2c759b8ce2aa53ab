#!/bin/sh
# death.sh PROG_TRACE WORKDIR [SANITIZED] — SCHEDDEBUG=flightrecorder=PATH leaves the
# flight recorder's window behind when the program dies.
#
# Runs tests/prog_trace's workload and then kills it four ways: a panic,
# a SIGSEGV and a SIGQUIT in one goroutine while another keeps running
# (and tracing), and a deadlock of main.  For each death it checks that
#   - the process died Go's way (exit status 2, its headline);
#   - the window was written before the tracebacks;
#   - `go tool trace -d` parses it;
#   - it holds the dying goroutine's last events: its "dying" log, the
#     last thing it did, on that goroutine.
# With SANITIZED=1 (the AddressSanitizer + UBSan build) the SIGSEGV is left
# out: UBSan reports the store through NULL first, and exits 1.
# Exits 77 (ctest's SKIP_RETURN_CODE) without a Go toolchain.
set -u
prog=$1
dir=$2
sanitized=${3:-0}
command -v go >/dev/null 2>&1 || { echo "go not found: skipped"; exit 77; }
mkdir -p "$dir"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

hows="panic segv quit deadlock"
[ "$sanitized" = 1 ] && hows="panic quit deadlock"
for how in $hows; do
    t="$dir/$how.trace"
    rm -f "$t"
    SCHEDDEBUG="flightrecorder=$t" "$prog" -x "$how" > "$dir/$how.out" 2> "$dir/$how.err"
    rc=$?
    [ $rc -eq 2 ] || { bad "$how: exit status $rc, want 2: $(head -3 "$dir/$how.err")"; continue; }
    case $how in
    panic)    head='^panic: prog_trace: dying as asked' ;;
    segv)     head='^panic: runtime error: invalid memory address' ;;
    quit)     head='^SIGQUIT: quit' ;;
    deadlock) head='^fatal error: all goroutines are asleep - deadlock!' ;;
    esac
    grep -q "$head" "$dir/$how.err" || bad "$how: no headline '$head'"
    w=$(grep -n "^weft: flight recorder: window written to $t\$" "$dir/$how.err" | cut -d: -f1)
    g=$(grep -n '^goroutine ' "$dir/$how.err" | head -1 | cut -d: -f1)
    [ -n "$w" ] || { bad "$how: no 'window written' line: $(head -5 "$dir/$how.err")"; continue; }
    [ -n "$g" ] && [ "$w" -gt "$g" ] && bad "$how: the window was written after the tracebacks"
    if ! go tool trace -d "$t" > "$t.txt" 2> "$t.err"; then
        bad "$how: go tool trace -d: $(tail -1 "$t.err")"
        continue
    fi
    gid=$(sed -n 's/^dying=//p' "$dir/$how.out")
    grep -Eq " UserLog p=-?[0-9]+ g=$gid .*message=dying\$" "$t.txt" ||
        bad "$how: the window misses goroutine $gid's last events (its 'dying' log)"
done
[ $fail -eq 0 ] && echo "ok: every death left a window that parses and shows the dying goroutine"
exit $fail
