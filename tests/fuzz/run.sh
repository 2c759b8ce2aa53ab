#!/usr/bin/env bash
# tests/fuzz/run.sh [SECONDS] — build every tests/fuzz/fuzz_*.c with libFuzzer,
# ASan and UBSan into build-fuzz/ and run each for a bounded time.
#
#   SECONDS       per harness (-max_total_time); default $FUZZ_SECONDS or 30
#
# A harness names the runtime sources it links in a "fuzz-sources:" line in
# its header comment, and may set its longest input with "fuzz-max-len:"
# (default 256); tests/fuzz/<name without fuzz_>.dict, if present, is its
# libFuzzer dictionary.  Each runs on a fresh copy of its seed corpus
# (tests/fuzz/corpus/<name without fuzz_>/) in build-fuzz/corpus/, so the
# repository's seeds are never touched.  Exits non-zero if any harness
# fails; its crash file stays in build-fuzz/ and its path is printed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

secs=${1:-${FUZZ_SECONDS:-30}}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs < 1)); then
  echo "run.sh: seconds must be a positive integer, not '$secs'" >&2
  exit 2
fi

CC=${CC:-clang}
CFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -Wall -Wextra -I include -I runtime)
OUT=build-fuzz
mkdir -p "$OUT"

shopt -s nullglob
harnesses=(tests/fuzz/fuzz_*.c)
if ((${#harnesses[@]} == 0)); then
  echo "run.sh: no tests/fuzz/fuzz_*.c" >&2
  exit 2
fi

failed=0
summary=()
for src in "${harnesses[@]}"; do
  name=$(basename "$src" .c)
  # The runtime sources this harness needs, from its "fuzz-sources:" line.
  read -r -a extra <<<"$(sed -n 's/^.*fuzz-sources:[[:space:]]*//p' "$src" | head -n 1)"
  maxlen=$(sed -n 's/^.*fuzz-max-len:[[:space:]]*\([0-9][0-9]*\).*$/\1/p' "$src" | head -n 1)
  opts=(-max_len="${maxlen:-256}")
  dict=tests/fuzz/${name#fuzz_}.dict
  if [[ -f $dict ]]; then
    opts+=(-dict="$dict")
  fi
  bin=$OUT/$name
  echo "== $name: building ($src ${extra[*]:-})"
  "$CC" "${CFLAGS[@]}" -o "$bin" "$src" "${extra[@]}"

  corpus=$OUT/corpus/$name
  seeds=tests/fuzz/corpus/${name#fuzz_}
  rm -rf "$corpus"
  mkdir -p "$corpus"
  if [[ -d $seeds ]]; then
    cp -rp "$seeds"/. "$corpus"/
  fi
  nseeds=$(find "$corpus" -type f | wc -l)

  log=$OUT/$name.log
  echo "== $name: fuzzing for ${secs}s from $nseeds seeds (log: $log)"
  rc=0
  "$bin" -max_total_time="$secs" "${opts[@]}" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$OUT/$name-" "$corpus" >"$log" 2>&1 || rc=$?

  execs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -n 1)
  ncorpus=$(find "$corpus" -type f | wc -l)
  if ((rc == 0)); then
    summary+=("$name: ok, ${execs:-?} execs in ${secs}s (${rate:-?}/s), corpus $nseeds -> $ncorpus")
  else
    failed=1
    crash=$(sed -n 's/^.*Test unit written to[[:space:]]*//p' "$log" | tail -n 1)
    echo "== $name: FAILED (exit $rc); the end of $log:" >&2
    tail -n 60 "$log" >&2
    if [[ -n $crash ]]; then
      echo "== $name: crashing input: $crash" >&2
      echo "   reproduce: $bin $crash" >&2
      summary+=("$name: FAILED, ${execs:-?} execs, crash file $crash")
    else
      summary+=("$name: FAILED (exit $rc), no crash file; see $log")
    fi
  fi
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
