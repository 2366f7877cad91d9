#!/usr/bin/env bash
# The accuracy table of README.md: top-1 on the full Fashion-MNIST test set
# (10k images) of each demo model, quantized with 512 calibration images
# from the training set, for ESB formats and the uniform and power-of-two
# baselines, with the default first/last-layer policy (8-bit edges) and with
# --all-layers, and for ESB rows under each DDA rule (output = default,
# gaussian, mse).
#
#   bash bench/accuracy.sh [MODEL.onnx ...]     (default: models/*.onnx)
#
# Prints a Markdown table per model. Takes a while: each cell is a whole
# quantization job plus two evaluations.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
data=/usr/share/datasets/fashion-mnist
models=("$@")
((${#models[@]})) || models=(models/lenet.onnx models/resnet.onnx)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# A copy, so that rebuilding during the run does not disturb it.
cp build/client/esbctl "$out/esbctl"
esbctl=$out/esbctl

# top1 FLAGS... -> "fp32 esb" as percentages.
top1() {
  "$esbctl" quantize "$model" --calib "$data/train-images-idx3-ubyte.gz" \
    --calib-count 512 --eval "$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" -o "$out/job" --quiet --json "$@" |
    /usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.2f %.2f" % (100*r["top1_fp32"], 100*r["top1_esb"]))'
}

# Rows: label | flags. ESB rows get three DDA columns. sb is the weights'
# (shift-adds per multiply); inputs keep the default --act-sb 2, except with
# --sb auto, which picks both per layer.
rows=(
  "ESB W4A4 sb=1|--bits 4 --sb 1 --act-bits 4 --act-sb 2"
  "ESB W4A4 sb=2|--bits 4 --sb 2 --act-bits 4 --act-sb 2"
  "ESB W4A4 sb=3|--bits 4 --sb 3 --act-bits 4 --act-sb 2"
  "ESB W4A4 sb=auto|--bits 4 --sb auto --act-bits 4"
  "ESB W3A3 sb=2|--bits 3 --sb 2 --act-bits 3 --act-sb 2"
  "ESB W8A8 sb=7 (acts sb=7 signed, 8 unsigned: the int8 grid)|--method uniform --bits 8 --act-bits 8"
  "power-of-two W4A4|--method pot --bits 4 --act-bits 4"
  "uniform W4A4, min-max scales|--method uniform --bits 4 --act-bits 4 --scale-rule minmax --dda mse"
  "uniform W4A4, value-MSE scales|--method uniform --bits 4 --act-bits 4 --dda mse"
)

for model in "${models[@]}"; do
  echo
  echo "### $(basename "$model")"
  echo
  echo "| configuration | layers | DDA output (default) | DDA gaussian | DDA mse |"
  echo "|---|---|---|---|---|"
  fp32=""
  for row in "${rows[@]}"; do
    label=${row%%|*}
    read -r -a flags <<<"${row#*|}"
    for policy in edges all; do
      extra=(); [[ $policy == all ]] && extra=(--all-layers)
      cells=()
      if [[ $label == uniform* ]]; then
        read -r fp32 esb < <(top1 "${flags[@]}" "${extra[@]}")
        cells=("$esb" "-" "-")
      else
        for dda in output gaussian mse; do
          read -r fp32 esb < <(top1 "${flags[@]}" "${extra[@]}" --dda "$dda")
          cells+=("$esb")
        done
      fi
      what=$([[ $policy == all ]] && echo "all layers" || echo "first/last 8-bit")
      echo "| $label | $what | ${cells[0]} | ${cells[1]} | ${cells[2]} |"
    done
  done
  echo "| FP32 | - | $fp32 | | |"
done
