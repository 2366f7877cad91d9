#!/usr/bin/env bash
# The torchvision zoo on ESB against ONNX Runtime, in one table.
#
#   bash bench/zoo.sh [--models resnet18,vgg11] [--calib-count 64]
#                     [--rounds 3] [--min-seconds 1] [--stat min|median]
#                     [--no-build]
#
# For every model of scripts/export_zoo.py (random seeded weights, opset 13,
# exported at batch 8 into build/bench/zoo/ when missing):
#   1. ONNX Runtime FP32 (bench/ort_run.mjs: CPU provider, 2 intra-op
#      threads, 1 inter-op, graphOptimizationLevel 'all') at batch 1 and 8;
#   2. esbctl quantize --sb 2 (defaults otherwise: W4A4, 8-bit edges),
#      --calib-count N random N(0,1) images, 2 threads, timed;
#   3. ours (build/bench/esb_zoo_bench, 2 threads): FP32 on the ONNX model
#      and ESB (int8 or exact f32 path) on the model.esbm it wrote, at
#      batch 1 and 8;
#   4. ONNX Runtime on the QDQ export model.esb.onnx at batch 8.
# Every engine gets the same input (the export's model.npy, batch 1 is its
# first image) in the same run, one engine at a time. The machine's speed
# drifts by more than the differences measured, so ORT and ours take turns
# for --rounds rounds per model, each round at least 7 timed runs and
# --min-seconds after the first run and 3 warm-up runs; a figure is the best
# round's (min, or --stat median: the lowest median of a round). A model
# that something cannot run gets its row with the error instead of figures.
#
# ONNX Runtime (onnxruntime-node, a benchmark peer only) is installed on
# demand into build/bench/ort with npm --ignore-scripts: its install script
# only fetches the CUDA provider; the CPU library is in the package.
set -euo pipefail
cd "$(dirname "$0")/.."

models=""
calib_count=64
min_seconds=1
rounds=3
stat=min
build=1
while (($#)); do
  case $1 in
    --models) models=$2; shift 2 ;;
    --calib-count) calib_count=$2; shift 2 ;;
    --min-seconds) min_seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --stat) stat=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    *) echo "zoo.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

start=$(date +%s)
if ((build)); then bash scripts/setup.sh >/dev/null; fi
zoo=build/bench/zoo
results=build/bench/zoo/results
mkdir -p "$zoo" "$results"

# ONNX Runtime, pinned so that figures compare across runs.
ort_version=${ORT_VERSION:-1.30.0}
ort=build/bench/ort
if ! command -v node >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if ! (cd "$ort" 2>/dev/null && node -e "require('onnxruntime-node')") \
    >/dev/null 2>&1; then
  mkdir -p "$ort"
  [[ -f $ort/package.json ]] ||
    echo '{"name": "esb-bench-ort", "private": true}' >"$ort/package.json"
  (cd "$ort" && npm install --ignore-scripts --no-audit --no-fund \
    "onnxruntime-node@$ort_version" >/dev/null)
  (cd "$ort" && node -e "require('onnxruntime-node')")
fi

# The models, exported when missing.
if ! /usr/bin/python3 -c "import torchvision, onnx" 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    python3-torchvision python3-onnx >/dev/null
fi
[[ -n $models ]] || models=$(/usr/bin/python3 scripts/export_zoo.py --list |
  paste -sd, -)
IFS=, read -ra names <<<"$models"
missing=()
for m in "${names[@]}"; do
  [[ -f $zoo/$m.onnx && -f $zoo/$m.npy ]] || missing+=("$m")
done
if ((${#missing[@]})); then
  echo "zoo.sh: exporting ${missing[*]}" >&2
  /usr/bin/python3 scripts/export_zoo.py --out "$zoo" --batch 8 \
    --models "$(IFS=,; echo "${missing[*]}")" 2>/dev/null
fi
# Calibration images: N(0,1) like the export's inputs, another seed.
for side in 224 299; do
  calib=$zoo/calib_${side}_$calib_count.npy
  [[ -f $calib ]] || /usr/bin/python3 -c "
import sys, numpy as np
n, s = int(sys.argv[2]), int(sys.argv[3])
np.save(sys.argv[1], np.random.default_rng(2).standard_normal(
    (n, 3, s, s), dtype=np.float32))" "$calib" "$calib_count" "$side"
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for m in "${names[@]}"; do
  echo "zoo.sh: $m" >&2
  d=$results/$m
  rm -rf "$d"
  mkdir -p "$d"
  side=$(/usr/bin/python3 -c "import numpy as np, sys
print(np.load(sys.argv[1], mmap_mode='r').shape[-1])" "$zoo/$m.npy")
  t0=$(date +%s.%N)
  code=0
  build/client/esbctl quantize "$zoo/$m.onnx" --sb 2 \
    --calib "$zoo/calib_${side}_$calib_count.npy" --calib-count "$calib_count" \
    --threads 2 --quiet --json -o "$d/q" >"$d/report.json" 2>"$d/quantize.err" ||
    code=$?
  t1=$(date +%s.%N)
  /usr/bin/python3 -c "
import json, sys
err = open(sys.argv[4]).read().strip().splitlines()
print(json.dumps({'seconds': float(sys.argv[2]) - float(sys.argv[1]),
                  'exit': int(sys.argv[3]), 'error': err[-1] if err else ''}))
" "$t0" "$t1" "$code" "$d/quantize.err" >"$d/quantize.json"

  esbm_flag=()
  [[ $code == 0 ]] && esbm_flag=(--esbm "$d/q/model.esbm")
  # Rounds: each appends its lines; zoo_table.py keeps the best per batch.
  for ((r = 1; r <= rounds; ++r)); do
    node bench/ort_run.mjs --model "$zoo/$m.onnx" --input "$zoo/$m.npy" \
      --out "$d" --name ort --min-seconds "$min_seconds" >>"$d/ort.jsonl" ||
      echo '{"engine":"ort","error":"ort_run.mjs failed"}' >>"$d/ort.jsonl"
    build/bench/esb_zoo_bench --model "$zoo/$m.onnx" --input "$zoo/$m.npy" \
      "${esbm_flag[@]}" --out "$d" --threads 2 --min_seconds "$min_seconds" \
      >>"$d/ours.jsonl" 2>"$d/ours.err" ||
      echo "{\"engine\":\"fp32\",\"error\":\"esb_zoo_bench exited $?\"}" \
        >>"$d/ours.jsonl"
  done

  if [[ $code == 0 ]]; then
    node bench/ort_run.mjs --model "$d/q/model.esb.onnx" --input "$zoo/$m.npy" \
      --out "$d" --name qdq --batches 8 --warmup 1 --min-runs 3 \
      --min-seconds 0 >"$d/qdq.jsonl" ||
      echo '{"engine":"qdq","error":"ort_run.mjs failed"}' >"$d/qdq.jsonl"
  fi
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
echo "Zoo on $(nproc) cores ($cpu), $(date -u +%Y-%m-%d), load average" \
  "$load_before before and $load_after after (other work shares the machine)."
echo "Ours: esb_zoo_bench, 2 OpenMP threads; ORT: onnxruntime-node" \
  "$ort_version, CPU, intraOpNumThreads 2, interOpNumThreads 1, 'all'."
echo "Times: $stat of the best of $rounds rounds (ORT and ours alternating)," \
  "each at least 7 timed runs and ${min_seconds} s after the first run and 3" \
  "warm-up runs; b1 in ms per image, b8 in images/s."
echo "ESB: esbctl quantize --sb 2 (W4A4, 8-bit first/last layers)," \
  "--calib-count $calib_count random N(0,1) images, 2 threads; its model.esbm" \
  "on the ESB executor. Ratios: ORT FP32 time / ours (>1: we are faster)."
echo "Correctness on the batch of 8: FP32 outputs ours vs ORT; QDQ: ORT on" \
  "model.esb.onnx, top-1 against our ESB output."
echo
/usr/bin/python3 bench/zoo_table.py --stat "$stat" "$results" "${names[@]}"
echo
echo "Wall time: $(( $(date +%s) - start )) s."
