#!/usr/bin/env bash
# Accuracy and mean GFLOPs of every fusion mode on the generated benchmark,
# plus the best single modality (concat trained and tested on one modality
# of the same samples). Same data, seed and architecture
# (bench/configs/fusion.pbtxt) for every row. Prints a Markdown table.
#
#   bench/fusion_accuracy.sh [out dir, default /tmp/mmfuse-fusion-accuracy]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
OUT=${1:-/tmp/mmfuse-fusion-accuracy}
EXAMPLES=${EXAMPLES:-3000}
EPOCHS=${EPOCHS:-4}
mkdir -p "$OUT"
gen() { "$BIN/mmfuse" datagen --seed 7 --examples "$2" --split "$3" --out "$OUT/$1" "${@:4}" 2>/dev/null; }
gen train.mmds "$EXAMPLES" 0
gen test.mmds 1000 1
for m in audio video text; do
  gen "train-$m.mmds" "$EXAMPLES" 0 --only "$m"
  gen "test-$m.mmds" 1000 1 --only "$m"
done

row() {  # name, train file, test file, extra train flags
  local start end
  start=$(date +%s)
  "$BIN/mmfuse" train --config bench/configs/fusion.pbtxt --data "$OUT/$2" --out "$OUT/model-$1" \
    --epochs "$EPOCHS" --seed 1 "${@:4}" >/dev/null 2>"$OUT/train-$1.log"
  end=$(date +%s)
  local json
  json=$("$BIN/mmfuse" eval --model_dir "$OUT/model-$1" --data "$OUT/$3" --json)
  local acc gf
  acc=$(sed -E 's/.*"accuracy": ([0-9.]+).*/\1/' <<<"$json")
  gf=$(sed -E 's/.*"mean_gflops": ([0-9.]+).*/\1/' <<<"$json")
  printf '| %s | %.1f | %.4f | %d |\n' "$1" "$(awk -v a="$acc" 'BEGIN{print 100*a}')" "$gf" $((end - start))
}

echo "| model | accuracy % | mean GFLOPs/sample | training s |"
echo "| --- | --- | --- | --- |"
for mode in concat late mbt sft locomt pmf; do
  row "$mode" train.mmds test.mmds --mode "$mode"
done
# PMF as its paper runs it: streams trained alone first (every sample keeps
# one modality), then frozen while prompts, adapters and heads learn fusion.
gen train-unimodal.mmds "$EXAMPLES" 0 --missing_rate 0.99
row pmf-unimodal-streams train-unimodal.mmds test.mmds --mode pmf
row pmf-prompts-only train.mmds test.mmds --mode pmf --train_prompts_only \
  --init_from "$OUT/model-pmf-unimodal-streams"
for m in audio video text; do
  row "concat-$m-only" "train-$m.mmds" "test-$m.mmds" --mode concat
done
