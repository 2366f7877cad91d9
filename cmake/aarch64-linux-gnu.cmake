# Cross-compiling for arm64, the ZCU102's Cortex-A53, with Debian 12's
# g++-aarch64-linux-gnu and the arm64 library packages installed beside the
# amd64 ones (multiarch: /usr/lib/aarch64-linux-gnu,
# /usr/include/aarch64-linux-gnu). scripts/cross_arm64.sh installs those
# (scripts/packages-arm64.txt) and uses this file:
#
#   cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# protoc and grpc_cpp_plugin are the host's (amd64) programs: the arm64
# packages ship the libraries only. Tests, and gtest_discover_tests, run the
# arm64 binaries under qemu-user with the arm64 libraries of / (-L /: the
# cross toolchain's own /usr/aarch64-linux-gnu pairs a loader with a libc
# of another build) on the board's CPU model.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_CXX_FLAGS_INIT "-mcpu=cortex-a53")
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-a53")

# Programs from the host; libraries, headers and CMake packages for arm64
# only (their multiarch folders are below /).
set(CMAKE_FIND_ROOT_PATH /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config's arm64 view (/usr/lib/aarch64-linux-gnu/pkgconfig): gRPC finds
# RE2 and OpenSSL through it.
set(PKG_CONFIG_EXECUTABLE aarch64-linux-gnu-pkg-config)

set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L / -cpu cortex-a53)

# Debian has no prometheus-cpp-dev:arm64 that installs beside the amd64 one;
# this folder's config imports the arm64 libraries of
# libprometheus-cpp-*1.0:arm64 with the (architecture-independent) headers.
set(prometheus-cpp_DIR ${CMAKE_CURRENT_LIST_DIR}/aarch64-linux-gnu/prometheus-cpp)
