#!/usr/bin/env bash
# mmfuse serving its best package against the Python peer serving concat one
# request per forward, on the same data: accuracy (mmfuse eval on the same
# test set) beside throughput and p99 (mmfuse-bench, the same closed-loop
# loads, servers one after the other, alternated REPEATS times; medians).
# The peer serves models/default (concat, scripts/make_default_model.sh);
# mmfuse serves an SFT package trained with the same data, seed, epochs and
# recipe, its batching tuned here (mmfuse tune). docs/BENCHMARKS.md, section
# 6b.
#
#   bench/equal_accuracy.sh
#
# Environment: MMFUSE_BUILD_DIR (build), MMFUSE_PEER_PYTHON
# (/usr/bin/python3), REPEATS (2), DURATION (6s), CONCURRENCY (4,16),
# WORKERS (2), OUT (bench/out/equal_accuracy: the SFT package).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
PY=${MMFUSE_PEER_PYTHON:-/usr/bin/python3}
REPEATS=${REPEATS:-2}
DURATION=${DURATION:-6s}
CONCURRENCY=${CONCURRENCY:-4,16}
WORKERS=${WORKERS:-2}
OUT=${OUT:-bench/out/equal_accuracy}
export PYTHONDONTWRITEBYTECODE=1
TMP=$(mktemp -d)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT

if ! "$BIN/mmfuse" check --model_dir models/default >/dev/null 2>&1 || [[ ! -f datasets/test.mmds ]]; then
  MMFUSE_BUILD_DIR=${BIN%/bin} ./scripts/make_default_model.sh models/default >/dev/null
fi
# The same recipe as scripts/make_default_model.sh, fusion mode SFT.
if ! "$BIN/mmfuse" check --model_dir "$OUT/sft" >/dev/null 2>&1; then
  mkdir -p "$OUT"
  "$BIN/mmfuse" train --mode sft --data datasets/train.mmds --eval_data datasets/test.mmds \
    --out "$OUT/sft" --epochs 4 --seed 1 >"$OUT/train.log" 2>&1
  "$BIN/mmfuse" tune --model_dir "$OUT/sft" --data datasets/test.mmds --workers "$WORKERS" \
    --trial_seconds 1 >"$OUT/tuning.md" 2>/dev/null
fi

accuracy() { "$BIN/mmfuse" eval --model_dir "$1" --data datasets/test.mmds --json | jq -r '"\(.accuracy) \(.mean_gflops)"'; }
read -r concat_acc concat_gflops < <(accuracy models/default)
read -r sft_acc sft_gflops < <(accuracy "$OUT/sft")

port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 1 300); do "$BIN/mmfuse" info --server "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "equal_accuracy: $2 did not start" >&2; exit 1
}
load() {  # load NAME ADDRESS RUN
  "$BIN/mmfuse-bench" --server "$2" --data datasets/test.mmds --progress=false --json \
    --concurrency "$CONCURRENCY" --duration "$DURATION" --warmup 2s >"$TMP/$1.$3.json"
}
for ((r = 1; r <= REPEATS; ++r)); do
  p=$(port)
  "$BIN/mmfuse-server" --host 127.0.0.1 --port "$p" --nometrics --model_dir "$OUT/sft" \
    --workers "$WORKERS" 2>"$TMP/server.log" &
  PIDS+=($!)
  wait_up "127.0.0.1:$p" mmfuse-server
  load mmfuse "127.0.0.1:$p" "$r"
  kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" || true
  p=$(port)
  "$PY" bench/peer/peer_server.py --model_dir models/default --host 127.0.0.1 --port "$p" \
    --threads "$WORKERS" 2>"$TMP/peer.log" &
  PIDS+=($!)
  wait_up "127.0.0.1:$p" peer
  load peer "127.0.0.1:$p" "$r"
  kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" || true
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
figure() {  # figure NAME CONCURRENCY FIELD
  for f in "$TMP/$1".*.json; do jq -r --argjson c "$2" ".[] | select(.concurrency == \$c) | .$3" "$f"; done | median
}
echo "mmfuse-server --workers $WORKERS serving an SFT package against the peer (--threads $WORKERS) serving concat (models/default), both trained on datasets/train.mmds with the same recipe; accuracy and mean GFLOPs from \`mmfuse eval\` on datasets/test.mmds; mmfuse-bench closed loop on the same test set, medians of $REPEATS alternating runs of $DURATION"
echo
echo "| server, package | accuracy | GFLOPs/sample | concurrency | ok/s | p99 | ok/s vs peer |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for c in ${CONCURRENCY//,/ }; do
  m=$(figure mmfuse "$c" throughput_rps); mp=$(figure mmfuse "$c" p99_us)
  q=$(figure peer "$c" throughput_rps); qp=$(figure peer "$c" p99_us)
  awk -v a="$sft_acc" -v g="$sft_gflops" -v c="$c" -v t="$m" -v p="$mp" -v q="$q" \
    'BEGIN { printf "| mmfuse, sft | %.1f%% | %.5f | %s | %.1f | %.2f ms | %.1fx |\n", 100 * a, g, c, t, p / 1000, t / q }'
  awk -v a="$concat_acc" -v g="$concat_gflops" -v c="$c" -v t="$q" -v p="$qp" \
    'BEGIN { printf "| peer, concat | %.1f%% | %.5f | %s | %.1f | %.2f ms | 1.0x |\n", 100 * a, g, c, t, p / 1000 }'
done
