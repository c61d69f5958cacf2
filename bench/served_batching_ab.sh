#!/usr/bin/env bash
# Served throughput and p99 with batching off and on, side by side: one
# package (models/default), one closed-loop load at several concurrencies,
# the servers started one after the other and the configurations alternated
# REPEATS times; medians (docs/BENCHMARKS.md, "Batching that pays here").
#
#   bench/served_batching_ab.sh [model dir, default models/default]
#
# Environment: MMFUSE_BUILD_DIR (build), REPEATS (2), DURATION (5s),
# CONCURRENCY (4,16,32), WORKERS (2), PORT (50233).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
MODEL=${1:-models/default}
REPEATS=${REPEATS:-2}
DURATION=${DURATION:-5s}
CONCURRENCY=${CONCURRENCY:-4,16,32}
WORKERS=${WORKERS:-2}
PORT=${PORT:-50233}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# name|server flags
CONFIGS=(
  "off: max batch 1|--max_batch_size 1"
  "on: max batch 16, 1000 us delay, no grouping|--max_batch_size 16 --max_queue_delay_us 1000 --length_bucket_ratio 0 --mixed_branch_queues"
  "on: max batch 16, no delay, grouped, length ratio 2|--max_batch_size 16 --max_queue_delay_us 0 --length_bucket_ratio 2"
)
for ((r = 1; r <= REPEATS; ++r)); do
  for i in "${!CONFIGS[@]}"; do
    # shellcheck disable=SC2086  # the flags are a list
    "$BIN/mmfuse-server" --host 127.0.0.1 --port "$PORT" --nometrics --model_dir "$MODEL" \
      --workers "$WORKERS" ${CONFIGS[$i]#*|} 2>"$OUT/server.log" &
    server=$!
    for _ in $(seq 1 100); do "$BIN/mmfuse" health --server "127.0.0.1:$PORT" >/dev/null 2>&1 && break; sleep 0.2; done
    "$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" --data datasets/test.mmds --progress=false \
      --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup 1s --json >"$OUT/$i.$r.json"
    kill -TERM "$server"; wait "$server" || true
  done
done
echo "mmfuse-bench closed loop against mmfuse-server --workers $WORKERS, $MODEL, datasets/test.mmds; medians of $REPEATS runs of $DURATION"
echo
/usr/bin/python3 - "$OUT" "$REPEATS" "${CONFIGS[@]}" <<'PY'
import json, statistics, sys
from pathlib import Path
out, repeats, configs = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
print("| batching | concurrency | ok/s | p99 | mean batch | ok/s vs off |")
print("| --- | --- | --- | --- | --- | --- |")
base = {}
for i, config in enumerate(configs):
    name = config.split("|")[0]
    per_load = {}
    for r in range(1, repeats + 1):
        for s in json.loads((out / f"{i}.{r}.json").read_text()):
            per_load.setdefault(s["concurrency"], []).append(s)
    for load, runs in sorted(per_load.items()):
        rate = statistics.median(x["throughput_rps"] for x in runs)
        p99 = statistics.median(x["p99_us"] for x in runs) / 1000
        batch = statistics.median(x["mean_batch_size"] for x in runs)
        if i == 0:
            base[load] = rate
        print(f"| {name} | {load} | {rate:.0f} | {p99:.2f} ms | {batch:.2f} | {rate / base[load]:.2f}x |")
PY
