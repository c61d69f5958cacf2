#!/usr/bin/env bash
# Everything measured on the GPU machine, in one bounded run (docs/GPU.md):
# the device is lent for minutes, so this builds, tests and measures in one
# call and writes every figure under $OUT (the device tool's output folder).
#
# On this machine first:   bench/gpu/prepare.sh
# Then, one device call:   run(command="bash bench/gpu/device_run.sh",
#                              carry=[".gpu-deps", "models/default", "models/gated"],
#                              timeout_s=590)
#
# Steps, most wanted first (each logged with its time; a failing step is
# reported and the rest still run where they can; STEPS="1 2 4" runs some;
# a dry run on a CPU machine: MMFUSE_BIN=build/bin DEVICE=cpu STEPS="4 5 6 7"):
#   1. build (scripts/gpu/build.sh), nvidia-smi and LibTorch's CUDA view;
#   2. the GPU tests: model_test's Device* and graph cases (every fusion mode
#      on cuda:0 against the CPU, fp16/bf16, pinned copies, CUDA graphs
#      against eager, concurrent replay), gpu_metrics_test;
#   3. accuracy on cuda:0 in fp32, bf16 and fp16 against the CPU (mmfuse eval);
#   4. raw model ceiling on cuda:0, CUDA graphs off and on (raw_model_bench);
#   5. served on cuda:0, graphs off and on: saturation (closed loop) with the
#      GPU's busy share sampled by nvidia-smi, then 50% of it (open loop);
#   6. gating off (budget accurate) and on (balanced), models/gated;
#   7. the Python peer (bench/peer) on the same GPU, same package and data.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mmfuse-gpu-out}
STEPS=${STEPS:-1 2 3 4 5 6 7}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_run.log") 2>&1
START=$SECONDS
step() { echo; echo "## [$((SECONDS - START)) s] $*"; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }
BIN=${MMFUSE_BIN:-build-gpu/bin}
DEVICE=${DEVICE:-cuda:0}
PORT=50551
DATA=datasets/test.mmds

# best_rps FILE: the highest throughput of an mmfuse-bench --json array.
best_rps() { python3 -c 'import json,sys; print(max(s["throughput_rps"] for s in json.load(open(sys.argv[1]))))' "$1"; }

# Samples the GPU's busy share (nvidia-smi, every 100 ms) while a command
# runs; prints the mean percentage to FILE.
with_gpu_busy() {
  local file=$1
  shift
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 >"$file.samples" 2>/dev/null &
  local sampler=$!
  "$@"
  kill $sampler 2>/dev/null
  wait $sampler 2>/dev/null
  python3 -c 'import sys; v=[float(x) for x in open(sys.argv[1]) if x.strip()]; print("%.1f" % (sum(v)/len(v)) if v else "n/a")' "$file.samples" >"$file"
  echo "GPU busy: $(cat "$file")% of wall time"
}

start_server() {  # NAME MODEL_DIR [flags...]
  local name=$1 model=$2
  shift 2
  "$BIN/mmfuse-server" --device "$DEVICE" --host 127.0.0.1 --port $PORT --metrics_port 9464 \
    --model_dir "$model" "$@" 2>"$OUT/$name.log" &
  SERVER=$!
  wait_ready "$name" && return 0
  echo "$name did not start:"; tail -5 "$OUT/$name.log"; return 1
}
# wait_ready NAME: until $SERVER answers GetModelInfo; fails at once if it exits.
wait_ready() {
  for _ in $(seq 1 300); do
    kill -0 "$SERVER" 2>/dev/null || return 1
    "$BIN/mmfuse" info --server 127.0.0.1:$PORT --timeout_ms 500 >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}
stop_server() { kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }
bench() {  # NAME DATA [flags...]
  local name=$1 data=$2
  shift 2
  "$BIN/mmfuse-bench" --server 127.0.0.1:$PORT --data "$data" --progress=false --json \
    --warmup 1s "$@" >"$OUT/$name.json" && echo "$name: best $(best_rps "$OUT/$name.json")/s"
}

step "1. build"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' || true
if [[ -z ${MMFUSE_BIN:-} ]]; then
  BUILD_START=$SECONDS
  bash scripts/gpu/build.sh || { echo "build failed"; exit 1; }
  echo "build: $((SECONDS - BUILD_START)) s"
  # shellcheck disable=SC1091
  source build-gpu/env.sh
fi
mkdir -p datasets
"$BIN/mmfuse" datagen --out $DATA --examples 1000 --split 1 --seed 1 --missing_rate 0.1

if wanted 2; then
  step "2. GPU tests"
  "$BIN/../tests/model_test" --gtest_filter='*Device*:*Graph*:*Padded*' 2>&1 | tail -40
  "$BIN/../tests/gpu_metrics_test" 2>&1 | tail -5
fi

if wanted 3; then
  step "3. accuracy: cpu fp32 against cuda:0 fp32, bf16, fp16"
  for spec in cpu:fp32 cuda:0:fp32 cuda:0:bf16 cuda:0:fp16; do
    device=${spec%:*} precision=${spec##*:}
    "$BIN/mmfuse" eval --model_dir models/default --data $DATA --budget accurate \
      --device "$device" --precision "$precision" --json >"$OUT/eval-$device-$precision.json"
    echo "$device $precision: $(cat "$OUT/eval-$device-$precision.json" | head -c 300)"
  done
fi

if wanted 4; then
  step "4. raw model ceiling on cuda:0, CUDA graphs off and on"
  for graphs in false true; do
    for workers in 1 4; do
      timeout 60 "$BIN/raw_model_bench" --device "$DEVICE" --model_dir models/default --data $DATA \
        --workers "$workers" --batch_sizes 1,8,32,128 --seconds 2 --cuda_graphs=$graphs |
        tee -a "$OUT/raw-graphs-$graphs.md"
    done
  done
fi

if wanted 5; then
  step "5. served on cuda:0: saturation, then 50% load; CUDA graphs off and on"
  for graphs in false true; do
    start_server "server-graphs-$graphs" models/default --workers 4 --max_batch_size 64 \
      --max_queue_delay_us 500 --cuda_graphs=$graphs || continue
    with_gpu_busy "$OUT/gpu-busy-graphs-$graphs.txt" \
      bench "served-graphs-$graphs" $DATA --duration 4s --concurrency 4,16,64,128 --channels 4
    half=$(python3 -c "print(int($(best_rps "$OUT/served-graphs-$graphs.json") / 2))")
    bench "half-load-graphs-$graphs" $DATA --duration 5s --rate "$half" --arrival poisson --channels 4
    curl -s 127.0.0.1:9464/metrics | grep -E '^mmfuse_gpu_' >"$OUT/gpu-metrics-graphs-$graphs.txt"
    stop_server
  done
fi

if wanted 6; then
  step "6. gating off (accurate) and on (balanced), gated package"
  if [[ -f models/gated/test.mmds ]] && start_server server-gated models/gated --workers 4 \
      --max_batch_size 64 --max_queue_delay_us 500; then
    for budget in accurate balanced; do
      bench "gating-$budget" models/gated/test.mmds --duration 4s --concurrency 64 --channels 4 \
        --budget_mix "$budget=1"
    done
    stop_server
  else
    echo "no models/gated (bench/gpu/prepare.sh makes it)"
  fi
fi

if wanted 7; then
  step "7. the Python peer on cuda:0 (same package, same data)"
  # It generates its protobuf modules with protoc: the carried one.
  PATH=/tmp/mmfuse-deps/usr/bin:$PATH python3 bench/peer/peer_server.py --model_dir models/default \
    --host 127.0.0.1 --port $PORT --threads 16 --device "$DEVICE" 2>"$OUT/peer.log" &
  SERVER=$!
  wait_ready peer || { echo "the peer did not start:"; tail -5 "$OUT/peer.log"; }
  with_gpu_busy "$OUT/gpu-busy-peer.txt" \
    bench peer $DATA --duration 4s --concurrency 4,16,64 --channels 4 || tail -5 "$OUT/peer.log"
  stop_server
fi
echo; echo "done in $((SECONDS - START)) s; files in $OUT"
