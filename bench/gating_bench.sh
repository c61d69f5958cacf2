#!/usr/bin/env bash
# Accuracy against compute of gated inference (DynMM) on the generated
# benchmark with easy samples: the full branch alone, then the gate trained
# at several lambda over the same frozen experts, each evaluated at budgets
# BALANCED and FAST. Prints a Markdown table.
#
#   bench/gating_bench.sh [out dir, default /tmp/mmfuse-gating]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
OUT=${1:-/tmp/mmfuse-gating}
EXAMPLES=${EXAMPLES:-3000}
EPOCHS=${EPOCHS:-4}
LAMBDAS=${LAMBDAS:-"0 0.1 0.3 1 3"}
mkdir -p "$OUT"
gen() {
  "$BIN/mmfuse" datagen --seed 3 --easy_fraction 0.6 --missing_rate 0.05 --examples "$2" \
    --split "$3" --out "$OUT/$1" 2>/dev/null
}
gen train.mmds "$EXAMPLES" 0
gen test.mmds 1000 1
gen gate.mmds 1500 2   # Held out from the experts: the gate sees them as they are.

# Stage 1 once: the experts of every branch (text, audio, video, full).
"$BIN/mmfuse" train --gate --gate_epochs 1 --data "$OUT/train.mmds" --out "$OUT/experts" \
  --epochs "$EPOCHS" --seed 1 >/dev/null 2>"$OUT/experts.log"

field() { sed -E "s/.*\"$1\": ([0-9.]+).*/\\1/" <<<"$2"; }
branches() { sed -E 's/.*"branch_fraction": \{(.*)\}.*/\1/; s/"//g' <<<"$1"; }
row() {  # label, model dir, budget
  local json
  json=$("$BIN/mmfuse" eval --model_dir "$2" --data "$OUT/test.mmds" --budget "$3" --json)
  printf '| %s | %s | %.1f | %.5f | %s |\n' "$1" "$3" \
    "$(awk -v a="$(field accuracy "$json")" 'BEGIN{print 100*a}')" "$(field mean_gflops "$json")" \
    "$(branches "$json")"
}

echo "| gate | budget | accuracy % | mean GFLOPs/sample | branch mix |"
echo "| --- | --- | --- | --- | --- |"
row "none (full branch)" "$OUT/experts" accurate
for lambda in $LAMBDAS; do
  "$BIN/mmfuse" train --gate --init_from "$OUT/experts" --epochs 0 --data "$OUT/train.mmds" \
    --gate_data "$OUT/gate.mmds" --out "$OUT/gate-$lambda" --lambda "$lambda" --seed 1 \
    >/dev/null 2>"$OUT/gate-$lambda.log"
  row "lambda $lambda" "$OUT/gate-$lambda" balanced
  row "lambda $lambda" "$OUT/gate-$lambda" fast
done
