#!/usr/bin/env bash
# Submit-to-done overhead of the job service: the same job run with
# `esbctl quantize` on this machine and with `esbctl submit --wait -o DIR`
# through an esb-server and one esb-worker on loopback, RUNS times each,
# local and service runs interleaved so that load from elsewhere on the
# machine falls on both alike. The first service run uploads the blobs and
# fills the worker's blob cache; the later ones find them there, so both
# the first-run and the warm figures are printed. The target: the warm
# median service time is at most 5% or 300 ms (whichever is larger) over
# the median local time.
#
#   bash bench/service_overhead.sh [RUNS]     # default 5
#
# Expects build/ to hold esbctl, esb-server and esb-worker (bench/run.sh
# builds them).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
esbctl=build/client/esbctl
server_bin=build/server/esb-server
worker_bin=build/worker/esb-worker
data=/usr/share/datasets/fashion-mnist
for b in "$esbctl" "$server_bin" "$worker_bin"; do
  [[ -x $b ]] || { echo "service_overhead: $b is missing; build it" >&2; exit 1; }
done

tmp=$(mktemp -d /tmp/esb-service-overhead.XXXXXX)
pids=()
stop() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM

# The first line of $1 matching $2, waiting up to 20 s; fails if the
# process $3 exits first.
wait_line() {
  local i
  for ((i = 0; i < 200; i++)); do
    if grep -q "$2" "$1" 2>/dev/null; then
      grep -m1 "$2" "$1"
      return 0
    fi
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "service_overhead: no '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

"$server_bin" --listen 127.0.0.1:0 --data-dir "$tmp/server" \
  >"$tmp/server.log" 2>&1 &
pids+=($!)
line=$(wait_line "$tmp/server.log" "listening on" "${pids[-1]}")
address=${line##* }
"$worker_bin" --server "$address" --work-dir "$tmp/worker" \
  >"$tmp/worker.log" 2>&1 &
pids+=($!)
wait_line "$tmp/worker.log" "serving" "${pids[-1]}" >/dev/null

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Milliseconds one command takes; its output goes to $tmp/last.log and is
# shown if it fails.
timed() {
  local start end
  start=$(now_ms)
  if ! "$@" >"$tmp/last.log" 2>&1; then
    echo "service_overhead: failed: $*" >&2
    cat "$tmp/last.log" >&2
    return 1
  fi
  end=$(now_ms)
  echo "$start $end" >"$tmp/last.times"
  echo $((end - start))
}

median() { printf '%s\n' "$@" | sort -n | awk '{v[NR] = $1}
  END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

# Where a service run's time went, from its final job (--json) and the
# client's start and end: "before queue running after" in ms, i.e. client
# start to created (hash, upload, submit), created to leased, leased to
# finished (the job process), finished to client exit (fetch).
split_run() {
  /usr/bin/python3 - "$tmp/last.log" "$tmp/last.times" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
start, end = (int(t) for t in open(sys.argv[2]).read().split())
created, started, finished = (int(job[k]) for k in
    ("created_unix_ms", "started_unix_ms", "finished_unix_ms"))
print(created - start, started - created, finished - started, end - finished)
PY
}

echo "service overhead: $runs runs per model, server $address, 1 worker;" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
printf "| %-6s | %9s | %9s | %9s | %15s | %-6s |\n" model local \
  "svc first" "svc warm" "warm overhead" verdict
echo "|---|---|---|---|---|---|"
status=0
for model in lenet resnet; do
  job=(models/$model.onnx --sb 2 --calib "$data/train-images-idx3-ubyte.gz"
    --eval "$data/t10k-images-idx3-ubyte.gz"
    --labels "$data/t10k-labels-idx1-ubyte.gz" --limit 1000 --quiet)
  local_ms=()
  service_ms=()
  for ((i = 0; i < runs; i++)); do
    rm -rf "$tmp/out"
    local_ms+=("$(timed "$esbctl" quantize "${job[@]}" -o "$tmp/out")")
    rm -rf "$tmp/out"
    service_ms+=("$(timed "$esbctl" submit "${job[@]}" --server "$address" \
      --wait --json -o "$tmp/out")")
    split_run >>"$tmp/$model.split"
  done
  echo "  $model local ms:   ${local_ms[*]}"
  echo "  $model service ms: ${service_ms[*]}"
  med_local=$(median "${local_ms[@]}")
  first=${service_ms[0]}
  if ((runs > 1)); then
    med_warm=$(median "${service_ms[@]:1}")
  else
    med_warm=$first
  fi
  overhead=$(awk -v s="$med_warm" -v l="$med_local" 'BEGIN {printf "%.0f", s - l}')
  pct=$(awk -v s="$med_warm" -v l="$med_local" 'BEGIN {printf "%.1f", 100 * (s - l) / l}')
  first_overhead=$(awk -v s="$first" -v l="$med_local" 'BEGIN {printf "%.0f", s - l}')
  first_pct=$(awk -v s="$first" -v l="$med_local" 'BEGIN {printf "%.1f", 100 * (s - l) / l}')
  allowed=$(awk -v l="$med_local" 'BEGIN {a = 0.05 * l; printf "%.0f", (a > 300 ? a : 300)}')
  verdict=$(awk -v o="$overhead" -v a="$allowed" 'BEGIN {print (o <= a) ? "PASS" : "FAIL"}')
  [[ $verdict == PASS ]] || status=1
  printf "| %-6s | %6.0f ms | %6d ms | %6.0f ms | %+6d ms %+5.1f%% | %-6s |\n" \
    "$model" "$med_local" "$first" "$med_warm" "$overhead" "$pct" "$verdict"
  awk 'NR == 1 {printf "  %s first service run: %d ms client to submitted, %d ms queued, %d ms running, %d ms fetch and exit\n", m, $1, $2, $3, $4}
    NR > 1 {for (i = 1; i <= 4; i++) t[i] += $i; n++}
    END {if (n) printf "  %s warm service runs (mean): %.0f ms client to submitted, %.0f ms queued, %.0f ms running, %.0f ms fetch and exit\n", m, t[1] / n, t[2] / n, t[3] / n, t[4] / n}' \
    m="$model" "$tmp/$model.split"
  echo "  $model: first service run $first_overhead ms ($first_pct%) over the" \
    "local median; target: warm overhead <= max(5%, 300 ms) = $allowed ms"
done
exit $status
