#!/usr/bin/env bash
# Live check of the monitoring stack: a real Prometheus (Debian package) on
# loopback scrapes a real mmfuse-server under load every second and evaluates
# the rules of deploy/prometheus/rules every second; then every Grafana panel
# and variable query, every recording/alert rule and every Prometheus Adapter
# query is run through /api/v1/query (tools/deploy/check_queries.mjs).
#
#   tests/deploy/monitoring_live_test.sh <build dir>
source "$(dirname "$0")/lib.sh"
BUILD=${1:?usage: monitoring_live_test.sh <build dir>}
BIN="$BUILD/bin"
[[ -x "$BIN/mmfuse-server" && -x "$BIN/mmfuse" ]] || die "build $BIN/mmfuse-server and $BIN/mmfuse first"
ensure_commands prometheus:prometheus curl:curl flock:util-linux python3:python3
ensure_node_modules

# Metrics the server exports today: each must have series and every query
# reading only these must return data.
EXPORTED=mmfuse_requests_total,mmfuse_rejected_total,mmfuse_branch_selected_total,mmfuse_gflops_total
EXPORTED+=,mmfuse_request_duration_seconds,mmfuse_queue_duration_seconds,mmfuse_compute_duration_seconds
EXPORTED+=,mmfuse_model_loaded,mmfuse_inflight_requests,mmfuse_build_info,mmfuse_batch_size
EXPORTED+=,mmfuse_queue_depth,mmfuse_padding_ratio,mmfuse_gflops_saved_total,mmfuse_gate_load_bias
EXPORTED+=,process_cpu_seconds_total,process_resident_memory_bytes,process_threads
# Planned metrics (dashboards and rules are ready for them): queries reading
# them may return nothing. GPU series come with the CUDA build.
PLANNED=mmfuse_gpu_memory_used_bytes,mmfuse_gpu_utilization_ratio
# Exported but without series here: the quickly trained package has one
# branch, so no request skips a modality.
KNOWN_EMPTY=mmfuse_modality_skipped_total

T=$(mktemp -d "${TMPDIR:-/tmp}/mmfuse-live.XXXXXX")
PIDS=()
cleanup() {
  local i
  # Newest first: the load loop, then Prometheus, then the server.
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do wait "${PIDS[i]}" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A quickly trained package (seconds), and samples with missing modalities
# so the gate picks more than one branch.
"$BIN/mmfuse" datagen --out "$T/train.mmds" --examples 400 >"$T/datagen.log" 2>&1 || { cat "$T/datagen.log"; die "datagen failed"; }
"$BIN/mmfuse" train --data "$T/train.mmds" --out "$T/model" --epochs 1 >"$T/train.log" 2>&1 || { cat "$T/train.log"; die "train failed"; }
"$BIN/mmfuse" datagen --out "$T/load.mmds" --examples 40 --split 1 --missing_rate 0.4 >/dev/null 2>&1 || die "datagen (load) failed"

# Port 0: the server picks free ports and logs them.
"$BIN/mmfuse-server" --host 127.0.0.1 --port 0 --metrics_port 0 --model_dir "$T/model" >"$T/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q 'metrics on port' "$T/server.log" && break; sleep 0.1; done
GRPC_PORT=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$T/server.log")
METRICS_PORT=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$T/server.log")
[[ -n "$GRPC_PORT" && -n "$METRICS_PORT" ]] || { cat "$T/server.log"; die "mmfuse-server did not start"; }
echo "mmfuse-server: grpc 127.0.0.1:$GRPC_PORT, metrics 127.0.0.1:$METRICS_PORT"

cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/rules/*.yml
scrape_configs:
  - job_name: mmfuse
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
EOF
start_prometheus "$T/prometheus.yml"

# Load: a few requests per second over varied samples and budgets, and now
# and then an invalid one (priority beyond the model's levels) so the
# rejected/error series exist. Runs until the checks finish.
(
  i=0
  budgets=(balanced fast accurate)
  while :; do
    if ((i % 5 == 4)); then
      "$BIN/mmfuse" classify --server "127.0.0.1:$GRPC_PORT" --priority 99 >/dev/null 2>&1 || true
    else
      "$BIN/mmfuse" classify --server "127.0.0.1:$GRPC_PORT" --data "$T/load.mmds" --index $((i % 40)) \
        --budget "${budgets[i % 3]}" >/dev/null 2>&1 || true
    fi
    i=$((i + 1))
  done
) &
PIDS+=($!)

"$BIN/mmfuse" health --server "127.0.0.1:$GRPC_PORT" >/dev/null || die "mmfuse health: server not SERVING"

cd "$ROOT"
node tools/deploy/check_queries.mjs --prometheus "http://127.0.0.1:$PROM_PORT" \
  --exported "$EXPORTED" --planned "$PLANNED" --known-empty "$KNOWN_EMPTY" --wait 50 ||
  { echo "--- server log"; tail -5 "$T/server.log"; echo "--- prometheus log"; tail -5 "$T/prometheus.log"; die "query checks failed"; }

# Negative control: a panel on a misspelt metric and one that does not parse
# must fail the same checks.
cat >"$T/broken.json" <<'JSON'
{"panels": [
  {"id": 1, "title": "typo", "targets": [{"refId": "A", "expr": "sum(rate(mmfuse_request_total[$__rate_interval]))"}]},
  {"id": 2, "title": "syntax", "targets": [{"refId": "A", "expr": "sum by (code (mmfuse_requests_total)"}]}
], "templating": {"list": []}}
JSON
if node tools/deploy/check_queries.mjs --prometheus "http://127.0.0.1:$PROM_PORT" --dashboards "$T/broken.json" \
     --exported "$EXPORTED" --planned "$PLANNED" --known-empty "$KNOWN_EMPTY" --wait 0 >"$T/broken.out" 2>&1; then
  cat "$T/broken.out"; die "check_queries.mjs accepted broken panels"
fi
grep -q 'FAIL panel "typo" A: returned no data' "$T/broken.out" &&
  grep -q 'FAIL panel "syntax" A: does not parse' "$T/broken.out" ||
  { cat "$T/broken.out"; die "broken panels: expected a no-data and a parse failure"; }
echo "PASS"
