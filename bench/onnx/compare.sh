#!/usr/bin/env bash
# mmfuse's raw forward against ONNX Runtime on the same model and shapes:
# the package is exported through the benchmark peer's PyTorch forward
# (bench/onnx/export_peer.py, checked against it in ONNX Runtime), then
# raw_model_bench (--frames, one worker, one math thread) and
# onnxruntime-node (one intra-op thread; bench/onnx/ort_bench.mjs) run batches
# of samples all of one shape, alternating, REPEATS times each. Prints a
# Markdown table of the medians and mmfuse / ONNX Runtime.
#
#   bench/onnx/compare.sh [model dir, default models/default]
#
# Environment: MMFUSE_BUILD_DIR (build), REPEATS (3), SECONDS_PER (3),
# BATCHES (1,16), SHAPES (space-separated --frames values; default the test
# data's typical lengths and the reference lengths). onnxruntime-node (the
# version bench/onnx/package.json pins) is installed from npm into
# bench/onnx/node_modules on first use; its install script, which fetches
# only GPU libraries, is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
MODEL=${1:-models/default}
REPEATS=${REPEATS:-3}
SECONDS_PER=${SECONDS_PER:-3}
BATCHES=${BATCHES:-1,16}
SHAPES=${SHAPES:-"audio=40,video=20,text=14 audio=100,video=64,text=48"}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if [[ ! -d bench/onnx/node_modules/onnxruntime-node ]]; then
  (cd bench/onnx && npm install --no-audit --no-fund --ignore-scripts >"$OUT/npm.log" 2>&1) ||
    { tail -5 "$OUT/npm.log" >&2; echo "compare: npm install onnxruntime-node failed" >&2; exit 1; }
fi
/usr/bin/python3 bench/onnx/export_peer.py --model_dir "$MODEL" --out "$OUT/model.onnx" >&2
node bench/onnx/ort_bench.mjs --model "$OUT/model.onnx" --check >&2

# One measurement of each runtime, per shape: lines "shape batch samples/s".
for ((r = 1; r <= REPEATS; ++r)); do
  for shape in $SHAPES; do
    "$BIN/raw_model_bench" --model_dir "$MODEL" --frames "$shape" --workers 1 \
      --batch_sizes "$BATCHES" --seconds "$SECONDS_PER" |
      awk -v s="$shape" -F'|' '/^\| [0-9]/ { gsub(/ /, "", $2); gsub(/ /, "", $4); print s, $2, $4 }' \
        >>"$OUT/mmfuse"
    node bench/onnx/ort_bench.mjs --model "$OUT/model.onnx" --frames "$shape" \
      --batch_sizes "$BATCHES" --seconds "$SECONDS_PER" |
      jq -r --arg s "$shape" '"\($s) \(.batch) \(.samples_per_s)"' >>"$OUT/ort"
  done
done

echo "raw forward, one thread, $(basename "$MODEL") package, every sample of one shape; medians of $REPEATS alternating runs of ${SECONDS_PER}s"
echo
echo "| frames | batch | mmfuse samples/s | ONNX Runtime samples/s | mmfuse / ONNX Runtime |"
echo "| --- | --- | --- | --- | --- |"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for shape in $SHAPES; do
  for batch in ${BATCHES//,/ }; do
    m=$(awk -v s="$shape" -v b="$batch" '$1 == s && $2 == b { print $3 }' "$OUT/mmfuse" | median)
    o=$(awk -v s="$shape" -v b="$batch" '$1 == s && $2 == b { print $3 }' "$OUT/ort" | median)
    awk -v s="$shape" -v b="$batch" -v m="$m" -v o="$o" \
      'BEGIN { printf "| %s | %s | %.0f | %.0f | %.2fx |\n", s, b, m, o, m / o }'
  done
done
