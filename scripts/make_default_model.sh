#!/usr/bin/env bash
# Creates the default model package: generates train/test data with a fixed
# seed and trains the default architecture on it (deterministic; about a
# minute on 2 cores), then tunes its batching on this machine (`mmfuse tune`,
# about 30 s: the measured table goes into the package's config.pbtxt).
#
#   ./scripts/make_default_model.sh [package dir, default models/default]
#   MMFUSE_TUNE=0 ...   keep the default batching (model/default_config.cc)
#                       instead of measuring: where this machine is not the
#                       one that will serve (an image build, say)
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
if [[ ${MMFUSE_TUNE:-1} != 0 ]]; then
  # The server's default workers (2); 1 s per setting keeps it short, and the
  # side by side check guards the choice against noise.
  "$BIN/mmfuse" tune --model_dir "$OUT" --data "$DATA/test.mmds" --workers 2 --trial_seconds 1 \
    --table_out "$OUT/tuning.md" >/dev/null
fi
