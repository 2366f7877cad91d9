#!/usr/bin/env bash
# The accuracy table of README.md: top-1 on the full Fashion-MNIST test set
# (10k images) of each demo model, quantized with 512 calibration images
# from the training set, for ESB formats and the uniform and power-of-two
# baselines, with the default first/last-layer policy (8-bit edges) and with
# --all-layers, and for ESB rows under each DDA rule (output = default,
# gaussian, mse). Then checks the accuracy targets on the table.
#
#   bash bench/accuracy.sh [--seeds N] [--keep RESULTS.tsv] [MODEL.onnx ...]
#
# Every cell is the mean over N calibration subsets (--seed 0..N-1, default
# 5), each of 512 images: one subset's result moves by a tenth of a point or
# two with the draw, which is the size of the differences the targets ask
# about. Each cell of each subset is a whole quantization job plus two
# evaluations (both demo models and 5 subsets: about half an hour here).
# --keep saves every job's result; bench/accuracy_table.py prints the
# tables and checks again from it.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=5
keep=""
while [[ ${1:-} == --* ]]; do
  case $1 in
    --seeds) seeds=$2 ;;
    --keep) keep=$2 ;;
    *)
      echo "unknown option $1" >&2
      exit 2
      ;;
  esac
  shift 2
done
bash scripts/setup.sh >/dev/null
data=/usr/share/datasets/fashion-mnist
models=("$@")
((${#models[@]})) || models=(models/lenet.onnx models/resnet.onnx)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# A copy, so that rebuilding during the run does not disturb it.
cp build/client/esbctl "$out/esbctl"
esbctl=$out/esbctl
results=$out/results.tsv

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
  "uniform W4A4, min-max scales|--method uniform --bits 4 --act-bits 4 --scale-rule minmax"
  "uniform W4A4, value-MSE scales|--method uniform --bits 4 --act-bits 4 --dda mse"
)

# job MODEL LABEL POLICY DDA SEED FLAGS... appends one result line.
job() {
  local model=$1 label=$2 policy=$3 dda=$4 seed=$5
  shift 5
  "$esbctl" quantize "$model" --calib "$data/train-images-idx3-ubyte.gz" \
    --calib-count 512 --seed "$seed" \
    --eval "$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" -o "$out/job" --quiet --json \
    "$@" |
    /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
print("\t".join(sys.argv[1:] + ["%.4f" % r["top1_fp32"], "%.4f" % r["top1_esb"]]))
' "$(basename "$model")" "$label" "$policy" "$dda" "$seed" >>"$results"
}

for model in "${models[@]}"; do
  for ((seed = 0; seed < seeds; ++seed)); do
    echo "$(basename "$model"): subset $((seed + 1))/$seeds" >&2
    for row in "${rows[@]}"; do
      label=${row%%|*}
      read -r -a flags <<<"${row#*|}"
      for policy in edges all; do
        extra=()
        [[ $policy == all ]] && extra=(--all-layers)
        if [[ $label == uniform* ]]; then
          job "$model" "$label" "$policy" output "$seed" "${flags[@]}" \
            "${extra[@]}"
        else
          for dda in output gaussian mse; do
            job "$model" "$label" "$policy" "$dda" "$seed" "${flags[@]}" \
              "${extra[@]}" --dda "$dda"
          done
        fi
      done
    done
  done
done

[[ -z $keep ]] || cp "$results" "$keep"
/usr/bin/python3 bench/accuracy_table.py "$results"
