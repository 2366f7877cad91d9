#!/usr/bin/env bash
# Sets everything up, builds, and runs the whole test suite with CTest,
# after the arm64 cross build for the board and its tests under qemu
# (scripts/cross_arm64.sh; ESB_CROSS_ARM64=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cross=0
if [[ ${ESB_CROSS_ARM64:-1} != 0 ]]; then
  bash scripts/cross_arm64.sh || cross=$?
fi
cd build
ctest --output-on-failure -j"$(nproc)" --timeout 600
if ((cross != 0)); then
  echo "test: scripts/cross_arm64.sh failed (exit $cross); see its output above" >&2
  exit "$cross"
fi
