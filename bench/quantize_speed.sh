#!/usr/bin/env bash
# Wall time and peak memory of `esbctl quantize` (W4A4, default settings,
# 512 calibration images) on each demo model and on a ResNet-18-shaped
# model at 224x224 with random weights and 512 random calibration images
# (a speed and memory figure only). Uses /usr/bin/time for the peak RSS.
#
#   bash bench/quantize_speed.sh [BASE_REV]
#
# With BASE_REV (e.g. a parent commit), the tree at that revision is built
# in build/bench/base (git archive, its own build dir) and every model is
# quantized by both binaries in the same run: a "before" row from BASE_REV
# and an "after" row from this tree, and the artifacts are compared.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
command -v /usr/bin/time >/dev/null || apt-get install -y -qq time >/dev/null
esbctl=build/client/esbctl
data=/usr/share/datasets/fashion-mnist
work=build/bench
mkdir -p "$work"

if [[ ! -f $work/resnet18.onnx ]]; then
  if ! /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      python3-torch python3-onnx >/dev/null
  fi
  /usr/bin/python3 bench/make_resnet18.py "$work/resnet18.onnx"
fi
if [[ ! -f $work/random-512x3x224x224.idx ]]; then
  # IDX: magic 0x00000804 (ubyte, rank 4), dims big-endian, then pixels.
  /usr/bin/python3 - "$work/random-512x3x224x224.idx" <<'PY'
import struct, sys, numpy as np
dims = (512, 3, 224, 224)
rng = np.random.default_rng(0)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack(">I", 0x804) + struct.pack(">4I", *dims))
    f.write(rng.integers(0, 256, size=dims, dtype=np.uint8).tobytes())
PY
fi

base_rev=${1:-}
base_esbctl=
if [[ -n $base_rev ]]; then
  base=$work/base
  rm -rf "$base" && mkdir -p "$base/src"
  git archive "$base_rev" | tar -x -C "$base/src"
  cmake -S "$base/src" -B "$base/src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >/dev/null
  cmake --build "$base/src/build" -j2 --target esbctl >/dev/null
  base_esbctl=$base/src/build/client/esbctl
fi

measure() {  # label binary name model calib
  local log out=$work/out-$3-$1
  log=$(mktemp)
  rm -rf "$out"
  /usr/bin/time -v "$2" quantize "$4" --calib "$5" --calib-count 512 \
    -o "$out" --quiet >/dev/null 2>"$log"
  local wall rss
  wall=$(grep "Elapsed (wall clock)" "$log" | awk '{print $NF}')
  rss=$(grep "Maximum resident set size" "$log" | awk '{print $NF}')
  printf "| %-10s | %-6s | %10s | %8.0f MiB |\n" "$3" "$1" "$wall" \
    "$(echo "$rss / 1024" | bc -l)"
  rm -f "$log"
}

model() {  # name model calib
  if [[ -n $base_esbctl ]]; then
    measure before "$base_esbctl" "$@"
    measure after "$esbctl" "$@"
    for f in model.esbm model.esb.onnx; do
      cmp -s "$work/out-$1-before/$f" "$work/out-$1-after/$f" ||
        echo "| $1 | $f differs between $base_rev and this tree |"
    done
  else
    measure this "$esbctl" "$@"
  fi
}

echo "| model | binary | wall (m:s) | peak RSS |"
echo "|---|---|---|---|"
model lenet models/lenet.onnx "$data/train-images-idx3-ubyte.gz"
model resnet models/resnet.onnx "$data/train-images-idx3-ubyte.gz"
model resnet18 "$work/resnet18.onnx" "$work/random-512x3x224x224.idx"
