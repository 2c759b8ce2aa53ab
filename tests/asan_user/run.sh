#!/usr/bin/env bash
# A user program built with -fsanitize=address (gcc, and clang when it is
# installed) against the ordinary libweft, static and shared: weft finds
# ASan at run time and announces its stack switches.  Usage:
# run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs="-lpthread $(pkg-config --libs atomic_ops) -ldw -lelf -lz -ldl $(pkg-config --libs libunwind-generic 2>/dev/null)"
fail=0
for cc in gcc clang; do
  command -v $cc >/dev/null || { echo "asan_user: no $cc, skipped"; continue; }
  for link in static shared; do
    exe=$tmp/user_${cc}_$link
    if [[ $link == static ]]; then
      $cc -g -O1 -fsanitize=address -fno-omit-frame-pointer -I"$src/include" \
        "$src/tests/asan_user/user.c" "$build/libweft.a" $libs -o "$exe"
    else
      $cc -g -O1 -fsanitize=address -fno-omit-frame-pointer -I"$src/include" \
        "$src/tests/asan_user/user.c" -L"$build" -lweft -Wl,-rpath,"$build" -o "$exe"
    fi
    # clean: no report, no warning, exit 0
    if ! ASAN_OPTIONS=detect_leaks=0 "$exe" clean > "$tmp/out" 2> "$tmp/err" ||
       ! grep -q "clean: done" "$tmp/out" || [[ -s $tmp/err ]]; then
      echo "asan_user: $cc $link clean run: status or output wrong; stderr:"; head -30 "$tmp/err"; fail=1
    fi
    # overflow: reported, with the goroutine's frame
    if ASAN_OPTIONS=detect_leaks=0 "$exe" overflow > "$tmp/out" 2> "$tmp/err"; then
      echo "asan_user: $cc $link overflow not reported"; fail=1
    elif ! grep -q "stack-buffer-overflow" "$tmp/err" || ! grep -q "in overflow_goroutine" "$tmp/err"; then
      echo "asan_user: $cc $link overflow report lacks the goroutine's frame:"; head -30 "$tmp/err"; fail=1
    fi
  done
done
((fail == 0)) && echo "asan_user: ASan works with the ordinary libweft"
exit $fail
