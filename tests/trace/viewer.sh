#!/bin/sh
# viewer.sh PROG_TRACE WORKDIR — go tool trace's web viewer serves weft's
# traces.
#
# For a trace of tests/prog_trace's workload, a flight-recorder window
# and the window a panic left (SCHEDDEBUG=flightrecorder), starts
# `go tool trace -http=127.0.0.1:0` (its port is read from what it
# prints), then fetches
#   /trace           the timeline's page (and the viewer it loads),
#   /goroutines      the goroutine analysis, which must name the
#                    workload's functions,
#   /jsontrace       the timeline's data: the viewer's analysis of every
#                    event (it fails on a goroutine left running without
#                    an end, for one),
# and checks each is a 200 with the content it should have.
# Exits 77 (ctest's SKIP_RETURN_CODE) without a Go toolchain or curl.
set -u
prog=$1
dir=$2
command -v go >/dev/null 2>&1 || { echo "go not found: skipped"; exit 77; }
command -v curl >/dev/null 2>&1 || { echo "curl not found: skipped"; exit 77; }
mkdir -p "$dir"
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# fetch URL FILE: the status code; the body in FILE (at most 60 s)
fetch() { curl -s -m 60 -o "$2" -w '%{http_code}' "$1"; }

view() {
    name=$1; t=$2
    go tool trace -http=127.0.0.1:0 "$t" > "$dir/$name.log" 2>&1 &
    pid=$!
    url=
    i=0
    while [ $i -lt 600 ]; do        # at most 60 s: parsing a trace takes a while on a busy machine
        url=$(sed -n 's/.*listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$dir/$name.log" | head -1)
        [ -n "$url" ] && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    if [ -z "$url" ]; then
        bad "$name: the viewer did not start: $(tail -5 "$dir/$name.log")"
        kill $pid 2>/dev/null
        wait $pid 2>/dev/null
        return
    fi
    b="$dir/$name"
    [ "$(fetch "$url/trace" "$b.trace.html")" = 200 ] || bad "$name: /trace"
    grep -q 'trace_viewer_full.html' "$b.trace.html" || bad "$name: /trace is not the timeline's page"
    [ "$(fetch "$url/static/trace_viewer_full.html" "$b.viewer.html")" = 200 ] || bad "$name: the viewer's code"
    [ "$(fetch "$url/goroutines" "$b.goroutines.html")" = 200 ] || bad "$name: /goroutines"
    grep -q 'trace_worker_' "$b.goroutines.html" || bad "$name: /goroutines names no trace_worker_"
    [ "$(fetch "$url/jsontrace" "$b.json")" = 200 ] || bad "$name: /jsontrace: $(tail -3 "$dir/$name.log")"
    head -c 40 "$b.json" | grep -q '^{"displayTimeUnit":"ns"' || bad "$name: /jsontrace is not the timeline's JSON"
    grep -q '"name":"G[0-9]* trace_worker_' "$b.json" || bad "$name: /jsontrace shows no trace_worker_ running"
    kill -0 $pid 2>/dev/null || bad "$name: the viewer died: $(tail -5 "$dir/$name.log")"
    kill $pid 2>/dev/null
    wait $pid 2>/dev/null
}

"$prog" "$dir/api.trace" > /dev/null || bad "prog_trace failed"
view api "$dir/api.trace"
"$prog" -f "$dir/flight.trace" > /dev/null || bad "prog_trace -f failed"
view flight "$dir/flight.trace"
view flight3 "$dir/flight.trace.3"
rm -f "$dir/panic.trace"
SCHEDDEBUG="flightrecorder=$dir/panic.trace" "$prog" -x panic > /dev/null 2>&1
view panic "$dir/panic.trace"
[ $fail -eq 0 ] && echo "ok: the viewer serves the timeline, the goroutines and the JSON of every trace"
exit $fail
