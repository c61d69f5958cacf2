#!/usr/bin/env bash
# Remakes docs/BENCHMARKS.md on this machine with one command: every figure
# measured side by side in one run, the command that made it beside it.
#  1. raw model ceiling (raw_model_bench, best batch size);
#  2. mmfuse-server throughput at saturation over loopback (closed loop), and
#     its ratio to 1;
#  3. latency p50/p99 at 50% of saturation (open loop, Poisson);
#  4. batching on (the package's, as `mmfuse tune` chose it at the start of
#     the run: 4c) against off (max batch 1), same load;
#  5. gating on (budget BALANCED) against off (ACCURATE) on a gated package:
#     throughput and mean GFLOPs/request (from the server's own counters);
#  6. the Python peer (bench/peer) against mmfuse at the same loads, and an
#     open-loop rate sweep of both, plotted as p99 latency against throughput
#     (bench/plot_latency_throughput.py);
#  7. native against KServe protocol at the same load, when mmfuse-bench has
#     --protocol (skipped with a note otherwise);
#  8. mmfuse's raw forward against ONNX Runtime on the same model and shapes
#     (bench/onnx/compare.sh; needs node and the npm registry once);
#  and the in-process fusion-mode and batcher figures (fusion_bench,
#  batcher_bench). Raw results (mmfuse-bench JSON, tool output, the commands)
#  go to bench/out/<mode>/raw/; bench/lib/render_benchmarks.py writes the
#  Markdown from them.
#
#   bench/make_benchmarks.sh           full run (~12 min on 2 cores): writes
#                                      docs/BENCHMARKS.md and
#                                      docs/img/latency_throughput.png
#   bench/make_benchmarks.sh --quick   a check of the whole pipeline (~3 min):
#                                      short steps, writes only under
#                                      bench/out/quick/ (figures not for the doc)
#
# Environment: MMFUSE_BUILD_DIR (default build; needs mmfuse, mmfuse-server,
# mmfuse-bench, raw_model_bench, fusion_bench, batcher_bench),
# MMFUSE_PEER_PYTHON (default /usr/bin/python3, with python3-torch,
# python3-grpcio, python3-protobuf, python3-matplotlib), WORKERS (default 2).
# Run it on a quiet machine: the load generator shares the cores with the
# server under test, and anything else running skews every figure.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "make_benchmarks.sh: unknown argument \"$arg\" (expected --quick or --help)" >&2; exit 2 ;;
  esac
done

BIN=${MMFUSE_BUILD_DIR:-build}/bin
PY=${MMFUSE_PEER_PYTHON:-/usr/bin/python3}
export PYTHONDONTWRITEBYTECODE=1  # No __pycache__ in the source tree.
WORKERS=${WORKERS:-2}
OUT=bench/out/$MODE
RAW=$OUT/raw
if [[ $MODE == full ]]; then
  DOC=docs/BENCHMARKS.md IMG=docs/img/latency_throughput.png
  DURATION=8s WARMUP=2s RAW_SECONDS=5 RAW_BATCHES=1,2,4,8,16
  CONCURRENCY=1,4,8,16,32 SWEEP="0.2 0.4 0.6 0.8 0.9 0.95"
  FUSION_ARGS="--seconds 1" BATCHER_SECONDS=3
  TUNE_SECONDS=1 TUNE_FLAGS=() ONNX_REPEATS=3 ONNX_SECONDS=3
  GATED_EXAMPLES=3000 GATED_EPOCHS=4 GATED_GATE_EPOCHS=30
else
  DOC=$OUT/BENCHMARKS.md IMG=$OUT/img/latency_throughput.png
  DURATION=2s WARMUP=500ms RAW_SECONDS=1 RAW_BATCHES=1,4
  CONCURRENCY=4,16 SWEEP="0.5 0.9"
  FUSION_ARGS="--seconds 0.1 --batch_sizes 1 --scales 1" BATCHER_SECONDS=1
  # --dry_run: a quick run leaves models/default's batching as it was.
  TUNE_SECONDS=0.2 TUNE_FLAGS=(--dry_run) ONNX_REPEATS=1 ONNX_SECONDS=0.5
  GATED_EXAMPLES=400 GATED_EPOCHS=1 GATED_GATE_EPOCHS=3
fi
PEER_THREADS=10   # The peer's prototype thread pool (gRPC's Python examples).
GATED_LAMBDA=0.3  # docs/GATING.md: about a third less compute, 2 points of accuracy.

source bench/lib/bench_lib.sh
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- Preflight ---------------------------------------------------------------
for tool in mmfuse mmfuse-server mmfuse-bench raw_model_bench fusion_bench batcher_bench; do
  [[ -x $BIN/$tool ]] || die "$BIN/$tool is missing: build it (cmake --build ${BIN%/bin} --target $tool) or set MMFUSE_BUILD_DIR"
done
"$PY" -c 'import torch, grpc, google.protobuf, matplotlib, numpy' 2>/dev/null ||
  die "$PY lacks python3-torch, python3-grpcio, python3-protobuf, python3-matplotlib or python3-numpy (Debian packages; scripts/setup.sh installs them)"
command -v jq >/dev/null || die "jq is missing (apt-get install jq)"
if ! "$BIN/mmfuse" check --model_dir models/default >/dev/null 2>&1 || [[ ! -f datasets/test.mmds ]]; then
  log "making models/default (scripts/make_default_model.sh)"
  MMFUSE_BUILD_DIR=${BIN%/bin} ./scripts/make_default_model.sh models/default >/dev/null
fi
rm -rf "$RAW"
mkdir -p "$RAW" "$(dirname "$DOC")" "$(dirname "$IMG")"
START=$(date +%s)
jq -n --arg mode "$MODE" --arg date "$(date -u '+%Y-%m-%d %H:%M UTC')" --arg cpu "$(nproc)" \
  --arg model "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
  --arg mem "$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" \
  --arg os "$(. /etc/os-release && echo "$PRETTY_NAME")" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg rev "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg workers "$WORKERS" --arg duration "$DURATION" --arg warmup "$WARMUP" \
  '{mode: $mode, date: $date, cores: $cpu, cpu: $model, mem_gib: $mem, os: $os, load_start: $load,
    revision: $rev, workers: $workers, duration: $duration, warmup: $warmup}' >"$RAW/meta.json"
DATA=datasets/test.mmds
log "mode $MODE: raw results in $RAW, the document in $DOC"

# --- 4c. The package's batching, tuned on this machine first -----------------
log "4c. tuning the package's batching (mmfuse tune, $TUNE_SECONDS s per setting)"
record tuning "$BIN/mmfuse" tune --model_dir models/default --data "$DATA" --workers "$WORKERS" \
  --trial_seconds "$TUNE_SECONDS" --table_out "$RAW/tuning.md" "${TUNE_FLAGS[@]}"

# --- 1. Raw model ceiling ----------------------------------------------------
log "1. raw model ceiling"
record raw_model "$BIN/raw_model_bench" --model_dir models/default --data "$DATA" --workers "$WORKERS" \
  --batch_sizes "$RAW_BATCHES" --seconds "$RAW_SECONDS"

# --- 2, 3, 7. mmfuse-server: saturation, latency at half load, protocols ----
log "2. mmfuse-server saturation (closed loop, concurrency $CONCURRENCY)"
start_server server_default models/default --workers "$WORKERS"
MMFUSE_ADDR=$SERVER_ADDR MMFUSE_PID=$SERVER_PID
bench mmfuse_closed "$MMFUSE_ADDR" "$DATA" --concurrency "$CONCURRENCY"
SAT=$(json "$RAW/mmfuse_closed.out" 'max_by(.throughput_rps).throughput_rps')
SAT_C=$(json "$RAW/mmfuse_closed.out" 'max_by(.throughput_rps).concurrency')
log "   saturation $SAT/s at concurrency $SAT_C"

log "3. latency at 50% of saturation (open loop, Poisson)"
HALF=$(awk -v s="$SAT" 'BEGIN { printf "%.0f", s / 2 }')
bench mmfuse_half_load "$MMFUSE_ADDR" "$DATA" --rate "$HALF" --arrival poisson

log "6a. mmfuse open-loop sweep"
RATES=$(for f in $SWEEP; do awk -v s="$SAT" -v f="$f" 'BEGIN { printf "%.0f\n", s * f }'; done | paste -sd,)
bench mmfuse_sweep "$MMFUSE_ADDR" "$DATA" --rate "$RATES" --arrival poisson

log "7. KServe protocol overhead"
# Not `--helpfull | grep -q`: grep quits at the match, and under pipefail the
# writer's SIGPIPE would read as "no flag".
BENCH_FLAGS=$("$BIN/mmfuse-bench" --helpfull 2>&1 || true)
if grep -q -- '--protocol' <<<"$BENCH_FLAGS"; then
  bench kserve_native "$MMFUSE_ADDR" "$DATA" --concurrency "$SAT_C" --protocol mmfuse || true
  bench kserve_kserve "$MMFUSE_ADDR" "$DATA" --concurrency "$SAT_C" --protocol kserve || true
else
  log "   skipped: $BIN/mmfuse-bench has no --protocol flag"
  echo "mmfuse-bench has no --protocol flag" >"$RAW/kserve_skipped"
fi

# --- 6. The peer, at the same loads -----------------------------------------
# Two thread pools: the prototype's (10, gRPC's Python examples) and one
# thread per core (fewer threads fight less over the GIL). The stronger one
# is "the peer" for the open-loop comparisons and the target.
log "6b. the Python peer (closed loop, concurrency $CONCURRENCY), $PEER_THREADS and $WORKERS gRPC threads"
start_peer peer_prototype models/default --threads "$PEER_THREADS"
bench peer_prototype_closed "$PEER_ADDR" "$DATA" --concurrency "$CONCURRENCY"
stop "$PEER_PID"
start_peer peer_tuned models/default --threads "$WORKERS"
bench peer_tuned_closed "$PEER_ADDR" "$DATA" --concurrency "$CONCURRENCY"
PROTOTYPE_SAT=$(json "$RAW/peer_prototype_closed.out" 'max_by(.throughput_rps).throughput_rps')
PEER_SAT=$(json "$RAW/peer_tuned_closed.out" 'max_by(.throughput_rps).throughput_rps')
if awk -v a="$PROTOTYPE_SAT" -v b="$PEER_SAT" 'BEGIN { exit !(a > b) }'; then
  stop "$PEER_PID"
  start_peer peer_prototype_again models/default --threads "$PEER_THREADS"
  PEER_SAT=$PROTOTYPE_SAT
  echo prototype >"$RAW/peer_choice"
else
  echo tuned >"$RAW/peer_choice"
fi
log "   peer saturation $PEER_SAT/s ($(cat "$RAW/peer_choice") thread pool)"
PEER_HALF=$(awk -v s="$PEER_SAT" 'BEGIN { printf "%.0f", s / 2 }')
bench same_rate_peer "$PEER_ADDR" "$DATA" --rate "$PEER_HALF" --arrival poisson
bench same_rate_mmfuse "$MMFUSE_ADDR" "$DATA" --rate "$PEER_HALF" --arrival poisson
PEER_RATES=$(for f in $SWEEP; do awk -v s="$PEER_SAT" -v f="$f" 'BEGIN { printf "%.0f\n", s * f }'; done | paste -sd,)
bench peer_sweep "$PEER_ADDR" "$DATA" --rate "$PEER_RATES" --arrival poisson
stop "$PEER_PID"
stop "$MMFUSE_PID"

# --- 4. Batching on and off --------------------------------------------------
log "4. batching on (the package's, as tuned) and off (max batch 1) at concurrency $SAT_C"
start_server server_batching_on models/default --workers "$WORKERS"
bench batching_on "$SERVER_ADDR" "$DATA" --concurrency "$SAT_C"
stop "$SERVER_PID"
start_server server_batching_off models/default --workers "$WORKERS" --max_batch_size 1
bench batching_off "$SERVER_ADDR" "$DATA" --concurrency "$SAT_C"
stop "$SERVER_PID"
# The untuned default (model/default_config.cc): what an image build ships.
start_server server_batching_16 models/default --workers "$WORKERS" --max_batch_size 16 \
  --max_queue_delay_us 0 --length_bucket_ratio 2
bench batching_16 "$SERVER_ADDR" "$DATA" --concurrency "$SAT_C"
stop "$SERVER_PID"

# --- 5. Gating on and off ----------------------------------------------------
GATED=bench/out/models/gated-$MODE
if ! "$BIN/mmfuse" check --model_dir "$GATED/model" >/dev/null 2>&1; then
  log "5. training the gated package (bench/gating_bench.sh's recipe, lambda $GATED_LAMBDA): $GATED"
  mkdir -p "$GATED"
  gen() { "$BIN/mmfuse" datagen --seed 3 --easy_fraction 0.6 --missing_rate 0.05 --examples "$2" --split "$3" --out "$GATED/$1" >/dev/null 2>&1; }
  gen train.mmds "$GATED_EXAMPLES" 0
  gen test.mmds 1000 1
  gen gate.mmds $((GATED_EXAMPLES / 2)) 2
  "$BIN/mmfuse" train --gate --gate_epochs 1 --data "$GATED/train.mmds" --out "$GATED/experts" \
    --epochs "$GATED_EPOCHS" --seed 1 >"$GATED/experts.log" 2>&1 || die "training the experts failed ($GATED/experts.log)"
  "$BIN/mmfuse" train --gate --init_from "$GATED/experts" --epochs 0 --data "$GATED/train.mmds" \
    --gate_data "$GATED/gate.mmds" --gate_epochs "$GATED_GATE_EPOCHS" --out "$GATED/model" \
    --lambda "$GATED_LAMBDA" --seed 1 >"$GATED/gate.log" 2>&1 || die "training the gate failed ($GATED/gate.log)"
fi
printf 'gated_package\t%s\n' "bench/gating_bench.sh's data and experts (EXAMPLES=$GATED_EXAMPLES EPOCHS=$GATED_EPOCHS), gate at --lambda $GATED_LAMBDA --gate_epochs $GATED_GATE_EPOCHS" >>"$RAW/commands.tsv"
log "5. gating off (budget accurate) and on (budget balanced) at concurrency $SAT_C"
start_server server_gated "$GATED/model" --workers "$WORKERS"
for budget in accurate balanced; do
  metrics_snapshot "$METRICS_ADDR" >"$RAW/gating_$budget.before"
  bench "gating_$budget" "$SERVER_ADDR" "$GATED/test.mmds" --concurrency "$SAT_C" --budget_mix "$budget=1"
  metrics_snapshot "$METRICS_ADDR" >"$RAW/gating_$budget.after"
done
stop "$SERVER_PID"

# --- 5b. Gate-then-batch against one mixed queue ------------------------------
log "5b. a queue per branch against one mixed queue (gated package, max batch 8, 2000 us)"
for policy in per_branch mixed; do
  mixed=false
  [[ $policy == mixed ]] && mixed=true
  start_server "server_queues_$policy" "$GATED/model" --workers "$WORKERS" --max_batch_size 8 \
    --max_queue_delay_us 2000 --mixed_branch_queues="$mixed"
  bench "queues_$policy" "$SERVER_ADDR" "$GATED/test.mmds" --concurrency "$SAT_C" --budget_mix balanced=1
  stop "$SERVER_PID"
done

# --- In-process figures ------------------------------------------------------
log "fusion modes in process (fusion_bench)"
record fusion "$BIN/fusion_bench" --config bench/configs/fusion.pbtxt $FUSION_ARGS --json
log "batcher overhead (batcher_bench)"
record batcher_1 "$BIN/batcher_bench" --rate 10000 --seconds "$BATCHER_SECONDS" --max_batch_size 1
record batcher_8 "$BIN/batcher_bench" --rate 10000 --seconds "$BATCHER_SECONDS" --max_batch_size 8 --max_queue_delay_us 0

log "8. against ONNX Runtime (bench/onnx/compare.sh)"
record onnx env MMFUSE_BUILD_DIR="${BIN%/bin}" REPEATS="$ONNX_REPEATS" SECONDS_PER="$ONNX_SECONDS" \
  bench/onnx/compare.sh models/default || log "   skipped: the comparison failed ($RAW/onnx.err)"

# --- Plot and document -------------------------------------------------------
jq --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg s "$(($(date +%s) - START))" \
  '. + {load_end: $load, seconds: $s}' "$RAW/meta.json" >"$RAW/meta.json.tmp" && mv "$RAW/meta.json.tmp" "$RAW/meta.json"
log "plot: $IMG"
"$PY" bench/plot_latency_throughput.py --mmfuse "$RAW/mmfuse_sweep.out" --peer "$RAW/peer_sweep.out" --out "$IMG"
log "document: $DOC"
"$PY" bench/lib/render_benchmarks.py --raw "$RAW" --doc "$DOC" --img "$IMG" --previous docs/BENCHMARKS.md
log "done in $(($(date +%s) - START)) s"
