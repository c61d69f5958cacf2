#!/usr/bin/env bash
# AVD-10 ablation (docs/AVD10.md, "What bought what"): on a training subset,
# the default recipe against the same training with one part taken away or
# added, each row one `mmfuse train` of the concat model (and text alone for
# the text featurizer), evaluated on the test split and on the held-out
# voices. The subset is a prefix of the full benchmark (build.py's samples
# depend only on the seed, the split and the index).
#
#   bench/avd10/ablation.sh [out dir, default /tmp/mmfuse-avd10-ablation]
#
# Environment: MMFUSE_BUILD_DIR (build), SEED (1), EPOCHS (10), TRAIN (4000
# training samples), MODE (concat), AVD10_CACHE, TRAIN_JOBS (nproc).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
BIN=$(cd "${MMFUSE_BUILD_DIR:-build}/bin" && pwd)
OUT=${1:-/tmp/mmfuse-avd10-ablation}
SEED=${SEED:-1}
EPOCHS=${EPOCHS:-10}
TRAIN=${TRAIN:-4000}
MODE=${MODE:-concat}
CACHE=${AVD10_CACHE:-$HERE/cache}
TRAIN_JOBS=${TRAIN_JOBS:-$(nproc)}
mkdir -p "$OUT/logs"

# The previous featurizers, for their rows: 64-d text, raw log-mel audio.
sed -e 's/feature_dim: 256/feature_dim: 64/; s/text { dim: 256/text { dim: 64/' \
  "$HERE/config.pbtxt" >"$OUT/config-text64.pbtxt"
sed -e 's/ normalization: NORMALIZATION_UTTERANCE//' "$HERE/config.pbtxt" >"$OUT/config-rawaudio.pbtxt"
cp "$HERE/labels.txt" "$OUT/"

[[ -f "$CACHE/.complete" ]] || "$HERE/fetch.sh" "$CACHE"
if [[ ! -f "$OUT/data/build.json" ]]; then
  /usr/bin/python3 "$HERE/build.py" --cache "$CACHE" --out "$OUT/data" --seed "$SEED" --train "$TRAIN" \
    --test 1000 --val 400 --val_heldout 400 --heldout 500 >/dev/null
fi
extract() {  # config name ("" = the benchmark's), manifest name
  local suffix=${1:+-$1} config=$HERE/config.pbtxt
  [[ -n $1 ]] && config=$OUT/config-$1.pbtxt
  [[ -f "$OUT/$2$suffix.mmds" ]] && return 0
  "$BIN/mmfuse" extract --manifest "$OUT/data/$2.jsonl" --featurizers "$config" \
    --out "$OUT/$2$suffix.mmds" --jobs 2 --progress off --strict 2>"$OUT/logs/extract-$2$suffix.log"
}
for split in train val-heldout test test-heldout train.text val.text test.text; do extract "" "$split"; done
for split in train val-heldout test test-heldout; do extract rawaudio "$split"; done
for split in train val-heldout test test-heldout train.text val.text test.text; do extract text64 "$split"; done
for m in audio image; do
  for split in "train.$m" "val.$m"; do extract "" "$split"; done
done

train() {  # row name, config file, data suffix, extra flags
  "$BIN/mmfuse" train --config "$2" --data "$OUT/train$3.mmds" --eval_data "$OUT/val-heldout$3.mmds" \
    --out "$OUT/model-$1" --epochs "$EPOCHS" --seed "$SEED" --mode "$MODE" "${@:4}" \
    >"$OUT/logs/train-$1.log" 2>&1 || { tail -3 "$OUT/logs/train-$1.log" >&2; exit 1; }
}
unimodal() {  # modality, data suffix, config
  "$BIN/mmfuse" train --config "$3" --data "$OUT/train.$1$2.mmds" --eval_data "$OUT/val.$1$2.mmds" \
    --out "$OUT/model-$1-only$2" --epochs "$EPOCHS" --seed "$SEED" --mode concat \
    >"$OUT/logs/train-$1-only$2.log" 2>&1 || { tail -3 "$OUT/logs/train-$1-only$2.log" >&2; exit 1; }
}
running=0
spawn() {
  if (( running >= TRAIN_JOBS )); then wait -n || exit 1; running=$((running - 1)); fi
  "$@" &
  running=$((running + 1))
}
drain() { while (( running > 0 )); do wait -n || exit 1; running=$((running - 1)); done; }

C=$HERE/config.pbtxt
spawn unimodal audio "" "$C"
spawn unimodal image "" "$C"
spawn unimodal text "" "$C"
spawn unimodal text -text64 "$OUT/config-text64.pbtxt"
spawn train recipe "$C" ""
spawn train no-aux "$C" "" --aux_weight 0
spawn train augment "$C" "" --augment
spawn train no-smoothing "$C" "" --label_smoothing 0
spawn train text64 "$OUT/config-text64.pbtxt" -text64
spawn train raw-audio "$OUT/config-rawaudio.pbtxt" -rawaudio
# The recipe before this one: no evaluation data (the last epoch is kept),
# no warmup, smoothing, auxiliary losses or augmentation.
spawn "$BIN/mmfuse" train --config "$C" --data "$OUT/train.mmds" --out "$OUT/model-previous" \
  --epochs "$EPOCHS" --seed "$SEED" --mode "$MODE" --aux_weight 0 --label_smoothing 0 \
  --warmup_fraction 0 --augment=false
drain
spawn train init-unimodal "$C" "" \
  --init_from "$OUT/model-audio-only:expert_full.audio_,$OUT/model-image-only:expert_full.video_,$OUT/model-text-only:expert_full.text_"
drain

acc() {  # package, data -> accuracy %
  "$BIN/mmfuse" eval --model_dir "$OUT/model-$1" --data "$OUT/$2.mmds" --budget accurate --json |
    sed -E 's/.*"accuracy": ([0-9.]+).*/\1/' | awk '{printf "%.1f", 100 * $1}'
}
{
  echo "| row ($MODE, train $TRAIN, $EPOCHS epochs) | test % | held-out voices % |"
  echo "| --- | --- | --- |"
  for row in recipe previous no-aux augment no-smoothing init-unimodal; do
    echo "| $row | $(acc "$row" test) | $(acc "$row" test-heldout) |"
  done
  echo "| text64 | $(acc text64 test-text64) | $(acc text64 test-heldout-text64) |"
  echo "| raw-audio | $(acc raw-audio test-rawaudio) | $(acc raw-audio test-heldout-rawaudio) |"
  echo "| text only, 256-d | $(acc text-only test.text) | |"
  echo "| text only, 64-d | $(acc text-only-text64 test.text-text64) | |"
} | tee "$OUT/ablation.md"
