#!/usr/bin/env bash
# Prepares, on this (Debian 12) machine, everything bench/gpu/device_run.sh
# carries to the GPU machine (docs/GPU.md):
#   .gpu-deps/       Debian packages for the build there (scripts/gpu/fetch_deps.sh)
#   models/default/  the default package (scripts/make_default_model.sh)
#   models/gated/    a gated package for gating on/off: make_benchmarks.sh's
#                    recipe (bench/gating_bench.sh's data, gate at lambda 0.3),
#                    with its test set as models/gated/test.mmds
# Each is kept when already there. Then, one device call:
#   run(command="bash bench/gpu/device_run.sh",
#       carry=[".gpu-deps", "models/default", "models/gated"], timeout_s=590)
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/bin}
[[ -x "$BIN/mmfuse" ]] || { echo "prepare: $BIN/mmfuse is missing: build first (scripts/setup.sh)" >&2; exit 1; }
ls .gpu-deps/debs/*.deb >/dev/null 2>&1 || scripts/gpu/fetch_deps.sh
"$BIN/mmfuse" check --model_dir models/default >/dev/null 2>&1 || ./scripts/make_default_model.sh
GATED=models/gated
if ! "$BIN/mmfuse" check --model_dir "$GATED" >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  gen() { "$BIN/mmfuse" datagen --seed 3 --easy_fraction 0.6 --missing_rate 0.05 --examples "$2" --split "$3" --out "$work/$1" >/dev/null; }
  gen train.mmds 3000 0
  gen test.mmds 1000 1
  gen gate.mmds 1500 2
  echo "prepare: training the gated package's experts (a few minutes)"
  "$BIN/mmfuse" train --gate --gate_epochs 1 --data "$work/train.mmds" --out "$work/experts" \
    --epochs 4 --seed 1 >"$work/experts.log" 2>&1
  echo "prepare: training its gate"
  "$BIN/mmfuse" train --gate --init_from "$work/experts" --epochs 0 --data "$work/train.mmds" \
    --gate_data "$work/gate.mmds" --gate_epochs 30 --out "$GATED" --lambda 0.3 --seed 1 \
    >"$work/gate.log" 2>&1
  cp "$work/test.mmds" "$GATED/test.mmds"
fi
du -sh .gpu-deps models/default "$GATED"
