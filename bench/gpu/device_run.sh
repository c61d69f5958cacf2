#!/usr/bin/env bash
# Everything measured on the GPU machine, in one bounded run (docs/GPU.md):
# the device is lent for minutes, so this builds, tests and measures in one
# call and writes every figure under $OUT (the device tool's output folder).
#
# On this machine first:   scripts/gpu/fetch_deps.sh; ./scripts/make_default_model.sh
# Then, one device call:   run(command="bash bench/gpu/device_run.sh",
#                              carry=[".gpu-deps", "models/default"], timeout_s=590)
#
# Steps (each logged with its time; a failing step is reported and the rest
# still run where they can):
#   1. build (scripts/gpu/build.sh), nvidia-smi and LibTorch's CUDA view;
#   2. the GPU tests: model_test's Device* cases (every fusion mode on
#      cuda:0 against the CPU, pinned copies), gpu_metrics_test;
#   3. accuracy on cuda:0 against the CPU (mmfuse eval, same package, data);
#   4. raw model ceiling on cuda:0 (raw_model_bench, workers x batch sizes);
#   5. served on cuda:0 at saturation (mmfuse-bench closed loop) and at 50%
#      (open loop), with the server's GPU metrics scraped during the run.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/mmfuse-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_run.log") 2>&1
START=$SECONDS
step() { echo; echo "## [$((SECONDS - START)) s] $*"; }

step "1. build"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))' || true
bash scripts/gpu/build.sh || { echo "build failed"; exit 1; }
# shellcheck disable=SC1091
source build-gpu/env.sh
BIN=build-gpu/bin
mkdir -p datasets
"$BIN/mmfuse" datagen --out datasets/test.mmds --examples 1000 --split 1 --seed 1 --missing_rate 0.1

step "2. GPU tests"
build-gpu/tests/model_test --gtest_filter='*Device*' 2>&1 | tail -30
build-gpu/tests/gpu_metrics_test 2>&1 | tail -5

step "3. accuracy, cuda:0 against cpu"
for device in cpu cuda:0; do
  "$BIN/mmfuse" eval --model_dir models/default --data datasets/test.mmds --budget accurate \
    --device "$device" --json | tee "$OUT/eval-$device.json"
done

step "4. raw model ceiling on cuda:0"
for workers in 1 2 4; do
  "$BIN/raw_model_bench" --device cuda:0 --model_dir models/default --data datasets/test.mmds \
    --workers "$workers" --batch_sizes 1,8,32,64,128 --seconds 3 | tee -a "$OUT/raw.md"
done

step "5. served on cuda:0"
PORT=50551
"$BIN/mmfuse-server" --device cuda:0 --host 127.0.0.1 --port $PORT --metrics_port 9464 \
  --model_dir models/default --workers 4 --max_batch_size 64 --max_queue_delay_us 500 \
  2>"$OUT/server.log" &
SERVER=$!
for _ in $(seq 1 100); do "$BIN/mmfuse" health --server 127.0.0.1:$PORT >/dev/null 2>&1 && break; sleep 0.2; done
"$BIN/mmfuse-bench" --server 127.0.0.1:$PORT --data datasets/test.mmds --progress=false --json \
  --duration 6s --warmup 2s --concurrency 4,16,64,128 --channels 4 >"$OUT/served.json" || true
curl -s 127.0.0.1:9464/metrics | grep -E '^mmfuse_gpu_' | tee "$OUT/gpu_metrics.txt" || true
kill -TERM $SERVER; wait $SERVER
echo; echo "done in $((SECONDS - START)) s; files in $OUT"
