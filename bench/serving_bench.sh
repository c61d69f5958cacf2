#!/usr/bin/env bash
# Served throughput against the raw model ceiling, side by side in one run:
# the same package (models/default) and the same samples (datasets/test.mmds).
#  1. raw_model_bench: in-process batched forward, --workers threads;
#  2. mmfuse-server with the same workers, driven to saturation by
#     mmfuse-bench over loopback (closed loop), batching on and off.
# The load generator shares the machine's cores with the server, so on a
# 2-core machine the served figure carries the client's cost too.
#
#   bench/serving_bench.sh [workers, default 2]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
WORKERS=${1:-2}
PORT=${PORT:-50231}
DURATION=${DURATION:-8s}
"$BIN/mmfuse" check --model_dir models/default >/dev/null 2>&1 || ./scripts/make_default_model.sh models/default

echo "## Raw model (in process, $WORKERS workers)"
"$BIN/raw_model_bench" --model_dir models/default --data datasets/test.mmds --workers "$WORKERS" \
  --batch_sizes 1,4,8,16 --seconds 5

serve() {  # max batch size, max queue delay us
  "$BIN/mmfuse-server" --host 127.0.0.1 --port "$PORT" --nometrics --model_dir models/default \
    --workers "$WORKERS" --max_batch_size "$1" --max_queue_delay_us "$2" 2>/dev/null &
  SERVER=$!
  for _ in $(seq 1 100); do "$BIN/mmfuse" health --server "127.0.0.1:$PORT" >/dev/null 2>&1 && break; sleep 0.2; done
  "$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" --data datasets/test.mmds --concurrency "$3" \
    --duration "$DURATION" --warmup 2s --budget_mix accurate=1
  kill -TERM "$SERVER"; wait "$SERVER" || true
}
echo
echo "## Served, batching on (max batch 16, max delay 1000 us)"
serve 16 1000 16,32
echo
echo "## Served, batching off (max batch 1)"
serve 1 1 16
