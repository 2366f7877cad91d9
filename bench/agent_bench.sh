#!/usr/bin/env bash
# esb-agent's serving overhead: the demo LeNet quantized W4A4 sb 2 (or the
# given .esbm), served by esb-agent (sim backend) on loopback, against the
# ESB executor in process on the same package, in the same run
# (bench/agent_bench.cc says what is measured and the targets). Stops the
# agent it starts, whatever happens.
#
#   bash bench/agent_bench.sh [MODEL.esbm]
#
#   ESB_BENCH_SECONDS=S      seconds per figure (default 3)
#   ESB_AGENT_MAX_BATCH=N    the agent's --max-batch (default 32)
#   ESB_AGENT_DELAY_US=U     the agent's --max-queue-delay-us (default 500,
#                            esb-agent's own default)
#
# Expects build/ to hold esbctl, esb-agent and esb_agent_bench (bench/run.sh
# builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
esbctl=build/client/esbctl
agent_bin=build/fpga_agent/esb-agent
bench_bin=build/bench/esb_agent_bench
data=/usr/share/datasets/fashion-mnist
for b in "$esbctl" "$agent_bin" "$bench_bin"; do
  [[ -x $b ]] || { echo "agent_bench: $b is missing; build it" >&2; exit 1; }
done

esbm=${1:-}
if [[ -z $esbm ]]; then
  esbm=build/bench/lenet/model.esbm
  if [[ ! -f $esbm ]]; then
    echo "agent_bench: quantizing models/lenet.onnx into build/bench/lenet"
    "$esbctl" quantize models/lenet.onnx --bits 4 --sb 2 --act-bits 4 \
      --act-sb 2 --calib "$data/train-images-idx3-ubyte.gz" \
      --calib-count 512 --quiet -o build/bench/lenet >/dev/null
  fi
fi
[[ -f $esbm ]] || { echo "agent_bench: no package $esbm" >&2; exit 1; }

tmp=$(mktemp -d /tmp/esb-agent-bench.XXXXXX)
agent_pid=
stop() {
  if [[ -n $agent_pid ]]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM

# Waits (up to 30 s) for a line containing $2 in the log $1 and prints it.
await() {
  for _ in $(seq 300); do
    if grep -q "$2" "$1"; then grep -m1 "$2" "$1"; return 0; fi
    if [[ -n $agent_pid ]] && ! kill -0 "$agent_pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "agent_bench: no '$2' in $1:" >&2; cat "$1" >&2; return 1
}

"$agent_bin" --backend sim --listen 127.0.0.1:0 --model-dir "$tmp/models" \
  --metrics-port 0 --max-batch "${ESB_AGENT_MAX_BATCH:-32}" \
  --max-queue-delay-us "${ESB_AGENT_DELAY_US:-500}" --max-queue 2048 \
  >"$tmp/agent.log" 2>&1 &
agent_pid=$!
address=$(await "$tmp/agent.log" "listening on" | awk '{print $NF}')
metrics=$(await "$tmp/agent.log" "metrics on" | awk '{print $NF}' |
  sed -e 's|^http://||' -e 's|/metrics$||')
"$esbctl" deploy "$esbm" --agent "$address" --name bench >/dev/null
echo "esb-agent (sim) at $address, --max-batch ${ESB_AGENT_MAX_BATCH:-32}," \
  "--max-queue-delay-us ${ESB_AGENT_DELAY_US:-500}"
# Load from elsewhere slows both sides; the figures are only comparable
# within a run, and with the load average it ran under.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
"$bench_bin" --esbm "$esbm" --agent "$address" --model bench \
  --metrics "$metrics" --seconds "${ESB_BENCH_SECONDS:-3}" || status=$?
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
