#!/usr/bin/env bash
# A real Prometheus (Debian package) on loopback scrapes a running
# mmfuse-server every second while the test sends a known workload; PromQL
# through Prometheus' HTTP API (/api/v1/query) must return exactly the
# counts that workload implies: requests by code, rejections, branches,
# feature streams, and the scrape-time queue and process series.
#
#   tests/server/metrics_prometheus_live_test.sh <build dir>
source "$(dirname "$0")/metrics_lib.sh"
setup "$@"
ensure_commands prometheus:prometheus curl:curl jq:jq flock:util-linux python3:python3
start_server

cat >"$T/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: mmfuse
    static_configs:
      - targets: ["$METRICS"]
YAML
start_prometheus "$T/prometheus.yml"
PROM="http://127.0.0.1:$PROM_PORT"

# query EXPR: the single value of an instant query, or "none".
query() {
  curl -sf --get "$PROM/api/v1/query" --data-urlencode "query=$1" |
    jq -r 'if .status != "success" then "error: \(.error)"
           elif (.data.result | length) == 0 then "none"
           else .data.result[0].value[1] end'
}

# expect EXPR VALUE: waits (up to 60 s, for scrapes) until EXPR == VALUE.
FAILED=0
expect() {
  local expr=$1 want=$2 got _
  for _ in $(seq 120); do
    got=$(query "$expr")
    [[ "$got" == "$want" ]] && { echo "ok   $expr = $got"; return 0; }
    sleep 0.5
  done
  echo "FAIL $expr = $got, want $want" >&2
  FAILED=1
}

# Prometheus must have scraped the server before the workload, so every
# counter's first sample is before its increments.
expect 'up{job="mmfuse"}' 1

N=6 M=4 S=3 B=2
workload $N $M $S $B

expect 'sum(mmfuse_requests_total{code="OK"})' $((N + S))
expect 'sum(mmfuse_requests_total{code="INVALID_ARGUMENT"})' $((M + B))
expect 'sum(mmfuse_requests_total)' $((N + M + S + B))
expect 'sum(mmfuse_rejected_total{reason="invalid"})' $((M + B))
expect 'sum(mmfuse_branch_selected_total)' $((N + S))
expect 'sum(mmfuse_request_duration_seconds_count)' $((N + M + S + B))
# Sequential requests on one worker: one batch each.
expect 'sum(mmfuse_batch_size_count)' $((N + S))
expect 'mmfuse_feature_streams_open' 0
expect 'mmfuse_inflight_requests' 0
# Scrape-time series: nothing waits now; every branch has a depth series.
expect 'sum(mmfuse_queue_depth)' 0
expect 'count(mmfuse_queue_depth) >= bool 1' 1
expect 'max(mmfuse_queue_capacity) > bool 0' 1
expect 'max(mmfuse_model_loaded)' 1
expect 'max(process_start_time_seconds) < bool time()' 1
expect 'max(process_resident_memory_bytes) > bool 1e6' 1
expect 'max(process_threads) > bool 0' 1
expect 'max(process_cpu_seconds_total) > bool 0' 1

if ((FAILED)); then
  echo "--- server log"; tail -5 "$T/server.log"; echo "--- prometheus log"; tail -5 "$T/prometheus.log"
  die "PromQL results do not match the workload"
fi
echo "PASS"
