#!/usr/bin/env bash
# helgrind and DRD on a weft program (tests/tsan_user/user.c, built
# without a sanitizer against the ordinary library): weft finds the tool at
# boot and tells it what its primitives order.  A correctly synchronised
# run must give no error at all, RUNS times in a row under each tool, and
# a race on a plain int between two goroutines must be reported, every
# report in the racing goroutine's frames (none in weft's own code).
# Usage: run.sh USER_PROGRAM [RUNS]
set -uo pipefail
exe=$1 runs=${2:-1}
if ! command -v valgrind >/dev/null; then
  echo "valgrind_race: valgrind is not installed: skipped (Debian: apt-get install valgrind)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export WEFT_MAXPROCS=2          # two Ms running goroutines: what the tools see are threads
fail=0
for tool in helgrind drd; do
  clean="clean x$runs with no error"
  for ((i = 1; i <= runs; i++)); do
    if ! valgrind --tool=$tool --error-exitcode=3 "$exe" clean > "$tmp/out" 2> "$tmp/err" ||
       ! grep -q "clean: done 1" "$tmp/out"; then
      echo "valgrind_race: $tool, clean run $i of $runs: $(grep -o 'ERROR SUMMARY: [0-9]* errors' "$tmp/err")"
      grep -v "^==[0-9]*== *$" "$tmp/err" | head -80
      clean="clean run $i FAILED"
      fail=1
      break
    fi
  done
  valgrind --tool=$tool "$exe" race > "$tmp/out" 2> "$tmp/err"
  # Each report's first line, then its innermost frame: all in race_goroutine.
  if [[ $tool == helgrind ]]; then head='Possible data race'; else head='Conflicting (load|store)'; fi
  reports=$(grep -Ec "$head" "$tmp/err")
  ours=$(grep -EA3 "$head" "$tmp/err" | grep -E "^==[0-9]+== +at " | grep -c "race_goroutine")
  if ((reports == 0)); then
    echo "valgrind_race: $tool did not report the race between two goroutines:"
    grep -v "^==[0-9]*== *$" "$tmp/err" | tail -30
    fail=1
  elif ((ours != reports)); then
    echo "valgrind_race: $tool: $((reports - ours)) of $reports reports are not the goroutines' race:"
    grep -v "^==[0-9]*== *$" "$tmp/err" | head -120
    fail=1
  else
    echo "valgrind_race: $tool: $clean; the race reported ($reports reports, all in race_goroutine)"
  fi
done
exit $fail
