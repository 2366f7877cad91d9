#!/usr/bin/env bash
# The ESB layers' paths against each other, bit for bit, on whole models.
#
#   bash bench/check_paths.sh [--models resnet50,vgg11] [--batch 2]
#
# For every model that bench/zoo.sh has quantized (its package in
# build/bench/zoo/results/M/q/model.esbm), runs build/bench/esb_zoo_bench on
# the export's input at batch B three times: the auto path (the int8 path
# where this CPU has it for a layer's formats, else the exact f32 path),
# the exact f32 path, and the integer reference loops. Prints one line per
# model: its auto description, and whether each fast output equals the
# reference's bit for bit (and if not, how many values differ). Exit 1 when
# any model's outputs differ, 2 when a model has no package or a run fails.
#
# The reference loops are slow (seconds to minutes per image on the larger
# models); B defaults to 1.
set -euo pipefail
cd "$(dirname "$0")/.."

models=""
batch=1
while (($#)); do
  case $1 in
    --models) models=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "check_paths.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
zoo=build/bench/zoo
results=$zoo/results
if [[ -z $models ]]; then
  models=$(ls "$results" 2>/dev/null | tr '\n' ',')
fi
[[ -n $models ]] || { echo "check_paths.sh: no quantized models in $results; run bench/zoo.sh first" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
IFS=, read -ra names <<<"$models"
for m in "${names[@]}"; do
  [[ -n $m ]] || continue
  esbm=$results/$m/q/model.esbm
  if [[ ! -f $esbm || ! -f $zoo/$m.npy ]]; then
    echo "$m: no package at $esbm or no input $zoo/$m.npy" >&2
    status=2
    continue
  fi
  for path in auto exact_float reference; do
    mkdir -p "$tmp/$m/$path"
    if ! build/bench/esb_zoo_bench --model "$zoo/$m.onnx" --input "$zoo/$m.npy" \
        --esbm "$esbm" --engines esb --esb_path "$path" --batches "$batch" \
        --warmup 0 --min_runs 1 --min_seconds 0 --out "$tmp/$m/$path" \
        >"$tmp/$m/$path.jsonl"; then
      echo "$m: esb_zoo_bench --esb_path $path failed" >&2
      status=2
    fi
  done
  if ! /usr/bin/python3 - "$tmp/$m" "$m" "$batch" <<'EOF'; then
import json, sys
import numpy as np
d, name, batch = sys.argv[1], sys.argv[2], sys.argv[3]
def load(path):
    return np.load(f"{d}/{path}/esb_b{batch}.npy")
desc = ""
with open(f"{d}/auto.jsonl") as f:
    for line in f:
        row = json.loads(line)
        if "error" in row:
            sys.exit(f"{name}: {row['error']}")
        desc = row.get("description", desc)
ref = load("reference").view(np.uint32)
ok = True
parts = []
for path in ("auto", "exact_float"):
    out = load(path).view(np.uint32)
    differ = int(np.count_nonzero(out != ref)) if out.shape == ref.shape else -1
    ok = ok and differ == 0
    parts.append(f"{path} {'equal' if differ == 0 else f'{differ} values differ'}")
print(f"{name}: {', '.join(parts)} to the reference; {desc}")
sys.exit(0 if ok else 1)
EOF
    status=$((status == 2 ? 2 : 1))
  fi
done
exit $status
