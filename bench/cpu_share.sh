#!/usr/bin/env bash
# Where the cores go when mmfuse serves at saturation on one machine: the CPU
# time of the server and of the load generator per request (from
# /proc/PID/stat, all threads), against the model's own time per sample
# (raw_model_bench, one worker), and with perf, the server's CPU time by
# library. docs/BENCHMARKS.md ("Where the served time goes") quotes a run.
#
#   bench/cpu_share.sh [seconds, default 10]
#
# Environment: BIN (build/bin), MODEL (models/default), DATA
# (datasets/test.mmds), CONCURRENCY (4), PORT (50600).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_RUN=${1:-10}
BIN=${BIN:-build/bin}
MODEL=${MODEL:-models/default}
DATA=${DATA:-datasets/test.mmds}
CONCURRENCY=${CONCURRENCY:-4}
PORT=${PORT:-50600}
OUT=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$OUT"' EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, all threads
TICK=$(getconf CLK_TCK)

echo "raw model, one worker, batch 1:"
"$BIN/raw_model_bench" --model_dir "$MODEL" --data "$DATA" --workers 1 --batch_sizes 1 \
  --seconds "$SECONDS_RUN" | tail -1
RAW=$("$BIN/raw_model_bench" --model_dir "$MODEL" --data "$DATA" --workers 1 --batch_sizes 1 \
  --seconds "$SECONDS_RUN" | tail -1 | awk -F'|' '{print $4}')

"$BIN/mmfuse-server" --model_dir "$MODEL" --host 127.0.0.1 --port "$PORT" --nometrics \
  2>"$OUT/server.log" &
SERVER=$!
for _ in $(seq 1 100); do
  "$BIN/mmfuse" info --server "127.0.0.1:$PORT" --timeout_ms 500 >/dev/null 2>&1 && break
  sleep 0.2
done
# A warm-up, then the measured run with the server's CPU read around it and
# perf sampling the server.
"$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" --data "$DATA" --concurrency "$CONCURRENCY" \
  --duration 2s --warmup 0s --progress=false >/dev/null
before=$(cpu_ticks $SERVER)
PERF=0
if command -v perf >/dev/null; then
  perf record -q -F 499 -p $SERVER -o "$OUT/perf.data" -- sleep "$SECONDS_RUN" 2>/dev/null &
  PERF=$!
fi
/usr/bin/time -f "%U %S" -o "$OUT/client.time" "$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" \
  --data "$DATA" --concurrency "$CONCURRENCY" --duration "${SECONDS_RUN}s" --warmup 0s \
  --progress=false --json >"$OUT/bench.json"
after=$(cpu_ticks $SERVER)
[[ $PERF == 0 ]] || wait $PERF || true

python3 - "$OUT/bench.json" "$OUT/client.time" "$before" "$after" "$TICK" "$RAW" "$SECONDS_RUN" <<'PY'
import json, sys
bench, client_time, before, after, tick, raw, seconds = sys.argv[1:]
step = json.load(open(bench))[0]
n = step["sent"]
server_us = (int(after) - int(before)) / int(tick) / n * 1e6
client_us = sum(float(x) for x in open(client_time).read().split()) / n * 1e6
model_us = 1e6 / float(raw)
cores = 2 * 1e6  # CPU microseconds per second on this machine's 2 cores
print(f"served: {step['throughput_rps']:.1f} responses/s at concurrency {step.get('concurrency')}, {n} requests")
print(f"CPU per request: server {server_us:.0f} us, load generator {client_us:.0f} us")
print(f"model alone (raw, one worker): {model_us:.0f} us per sample")
print(f"server CPU beyond the model: {server_us - model_us:.0f} us per request "
      f"({(server_us - model_us) / server_us:.0%} of the server's)")
print(f"share of the cores: server {server_us * step['throughput_rps'] / cores:.0%}, "
      f"load generator {client_us * step['throughput_rps'] / cores:.0%}")
PY
if [[ $PERF != 0 && -s "$OUT/perf.data" ]]; then
  echo "server CPU by library (perf, top 8):"
  perf report -q -i "$OUT/perf.data" --sort dso --stdio 2>/dev/null | head -8
fi
