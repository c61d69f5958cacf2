#!/usr/bin/env bash
# Creates the default model package: generates train/test data with a fixed
# seed and trains the default architecture on it (deterministic; about a
# minute on 2 cores).
#
#   ./scripts/make_default_model.sh [package dir, default models/default]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-models/default}
DATA=${MMFUSE_DATA_DIR:-datasets}
BIN=${MMFUSE_BUILD_DIR:-build}/bin
mkdir -p "$DATA"
"$BIN/mmfuse" datagen --out "$DATA/train.mmds" --examples 3000 --split 0 --seed 1 --missing_rate 0.1
"$BIN/mmfuse" datagen --out "$DATA/test.mmds" --examples 1000 --split 1 --seed 1 --missing_rate 0.1
"$BIN/mmfuse" train --data "$DATA/train.mmds" --eval_data "$DATA/test.mmds" --out "$OUT" \
  --epochs 4 --seed 1
