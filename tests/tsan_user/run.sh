#!/usr/bin/env bash
# A user program built with -fsanitize=thread (gcc, and clang when it is
# installed) against the ordinary libweft, static and shared: weft finds
# ThreadSanitizer at run time, makes goroutines its fibers and tells it
# what its primitives order.  Usage: run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs="-lpthread $(pkg-config --libs atomic_ops) -ldw -lelf -lz -ldl $(pkg-config --libs libunwind-generic 2>/dev/null)"
# TSan needs its shadow where the kernel put the binary: a high mmap
# randomisation (Linux 6.x defaults to 32 bits on some distributions)
# makes it abort at start ("unexpected memory mapping"); setarch -R
# turns randomisation off for the run.
run() { setarch "$(uname -m)" -R "$@"; }
export TSAN_OPTIONS="${TSAN_OPTIONS:-} halt_on_error=0 exitcode=66"
fail=0
for cc in gcc clang; do
  command -v $cc >/dev/null || { echo "tsan_user: no $cc, skipped"; continue; }
  echo 'int main(void) { return 0; }' > "$tmp/probe.c"
  $cc -fsanitize=thread "$tmp/probe.c" -o "$tmp/probe" 2>/dev/null ||
    { echo "tsan_user: $cc cannot build with -fsanitize=thread, skipped"; continue; }
  for link in static shared; do
    exe=$tmp/user_${cc}_$link
    if [[ $link == static ]]; then
      $cc -g -O1 -fsanitize=thread -fno-omit-frame-pointer -I"$src/include" \
        "$src/tests/tsan_user/user.c" "$build/libweft.a" $libs -o "$exe"
    else
      $cc -g -O1 -fsanitize=thread -fno-omit-frame-pointer -I"$src/include" \
        "$src/tests/tsan_user/user.c" -L"$build" -lweft -Wl,-rpath,"$build" -o "$exe"
    fi
    # clean: no report, exit 0
    if ! run "$exe" clean > "$tmp/out" 2> "$tmp/err" ||
       ! grep -q "clean: done 1" "$tmp/out" || [[ -s $tmp/err ]]; then
      echo "tsan_user: $cc $link clean run: status or output wrong; stderr:"; head -60 "$tmp/err"; fail=1
    fi
    # race: reported, with the goroutine's frames in both stacks
    if run "$exe" race > "$tmp/out" 2> "$tmp/err"; then
      echo "tsan_user: $cc $link race not reported"; fail=1
    elif ! grep -q "WARNING: ThreadSanitizer: data race" "$tmp/err" ||
         [[ $(grep -c "race_goroutine" "$tmp/err") -lt 2 ]] || ! grep -q "goroutine [0-9]" "$tmp/err"; then
      echo "tsan_user: $cc $link race report lacks the goroutines' frames:"; head -60 "$tmp/err"; fail=1
    fi
  done
done
((fail == 0)) && echo "tsan_user: ThreadSanitizer works with the ordinary libweft"
exit $fail
