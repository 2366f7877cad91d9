#!/usr/bin/env bash
# The main job on embedded defaults: sets everything up, starts esb-server
# (SQLite job store and blobs under a temporary data dir) and an esb-worker
# on loopback, submits each bundled demo model with `esbctl submit --sb 2
# --wait` (W4A4, calibration on 512 training images, FP32 vs exact ESB
# top-1 on the 10k test images), fetches the artifacts and prints the
# report, then stops what it started. The board agent is not built yet.
#
#   ESB_DEMO_OUT=DIR   where the artifacts go (default build/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

esbctl=build/client/esbctl
data=/usr/share/datasets/fashion-mnist
out=${ESB_DEMO_OUT:-build/demo}
run=$(mktemp -d /tmp/esb-demo.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT

# Waits (up to 30 s) for a line containing $2 in the log $1 and prints it.
await() {
  for _ in $(seq 300); do
    if grep -q "$2" "$1"; then grep -m1 "$2" "$1"; return 0; fi
    sleep 0.1
  done
  echo "demo: no '$2' in $1:" >&2; cat "$1" >&2; return 1
}

echo
echo "== The ESB format: 4 bits, 2 significant bits =="
"$esbctl" levels --bits 4 --sb 2

echo
echo "== esb-server and esb-worker on loopback (data dir $run/server) =="
build/server/esb-server --listen 127.0.0.1:0 --data-dir "$run/server" \
  --metrics-port 0 >"$run/server.log" 2>&1 &
pids+=($!)
address=$(await "$run/server.log" "listening on" | awk '{print $NF}')
await "$run/server.log" "metrics on"
build/worker/esb-worker --server "$address" --work-dir "$run/worker" \
  >"$run/worker.log" 2>&1 &
pids+=($!)
await "$run/worker.log" "serving"
"$esbctl" health --server "$address"

for model in lenet resnet; do
  echo
  echo "== $model: esbctl submit --sb 2 --wait, artifacts in $out/$model =="
  "$esbctl" submit "models/$model.onnx" --server "$address" --bits 4 --sb 2 \
    --act-bits 4 --act-sb 2 --calib "$data/train-images-idx3-ubyte.gz" \
    --calib-count 512 --eval "$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" --wait -o "$out/$model"
done

echo
echo "== The jobs on the server =="
"$esbctl" list --server "$address"
