#!/usr/bin/env bash
# Runs every benchmark and prints its figures. Builds first (scripts/setup.sh)
# and writes the ResNet-18-shaped model (random weights) to build/bench/ with
# Debian's python3-torch, installing it when missing.
#
#   bash bench/run.sh            # all
#   bash bench/run.sh core       # quantizer and DDA only
#   bash bench/run.sh runtime    # CPU inference throughput only
#   bash bench/run.sh narrow     # few-row products: NarrowGemm vs oneDNN
#   bash bench/run.sh service    # the job service (esb-server, esb-worker)
#   bash bench/run.sh accel      # the accelerator model and the modelled array
#   bash bench/run.sh agent      # esb-agent's serving overhead (sim backend)
#   bash bench/run.sh zoo        # the torchvision zoo against ONNX Runtime
#                                # (bench/zoo.sh; about ZOO_MINUTES min, so not
#                                # part of `all`)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
what=${1:-all}

if [[ $what == all || $what == core ]]; then
  echo "== quantizer and DDA (build/bench/esb_core_bench) =="
  build/bench/esb_core_bench --benchmark_color=false
fi

if [[ $what == all || $what == runtime ]]; then
  resnet18=build/bench/resnet18.onnx
  if [[ ! -f $resnet18 ]]; then
    if ! /usr/bin/python3 -c "import torch, onnx" 2>/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        python3-torch python3-onnx >/dev/null
    fi
    /usr/bin/python3 bench/make_resnet18.py "$resnet18"
  fi
  echo "== CPU runtime (build/bench/esb_runtime_bench) =="
  build/bench/esb_runtime_bench --benchmark_color=false \
    models/lenet.onnx models/resnet.onnx "$resnet18"
fi

if [[ $what == all || $what == narrow ]]; then
  echo "== few-row products (build/bench/esb_narrow_gemm_bench) =="
  build/bench/esb_narrow_gemm_bench
fi

if [[ $what == all || $what == service ]]; then
  # Each figure prints its target and PASS/FAIL; a FAIL does not stop the
  # other figures (set -e would).
  echo "== job service: submit-to-done overhead (bench/service_overhead.sh) =="
  bash bench/service_overhead.sh 5 || echo "(a service overhead target failed)"
  build/bench/esb_service_bench --server-bin build/server/esb-server ||
    echo "(a service latency or upload target failed)"
fi

if [[ $what == all || $what == accel ]]; then
  # The demo models quantized W4A4 sb 2 (edges 8-bit), as the main job does.
  data=/usr/share/datasets/fashion-mnist
  for model in lenet resnet; do
    if [[ ! -f build/bench/$model/model.esbm ]]; then
      build/client/esbctl quantize "models/$model.onnx" --bits 4 --sb 2 \
        --act-bits 4 --act-sb 2 --calib "$data/train-images-idx3-ubyte.gz" \
        --calib-count 512 --quiet -o "build/bench/$model" >/dev/null
    fi
  done
  echo "== accelerator model (build/bench/esb_accel_bench) =="
  build/bench/esb_accel_bench --images 1000 build/bench/lenet/model.esbm \
    build/bench/resnet/model.esbm
fi

if [[ $what == all || $what == agent ]]; then
  # Each figure prints its target and PASS/FAIL; a FAIL does not stop the
  # other figures.
  echo "== esb-agent serving overhead (bench/agent_bench.sh) =="
  bash bench/agent_bench.sh || echo "(an agent serving target failed)"
fi

if [[ $what == zoo ]]; then
  echo "== torchvision zoo against ONNX Runtime (bench/zoo.sh) =="
  bash bench/zoo.sh --no-build
fi
