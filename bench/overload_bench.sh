#!/usr/bin/env bash
# Overload at 5x saturation, shedding off and on, side by side: one package
# (models/default), the saturating rate measured first (closed loop), then an
# open-loop Poisson load at FACTOR times it against a server without a queue
# time limit and one with --max_queue_time_ms, one after the other. For each:
# goodput (answers OK per second), p50/p99/max latency of the accepted
# requests, refusals by code, the server's peak RSS, and its own account at
# exit (accepted = answered: nothing accepted is lost). docs/RELIABILITY.md,
# "Overload that sheds early".
#
#   bench/overload_bench.sh [model dir, default models/default]
#
# Environment: MMFUSE_BUILD_DIR (build), FACTOR (5), DURATION (10s),
# QUEUE_TIME_MS (50), WORKERS (2), TIMEOUT (client deadline, 10s), PORT (50243).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
MODEL=${1:-models/default}
FACTOR=${FACTOR:-5}
DURATION=${DURATION:-10s}
QUEUE_TIME_MS=${QUEUE_TIME_MS:-50}
WORKERS=${WORKERS:-2}
TIMEOUT=${TIMEOUT:-10s}
PORT=${PORT:-50243}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# start_server LOG flags...: sets $server; waits for health.
start_server() {
  local log=$1; shift
  "$BIN/mmfuse-server" --host 127.0.0.1 --port "$PORT" --nometrics --model_dir "$MODEL" \
    --workers "$WORKERS" "$@" 2>"$log" &
  server=$!
  for _ in $(seq 1 150); do "$BIN/mmfuse" health --server "127.0.0.1:$PORT" >/dev/null 2>&1 && return; sleep 0.2; done
  echo "overload_bench: server did not start (log $log)" >&2; exit 1
}
# Peak VmRSS (KiB) of $server, sampled every 100 ms until it exits, into FILE.
watch_rss() {
  local peak=0 rss
  while rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$server/status" 2>/dev/null) && [[ -n $rss ]]; do
    ((rss > peak)) && peak=$rss
    echo "$peak" >"$1"
    sleep 0.1
  done
}
stop_server() { kill -TERM "$server"; wait "$server" || true; }

start_server "$OUT/saturation.log"
"$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" --data datasets/test.mmds --progress=false \
  --concurrency 32 --duration 5s --warmup 1s --json >"$OUT/saturation.json"
stop_server
SAT=$(/usr/bin/python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))[0]["throughput_rps"]))' "$OUT/saturation.json")
RATE=$((SAT * FACTOR))

CONFIGS=(
  "queue only (max_queue_size 1024)|"
  "shed at ${QUEUE_TIME_MS} ms (--max_queue_time_ms ${QUEUE_TIME_MS})|--max_queue_time_ms ${QUEUE_TIME_MS}"
)
for i in "${!CONFIGS[@]}"; do
  # shellcheck disable=SC2086  # the flags are a list
  start_server "$OUT/$i.log" ${CONFIGS[$i]#*|}
  watch_rss "$OUT/$i.rss" &
  watcher=$!
  "$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" --data datasets/test.mmds --progress=false \
    --rate "$RATE" --arrival poisson --duration "$DURATION" --warmup 1s --timeout "$TIMEOUT" \
    --max_outstanding 100000 --json >"$OUT/$i.json"
  stop_server
  wait "$watcher" || true
done

echo "mmfuse-bench open loop (Poisson) at ${FACTOR}x the saturating rate ($SAT/s closed loop, c=32: $RATE/s) against mmfuse-server --workers $WORKERS, $MODEL, datasets/test.mmds, $DURATION, client deadline $TIMEOUT"
echo
/usr/bin/python3 - "$OUT" "$SAT" "${CONFIGS[@]}" <<'PY'
import json, re, sys
from pathlib import Path
out, sat, configs = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
print("| server | sent | ok/s (goodput) | goodput / saturation | p50 ms | p99 ms | max ms | mean queue ms (server) | mean in server ms | p99 in server ms | refused | peak RSS MiB | server at exit |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for i, config in enumerate(configs):
    step = json.loads((out / f"{i}.json").read_text())[0]
    refused = ", ".join(f"{code} {n}" for code, n in sorted(step["errors"].items())) or "none"
    rss = int((out / f"{i}.rss").read_text().strip() or 0) / 1024
    log = (out / f"{i}.log").read_text()
    counts = re.search(r"stopped; requests (.*)", log)
    print(f"| {config.split('|')[0]} | {step['sent']} | {step['throughput_rps']:.0f} | "
          f"{step['throughput_rps'] / sat:.2f} | {step['p50_us'] / 1000:.1f} | "
          f"{step['p99_us'] / 1000:.1f} | {step['max_us'] / 1000:.1f} | "
          f"{step['mean_queue_us'] / 1000:.1f} | {step['mean_server_total_us'] / 1000:.1f} | "
          f"{step['p99_server_total_us'] / 1000:.1f} | {refused} | {rss:.0f} | "
          f"{counts.group(1) if counts else 'no exit line'} |")
PY
