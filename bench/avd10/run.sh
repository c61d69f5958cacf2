#!/usr/bin/env bash
# AVD-10 end to end (docs/AVD10.md): fetch the sources (once), build the
# benchmark from a seed, featurize it with `mmfuse extract`, train every row
# on the same data and architecture (bench/avd10/config.pbtxt) with the
# default recipe of `mmfuse train`, evaluate on the test split and the
# held-out voices, and print a Markdown table.
#
#   bench/avd10/run.sh [out dir, default /tmp/mmfuse-avd10]
#
# Model selection: every fusion model (and the gated package's experts)
# keeps its best epoch on val-heldout, whose voices are disjoint from
# training; each single-modality model on val's samples of its modality.
# The gate learns on val (samples the experts never saw).
#
# Environment: MMFUSE_BUILD_DIR (default build), SEED (1), TRAIN (training
# samples, 10000), EPOCHS (15), GATE_EPOCHS (30), LAMBDAS ("0.3 1"),
# GATED_MODE (fusion mode of the gated package's experts, sft), BUILD_FLAGS
# (extra build.py flags), AVD10_CACHE (fetch.sh's cache dir), JOBS (extract
# threads, 2), TRAIN_JOBS (trainings at once, nproc), REUSE_DATA (1: keep
# the featurized splits an earlier run left in the out dir and only train
# and evaluate; the build is deterministic by seed).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/../.."
BIN=$(cd "${MMFUSE_BUILD_DIR:-build}/bin" && pwd)
OUT=${1:-/tmp/mmfuse-avd10}
SEED=${SEED:-1}
TRAIN=${TRAIN:-10000}
EPOCHS=${EPOCHS:-15}
GATE_EPOCHS=${GATE_EPOCHS:-30}
LAMBDAS=${LAMBDAS:-"0.3 1"}
GATED_MODE=${GATED_MODE:-sft}
MODES="concat late mbt sft locomt pmf"
JOBS=${JOBS:-2}
CACHE=${AVD10_CACHE:-$HERE/cache}
CONFIG=$HERE/config.pbtxt
[[ -x "$BIN/mmfuse" ]] || { echo "run: no $BIN/mmfuse (build it, or set MMFUSE_BUILD_DIR)" >&2; exit 1; }
mkdir -p "$OUT"
LOG=$OUT/logs
mkdir -p "$LOG"

extract() {  # manifest name (data/<name>.jsonl -> <name>.mmds)
  "$BIN/mmfuse" extract --manifest "$OUT/data/$1.jsonl" --featurizers "$CONFIG" \
    --out "$OUT/$1.mmds" --jobs "$JOBS" --progress off --strict 2>"$LOG/extract-$1.log" ||
    { cat "$LOG/extract-$1.log" >&2; echo "run: extract of $1 failed" >&2; exit 1; }
}
make_data() {  # build the benchmark from the seed, then featurize every split
  [[ -f "$CACHE/.complete" ]] || "$HERE/fetch.sh" "$CACHE"
  rm -rf "$OUT/data"
  # shellcheck disable=SC2086  # BUILD_FLAGS is a list of flags.
  /usr/bin/python3 "$HERE/build.py" --cache "$CACHE" --out "$OUT/data" --seed "$SEED" \
    --train "$TRAIN" ${BUILD_FLAGS:-}
  local name m
  for name in train val val-heldout test test-heldout; do
    [[ -f "$OUT/data/$name.jsonl" ]] && extract "$name"
  done
  for m in audio image text; do
    extract "train.$m"
    extract "val.$m"
    extract "test.$m"
  done
  [[ -f "$OUT/data/test-heldout.audio.jsonl" ]] && extract "test-heldout.audio"
  return 0
}
START=$SECONDS
if [[ ${REUSE_DATA:-0} == 1 && -f "$OUT/train.mmds" && -f "$OUT/test.mmds" ]]; then
  echo "run: reusing the featurized splits in $OUT (REUSE_DATA=1)"
else
  make_data
fi

train() {  # package name, train data name, extra flags
  "$BIN/mmfuse" train --config "$CONFIG" --data "$OUT/$2.mmds" --out "$OUT/model-$1" \
    --epochs "$EPOCHS" --seed "$SEED" "${@:3}" >"$LOG/train-$1.log" 2>&1 ||
    { tail -5 "$LOG/train-$1.log" >&2; echo "run: training $1 failed" >&2; exit 1; }
}
field() { sed -E "s/.*\"$1\": ([0-9.eE+-]+).*/\\1/" <<<"$2"; }
branches() { sed -E 's/.*"branch_fraction": \{([^}]*)\}.*/\1/; s/"//g' <<<"$1"; }
pct() { awk -v a="$1" 'BEGIN{printf "%.1f", 100*a}'; }
row() {  # label, package name, test data name, budget
  local json
  json=$("$BIN/mmfuse" eval --model_dir "$OUT/model-$2" --data "$OUT/$3.mmds" \
    --budget "${4:-accurate}" --json)
  echo "$json" >"$LOG/eval-$1.json"
  printf '| %s | %s | %s | %.5f | %s |\n' "$1" "$3" "$(pct "$(field accuracy "$json")")" \
    "$(field mean_gflops "$json")" "${5:-}"
}

# Trainings are independent and each uses one math thread: run TRAIN_JOBS
# (default: the number of cores) at a time; any failure stops the run.
TRAIN_JOBS=${TRAIN_JOBS:-$(nproc)}
running=0
spawn() {  # the arguments of train, run in the background
  if (( running >= TRAIN_JOBS )); then wait -n || exit 1; running=$((running - 1)); fi
  train "$@" &
  running=$((running + 1))
}
drain() { while (( running > 0 )); do wait -n || exit 1; running=$((running - 1)); done; }

DATA_SECONDS=$((SECONDS - START))

# First the single-modality models (each selected on val's samples of its
# modality); every fusion model and every expert of the gated package then
# starts its encoders from them (--init_from by parameter prefix: +7 points
# in the ablation, docs/AVD10.md).
for m in audio image text; do
  spawn "$m-only" "train.$m" --mode concat --eval_data "$OUT/val.$m.mmds"
done
drain
unimodal() {  # expert name -> --init_from spec for its encoders
  local spec="" m name
  for m in audio:audio video:image text:text; do
    name=${m%%:*}
    case $1 in full | "$name") ;; *) continue ;; esac
    spec+="${spec:+,}$OUT/model-${m#*:}-only:expert_full.${name}_=expert_$1.${name}_"
  done
  echo "$spec"
}
INIT_FULL=$(unimodal full)
INIT_GATED="$INIT_FULL,$(unimodal audio),$(unimodal video),$(unimodal text)"

# Gated (DynMM): experts of every branch (text, audio, video, full) of
# GATED_MODE once, then a gate per lambda over the frozen experts, learned
# on val (samples the experts never saw).
GATE_DATA=$OUT/val.mmds
SELECT=(--eval_data "$OUT/val-heldout.mmds")
spawn gated-experts train --mode "$GATED_MODE" --gate --gate_epochs 1 --gate_data "$GATE_DATA" \
  "${SELECT[@]}" --init_from "$INIT_GATED"
for mode in $MODES; do spawn "$mode" train --mode "$mode" "${SELECT[@]}" --init_from "$INIT_FULL"; done
drain
for lambda in $LAMBDAS; do
  EPOCHS=0 spawn "gated-$lambda" train --gate --init_from "$OUT/model-gated-experts" \
    --mode "$GATED_MODE" --gate_data "$GATE_DATA" --gate_epochs "$GATE_EPOCHS" --lambda "$lambda"
done
drain
TRAIN_SECONDS=$((SECONDS - START - DATA_SECONDS))

table() {
  echo "| model | test data | accuracy % | mean GFLOPs/sample | note |"
  echo "| --- | --- | --- | --- | --- |"
  for m in audio image text; do
    row "$m only" "$m-only" "test.$m" accurate "samples that have $m"
  done
  for mode in $MODES; do
    note=""; [[ $mode == concat ]] && note="full fusion"
    row "fusion $mode" "$mode" test accurate "$note"
  done
  row "gated experts, full branch" gated-experts test accurate "$GATED_MODE experts; the gate's reference"
  for lambda in $LAMBDAS; do
    json=$("$BIN/mmfuse" eval --model_dir "$OUT/model-gated-$lambda" --data "$OUT/test.mmds" \
      --budget balanced --json)
    row "gated, lambda $lambda" "gated-$lambda" test balanced "$(branches "$json")"
  done
  if [[ -f "$OUT/test-heldout.mmds" ]]; then
    row "held-out voices: audio only" audio-only test-heldout.audio accurate "voices unseen in training"
    for mode in $MODES; do
      row "held-out voices: fusion $mode" "$mode" test-heldout accurate "voices unseen in training"
    done
  fi
}
table | tee "$OUT/table.md"
/usr/bin/python3 "$HERE/plot.py" "$OUT/table.md" "$OUT/avd10.png"
echo "run: $TRAIN training samples, $EPOCHS epochs; data $DATA_SECONDS s, training $TRAIN_SECONDS s, \
whole run $((SECONDS - START)) s (TRAIN_JOBS=$TRAIN_JOBS)" | tee "$OUT/time.txt"
