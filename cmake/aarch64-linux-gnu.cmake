# CMake toolchain file: cross-build weft for AArch64 Linux with Debian's
# gcc-aarch64-linux-gnu and libc6-dev-arm64-cross, running the results under
# qemu-user.  tests/aarch64/run.sh uses it; by hand:
#
#   apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
#                   libatomic-ops-dev cmake ninja-build pkg-config
#   cmake -S tests/aarch64 -B build-aarch64 -G Ninja \
#         -DCMAKE_TOOLCHAIN_FILE=$PWD/cmake/aarch64-linux-gnu.cmake
#   cmake --build build-aarch64 && ctest --test-dir build-aarch64
#
# libatomic_ops: the library finds it with pkg-config.  Debian ships no arm64
# build of it without multiarch, but its headers are architecture-independent
# (atomic_ops/sysdeps/gcc/aarch64.h) and the parts weft uses are header-only
# on AArch64.  /usr/include itself must not be on the cross include path (its
# glibc headers are the host's), so this file makes a directory holding only
# symlinks to /usr/include/atomic_ops.h and /usr/include/atomic_ops/, writes
# an atomic_ops.pc pointing at it (no -l flag), and points PKG_CONFIG_LIBDIR
# at that .pc alone, so pkg-config cannot pick up any host .pc file.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(WEFT_CROSS_TRIPLE aarch64-linux-gnu)
set(WEFT_CROSS_SYSROOT /usr/${WEFT_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)
set(CMAKE_ASM_COMPILER ${WEFT_CROSS_TRIPLE}-gcc)
# ar, ranlib, objcopy...: CMake finds aarch64-linux-gnu-* from the compiler name.

# Libraries and headers from the cross sysroot only; programs from the host.
set(CMAKE_FIND_ROOT_PATH ${WEFT_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# add_test() and try_run() run target programs through qemu; -L makes it
# find the AArch64 dynamic loader and libc.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${WEFT_CROSS_SYSROOT})

# ---- atomic_ops for the target -----------------------------------------------
# The toolchain file is read again, in the same process, for every
# try_compile project (with CMAKE_BINARY_DIR = its scratch directory and
# CMAKE_IN_TRY_COMPILE not yet set): the first read, the real build tree's,
# records the directory in the environment and later reads reuse it.
# Setting WEFT_CROSS_AO_DIR in the environment picks another directory.
set(WEFT_CROSS_AO_DIR "")
if(DEFINED ENV{WEFT_CROSS_AO_DIR})
  set(WEFT_CROSS_AO_DIR $ENV{WEFT_CROSS_AO_DIR})
elseif(CMAKE_BINARY_DIR)
  set(WEFT_CROSS_AO_DIR ${CMAKE_BINARY_DIR}/cross-atomic_ops)
  set(ENV{WEFT_CROSS_AO_DIR} ${WEFT_CROSS_AO_DIR})
endif()
if(WEFT_CROSS_AO_DIR)
  if(NOT EXISTS /usr/include/atomic_ops.h OR NOT IS_DIRECTORY /usr/include/atomic_ops)
    message(FATAL_ERROR "aarch64 toolchain: /usr/include/atomic_ops.h and /usr/include/atomic_ops/ "
                        "are needed (apt-get install libatomic-ops-dev)")
  endif()
  file(MAKE_DIRECTORY ${WEFT_CROSS_AO_DIR}/include ${WEFT_CROSS_AO_DIR}/pkgconfig)
  file(CREATE_LINK /usr/include/atomic_ops.h ${WEFT_CROSS_AO_DIR}/include/atomic_ops.h SYMBOLIC)
  file(CREATE_LINK /usr/include/atomic_ops ${WEFT_CROSS_AO_DIR}/include/atomic_ops SYMBOLIC)
  # valgrind's client-request headers (a build dependency, see the top
  # CMakeLists.txt) are architecture-independent too.
  if(NOT IS_DIRECTORY /usr/include/valgrind)
    message(FATAL_ERROR "aarch64 toolchain: /usr/include/valgrind/ is needed (apt-get install valgrind)")
  endif()
  file(CREATE_LINK /usr/include/valgrind ${WEFT_CROSS_AO_DIR}/include/valgrind SYMBOLIC)
  file(WRITE ${WEFT_CROSS_AO_DIR}/pkgconfig/atomic_ops.pc.tmp
"includedir=${WEFT_CROSS_AO_DIR}/include

Name: atomic_ops (headers only, for ${WEFT_CROSS_TRIPLE})
Description: host libatomic_ops headers, which are architecture-independent
Version: 7.6.14
Libs:
Cflags: -I\${includedir}
")
  # Rewrite only on change, so re-configuring does not touch its timestamp.
  configure_file(${WEFT_CROSS_AO_DIR}/pkgconfig/atomic_ops.pc.tmp
                 ${WEFT_CROSS_AO_DIR}/pkgconfig/atomic_ops.pc COPYONLY)
  # pkg_check_modules() runs during configure, in this process: only our .pc
  # is visible, and no host search path or sysroot prefixing applies.
  set(ENV{PKG_CONFIG_LIBDIR} ${WEFT_CROSS_AO_DIR}/pkgconfig)
  set(ENV{PKG_CONFIG_PATH} "")
  unset(ENV{PKG_CONFIG_SYSROOT_DIR})
endif()
