#!/usr/bin/env bash
# Installs the Debian packages ESB needs (when missing) and builds it into
# build/. Run as root on Debian 12. Safe to run again: it only installs what
# is missing and rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# ocl-icd-opencl-dev is only recommended by libdnnl-dev, but Debian's oneDNN
# CMake config requires OpenCL (its GPU runtime is OpenCL).
PACKAGES=(
  build-essential cmake ccache pkg-config clang-format clang-tidy
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libdnnl-dev ocl-icd-opencl-dev prometheus-cpp-dev libonnx-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsqlite3-dev
  zlib1g-dev libpng-dev libjpeg62-turbo-dev libssl-dev dataset-fashion-mnist
  libonnx-testdata python3-grpcio python3-protobuf python3-numpy python3-onnx
  python3-torch
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these packages are missing; run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESB_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
