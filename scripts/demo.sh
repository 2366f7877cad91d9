#!/usr/bin/env bash
# The main job on embedded defaults: sets everything up, starts esb-server
# (SQLite job store and blobs under a temporary data dir) and an esb-worker
# on loopback, submits each bundled demo model with `esbctl submit --sb 2
# --wait` (W4A4, calibration on 512 training images, FP32 vs exact ESB
# top-1 on the 10k test images), fetches the artifacts and prints the
# report; then serves both packages from esb-agent (sim backend) on
# loopback, runs the 10k test images through remote inference (esbctl
# infer, KServe v2 ModelInfer) and checks that their top-1 equals the job's
# ESB top-1 (the script fails if not), then stops what it started.
#
#   ESB_DEMO_OUT=DIR   where the artifacts go (default build/demo; the
#                      agent's model directory is DIR/agent-models)
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

echo
echo "== esb-agent (sim backend) on loopback, models in $out/agent-models =="
# A fresh model directory: the demo's deploys are version 1.
rm -rf "$out/agent-models"
build/fpga_agent/esb-agent --backend sim --listen 127.0.0.1:0 \
  --model-dir "$out/agent-models" --metrics-port 0 --max-batch 32 \
  >"$run/agent.log" 2>&1 &
agent_pid=$!
pids+=("$agent_pid")
agent=$(await "$run/agent.log" "listening on" | awk '{print $NF}')
await "$run/agent.log" "metrics on"
for model in lenet resnet; do
  "$esbctl" deploy "$out/$model/model.esbm" --agent "$agent" --name "$model"
done
"$esbctl" board --agent "$agent"

for model in lenet resnet; do
  echo
  echo "== $model: the 10k test images through the agent (esbctl infer) =="
  "$esbctl" infer --agent "$agent" --model "$model" \
    --input "$data/t10k-images-idx3-ubyte.gz" \
    --labels "$data/t10k-labels-idx1-ubyte.gz" | tee "$run/$model.infer"
  # The job's ESB top-1 as images right, from its report.json.
  expected=$(awk -F: '/"top1_esb"/ {t = $2} /"eval_images"/ {n = $2}
    END {gsub(/[ ,]/, "", t); gsub(/[ ,]/, "", n); printf "%d of %d", t * n + 0.5, n}' \
    "$out/$model/report.json")
  got=$(sed -n 's/^top-1 [0-9.]*% (\([0-9]* of [0-9]*\) images)$/\1/p' \
    "$run/$model.infer")
  if [[ $got != "$expected" ]]; then
    echo "demo: $model through the agent: top-1 $got images, but the job's" \
      "ESB top-1 is $expected" >&2
    exit 1
  fi
  echo "remote top-1 equals the job's ESB top-1 ($expected images)"
done

echo
echo "== stopping esb-agent =="
kill "$agent_pid"
wait "$agent_pid" || true
tail -n 1 "$run/agent.log"
