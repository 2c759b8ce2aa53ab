#!/usr/bin/env bash
# Installs the built library into a scratch prefix, then builds and runs a
# small program against the installed copy twice: through pkg-config and
# through find_package(weft).  Usage: check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
for f in include/weft.h lib/libweft.a lib/libweft.so lib/pkgconfig/weft.pc lib/cmake/weft/weftConfig.cmake \
         share/weft/gdb/weft-gdb.py; do
  if [ ! -e "$prefix/$f" ]; then
    # Debian puts libraries under lib/<triplet> when GNUInstallDirs says so.
    alt=$(find "$prefix" -path "*/${f#lib/}" -print -quit 2>/dev/null || true)
    [ -n "$alt" ] || { echo "install: missing $f"; exit 1; }
  fi
done
libdir=$(dirname "$(find "$prefix" -name libweft.so -print -quit)")

# 1. pkg-config, shared and static.
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -o "$tmp/hello_pc" "$src/tests/install/hello.c" $(pkg-config --cflags --libs weft)
LD_LIBRARY_PATH=$libdir "$tmp/hello_pc" | grep -q 'hello from goroutine' || { echo "pkg-config build failed to run"; exit 1; }
cc -o "$tmp/hello_pcs" "$src/tests/install/hello.c" $(pkg-config --cflags --libs --static weft) -Wl,-Bstatic 2>/dev/null || \
cc -o "$tmp/hello_pcs" "$src/tests/install/hello.c" $(pkg-config --cflags weft) "$libdir/libweft.a" $(pkg-config --libs-only-l --static weft | sed 's/-lweft\b//')
"$tmp/hello_pcs" | grep -q 'hello from goroutine' || { echo "static pkg-config build failed to run"; exit 1; }
# A fully static program (libc and every dependency), as a user would link
# one: pkg-config --static must name everything.
cc -static -o "$tmp/hello_full" "$src/tests/install/hello.c" $(pkg-config --static --cflags --libs weft) 2> "$tmp/static.log" ||
  { cat "$tmp/static.log"; echo "cc -static with pkg-config --static failed"; exit 1; }
"$tmp/hello_full" | grep -q 'hello from goroutine' || { echo "fully static build failed to run"; exit 1; }

# 2. find_package(weft).
mkdir -p "$tmp/cm"
cmake -S "$src/tests/install" -B "$tmp/cm" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/cm.log" || { cat "$tmp/cm.log"; exit 1; }
cmake --build "$tmp/cm" > "$tmp/cmb.log" || { cat "$tmp/cmb.log"; exit 1; }
LD_LIBRARY_PATH=$libdir "$tmp/cm/hello" | grep -q 'hello from goroutine' || { echo "find_package build failed to run"; exit 1; }
"$tmp/cm/hello_static" | grep -q 'hello from goroutine' || { echo "find_package static build failed to run"; exit 1; }
# 3. gdb's extension and the debug descriptor travel with the library: in
# libweft.so, and in a program linked with libweft.a.
for f in "$libdir/libweft.so" "$tmp/hello_full" "$tmp/cm/hello_static"; do
  # (through files: grep -q would end a pipe early, which pipefail reports)
  readelf -p .debug_gdb_scripts "$f" > "$tmp/scripts.txt" 2>&1 || true
  grep -q 'weft-gdb.py' "$tmp/scripts.txt" ||
    { echo "install: $f has no weft-gdb.py in .debug_gdb_scripts"; exit 1; }
  { nm "$f"; nm -D "$f"; } > "$tmp/syms.txt" 2>&1 || true
  grep -q ' weft_debug_info$' "$tmp/syms.txt" || { echo "install: $f has no weft_debug_info symbol"; exit 1; }
done
echo "install: pkg-config and find_package(weft) both work; gdb's extension is in the library"
