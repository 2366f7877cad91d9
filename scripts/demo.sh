#!/usr/bin/env bash
# The main job on embedded defaults: sets everything up, then runs the
# local flow on the bundled demo models: the ESB format, DDA on a weight
# tensor, FP32 accuracy, and a full W4A4 quantization job per model
# (calibration on 512 training images, output-error DDA with bias
# correction, QDQ ONNX + .esbm + report.json, FP32 vs exact ESB top-1 on
# the 10k test images). The server, workers and board agent are not built
# yet; this is the part of the flow that exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

esbctl=build/client/esbctl
data=/usr/share/datasets/fashion-mnist
out=${ESB_DEMO_OUT:-build/demo}

echo
echo "== The ESB format: 4 bits, 2 significant bits =="
"$esbctl" levels --bits 4 --sb 2
echo
echo "== DDA on a trained 64x64x3x3 conv weight (models/resnet_stage3_conv.npy) =="
"$esbctl" fit models/resnet_stage3_conv.npy --bits 4 --sb 2 --rows 0
for model in lenet resnet; do
  echo
  echo "== $model: FP32 top-1 on the 10k test images =="
  "$esbctl" eval "models/$model.onnx" --images "$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" --quiet
  echo
  echo "== $model: quantize to ESB W4A4 (sb 2), artifacts in $out/$model =="
  "$esbctl" quantize "models/$model.onnx" --bits 4 --sb 2 --act-bits 4 --act-sb 2 \
    --calib "$data/train-images-idx3-ubyte.gz" --calib-count 512 \
    --eval "$data/t10k-images-idx3-ubyte.gz" --labels "$data/t10k-labels-idx1-ubyte.gz" \
    -o "$out/$model" --quiet
done
