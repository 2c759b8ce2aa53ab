# harness.sh — what every shell test in the tree starts with (sourced by
# tools/gdb/tests/run.sh and tools/weftprof/tests/run.sh): a scratch
# directory $tmp, a list $kids of the processes the test started, all of
# them SIGKILLed and $tmp removed on exit whatever happens, and fail(),
# which prints why with the tail of every output file in $tmp.
#
#   . harness.sh NAME     (NAME names the scratch directory; $case must be set)
set -u
tmp=$(mktemp -d "/tmp/$1.XXXXXX")
chmod 755 "$tmp"
kids=()

harness_cleanup() {
    for p in "${kids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap harness_cleanup EXIT

fail() {
    echo "FAIL [$case]: $*"
    for f in "$tmp"/*.out "$tmp"/*.err; do
        [ -s "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }
    done
    exit 1
}
