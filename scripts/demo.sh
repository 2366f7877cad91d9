#!/usr/bin/env bash
# The main job: sets everything up, then runs the part of the ESB flow that
# exists today: the ESB number format and the DDA scale fitter on a bundled
# weight tensor (the last-stage 3x3 conv of the bundled ResNet-like demo
# model). Model import, the quantization pipeline, the server and the board
# agent are not built yet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

esbctl=build/client/esbctl
tensor=models/resnet_stage3_conv.npy

echo
echo "== The FP4-like ESB format (4 bits, 2 significant bits) =="
"$esbctl" levels --bits 4 --sb 2
echo
echo "== DDA, Gaussian closed form, on $tensor =="
"$esbctl" fit "$tensor" --bits 4 --sb 2 --dda gaussian --rows 0
echo
echo "== DDA, MSE search (the default), on $tensor =="
"$esbctl" fit "$tensor" --bits 4 --sb 2 --dda mse --rows 4
echo
echo "== Power-of-two (sb = 1) and uniform (sb = 3) at 4 bits =="
"$esbctl" fit "$tensor" --bits 4 --sb 1 --rows 0
"$esbctl" fit "$tensor" --bits 4 --sb 3 --rows 0
