#!/usr/bin/env bash
# glibc's malloc against tcmalloc, side by side: the same binaries of a build
# configured with -DMMFUSE_TCMALLOC=OFF, run alternately as they are and
# with tcmalloc preloaded (which is what linking it does), ROUNDS times:
# the raw model (raw_model_bench, 2 workers, batch 1) and served at
# saturation (mmfuse-server, mmfuse-bench closed loop, concurrency 4).
# docs/BENCHMARKS.md ("Allocator") quotes a run.
#
#   BIN=build-glibc/bin bench/allocator_ab.sh [rounds, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BIN=${BIN:?BIN=<bin dir of a build configured with -DMMFUSE_TCMALLOC=OFF>}
MODEL=${MODEL:-models/default}
DATA=${DATA:-datasets/test.mmds}
PORT=${PORT:-50602}
TCMALLOC=${TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4}
[[ -f $TCMALLOC ]] || { echo "allocator_ab: no $TCMALLOC (apt-get install libtcmalloc-minimal4)" >&2; exit 1; }
if ldd "$BIN/mmfuse-server" | grep -q tcmalloc; then
  echo "allocator_ab: $BIN/mmfuse-server already links tcmalloc: use a -DMMFUSE_TCMALLOC=OFF build" >&2
  exit 1
fi

echo "| round | allocator | raw samples/s | served responses/s | served p50 us | served p99 us |"
echo "| --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$ROUNDS"); do
  for allocator in glibc tcmalloc; do
    preload=""
    [[ $allocator == tcmalloc ]] && preload=$TCMALLOC
    raw=$(LD_PRELOAD=$preload "$BIN/raw_model_bench" --model_dir "$MODEL" --data "$DATA" \
      --workers 2 --batch_sizes 1 --seconds 4 | tail -1 | awk -F'|' '{gsub(/ /, "", $4); print $4}')
    LD_PRELOAD=$preload "$BIN/mmfuse-server" --model_dir "$MODEL" --host 127.0.0.1 --port "$PORT" \
      --nometrics 2>/dev/null &
    server=$!
    for _ in $(seq 1 100); do
      "$BIN/mmfuse" info --server "127.0.0.1:$PORT" --timeout_ms 500 >/dev/null 2>&1 && break
      sleep 0.2
    done
    served=$("$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" --data "$DATA" --concurrency 4 \
      --duration 8s --warmup 2s --progress=false --json 2>/dev/null |
      python3 -c 'import json,sys; s=json.load(sys.stdin)[0]; print("%.1f | %d | %d" % (s["throughput_rps"], s["p50_us"], s["p99_us"]))')
    kill -TERM $server
    wait $server || true
    echo "| $round | $allocator | $raw | $served |"
  done
done
