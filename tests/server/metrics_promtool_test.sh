#!/usr/bin/env bash
# `promtool check metrics` (Prometheus' own exposition parser and linter)
# accepts mmfuse-server's /metrics after traffic of every kind: valid and
# invalid Classify calls, valid and bad StreamFeatures calls.
#
#   tests/server/metrics_promtool_test.sh <build dir>
source "$(dirname "$0")/metrics_lib.sh"
setup "$@"
ensure_commands promtool:prometheus curl:curl flock:util-linux python3:python3
start_server
workload 3 2 2 1

curl -sf "http://$METRICS/metrics" >"$T/metrics.txt" || die "GET http://$METRICS/metrics failed"
# Every family the server exports after this traffic (mmfuse_padding_ratio,
# mmfuse_modality_skipped_total, mmfuse_gflops_saved_total and
# mmfuse_gate_load_bias only get series once ServedModel records them).
for name in mmfuse_requests_total mmfuse_rejected_total mmfuse_branch_selected_total \
            mmfuse_gflops_total mmfuse_request_duration_seconds_bucket mmfuse_queue_duration_seconds_bucket \
            mmfuse_compute_duration_seconds_bucket mmfuse_batch_size_bucket mmfuse_model_loaded \
            mmfuse_inflight_requests mmfuse_feature_streams_open mmfuse_undelivered_responses_total \
            mmfuse_build_info mmfuse_queue_depth \
            mmfuse_queue_capacity process_cpu_seconds_total process_resident_memory_bytes \
            process_virtual_memory_bytes process_threads process_open_fds process_start_time_seconds; do
  grep -q "^$name[{ ]" "$T/metrics.txt" || { cat "$T/metrics.txt"; die "/metrics has no $name sample"; }
done
if ! promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1; then
  cat "$T/promtool.out"
  die "promtool check metrics rejected /metrics"
fi
cat "$T/promtool.out"
echo "PASS"
