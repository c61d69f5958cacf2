#!/usr/bin/env bash
# The ONNX export that bench/onnx/compare.sh measures is the model mmfuse
# serves: a small package with the default architecture is exported through
# the peer's PyTorch forward (bench/onnx/export_peer.py) and run by ONNX
# Runtime (onnxruntime-node from npm, bench/onnx/package.json), whose
# probabilities must match PyTorch's within 1e-5 at shapes other than the
# traced ones, padding included; mmfuse's raw_model_bench must accept the
# same fixed shapes. Needs node and the npm registry the first time (like
# the AVD-10 test's sources).
#
#   tests/bench/onnx_export_test.sh <build dir>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$(cd "$1" && pwd)/bin
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export PYTHONDONTWRITEBYTECODE=1

if [[ ! -d $ROOT/bench/onnx/node_modules/onnxruntime-node ]]; then
  (cd "$ROOT/bench/onnx" && npm install --no-audit --no-fund --ignore-scripts >"$TMP/npm.log" 2>&1) ||
    { tail -5 "$TMP/npm.log"; echo "FAIL: npm install onnxruntime-node"; exit 1; }
fi
"$BIN/mmfuse" datagen --out "$TMP/train.mmds" --examples 200 --split 0 --seed 1 >/dev/null
"$BIN/mmfuse" train --data "$TMP/train.mmds" --out "$TMP/model" --epochs 1 --seed 1 >/dev/null 2>&1
/usr/bin/python3 "$ROOT/bench/onnx/export_peer.py" --model_dir "$TMP/model" --out "$TMP/model.onnx" \
  >"$TMP/export.log" 2>&1 || { cat "$TMP/export.log"; echo "FAIL: export"; exit 1; }
node "$ROOT/bench/onnx/ort_bench.mjs" --model "$TMP/model.onnx" --check --tolerance 1e-5
node "$ROOT/bench/onnx/ort_bench.mjs" --model "$TMP/model.onnx" --frames audio=9,video=5,text=4 \
  --batch_sizes 2 --seconds 0.05 | grep -q '"batch":2' || { echo "FAIL: ort_bench"; exit 1; }
"$BIN/raw_model_bench" --model_dir "$TMP/model" --frames audio=9,video=5,text=4 --workers 1 \
  --batch_sizes 2 --seconds 0.05 | grep -qE '^\| 2 \| 1 \|' || { echo "FAIL: raw_model_bench --frames"; exit 1; }
if "$BIN/raw_model_bench" --model_dir "$TMP/model" --frames smell=3 --seconds 0.05 2>"$TMP/err"; then
  echo "FAIL: raw_model_bench accepted an unknown modality"; exit 1
fi
grep -q 'frames has "smell=3"' "$TMP/err" || { cat "$TMP/err"; echo "FAIL: error message"; exit 1; }
echo "PASS"
