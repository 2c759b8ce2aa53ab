#!/usr/bin/env bash
# tests/aarch64/run.sh [BUILD_DIR] — cross-build weft for AArch64 and run its
# standalone tests under qemu-aarch64.
#
# Builds libweft (Criterion tests and benchmarks off: Criterion has no arm64
# package) plus tests/test_arch_switch.c and tests/smoke_sched.c through
# tests/aarch64/CMakeLists.txt with the toolchain file
# cmake/aarch64-linux-gnu.cmake, into BUILD_DIR (default build-aarch64/ in
# the repository root), then runs both with ctest, which starts them through
# qemu-aarch64 -L /usr/aarch64-linux-gnu.  Installs missing Debian packages
# when run as root.  Exits non-zero on any failure.
#
# test_arch_switch is built and run first: it needs only the context switch,
# so it still says something when the rest of the runtime does not build.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${1:-$ROOT/build-aarch64}

# ---- tools ---------------------------------------------------------------------
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd aarch64-linux-gnu-gcc || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
have_cmd qemu-aarch64 || need+=(qemu-user)
have_cmd cmake || need+=(cmake)
have_cmd ninja || need+=(ninja-build)
have_cmd pkg-config || need+=(pkg-config)
[ -e /usr/include/atomic_ops.h ] || need+=(libatomic-ops-dev)
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "run.sh: installing ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}"
    else
        echo "run.sh: missing packages: ${need[*]} (run as root, or apt-get install them)" >&2
        exit 1
    fi
fi

# ---- configure and build -----------------------------------------------------
cmake -S "$ROOT/tests/aarch64" -B "$BUILD" -G Ninja \
      -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64-linux-gnu.cmake" \
      -DCMAKE_BUILD_TYPE=Release \
      -DWEFT_TESTS=OFF -DWEFT_BENCH=OFF

status=0
cmake --build "$BUILD" --target test_arch_switch
ctest --test-dir "$BUILD" -V -R '^test_arch_switch$' || status=1

if cmake --build "$BUILD"; then
    # ctest starts the programs through CMAKE_CROSSCOMPILING_EMULATOR (qemu-aarch64).
    ctest --test-dir "$BUILD" -V -R '^smoke_sched$' || status=1
else
    echo "run.sh: the AArch64 build of weft failed" >&2
    status=1
fi

if [ $status -eq 0 ]; then
    echo "run.sh: AArch64 tests passed (under $(qemu-aarch64 --version | head -1))"
else
    echo "run.sh: AArch64 tests FAILED" >&2
fi
exit $status
