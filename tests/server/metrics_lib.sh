# Shared helpers of the metrics shell tests (sourced): tools, a quickly
# trained model package, an mmfuse-server on free loopback ports, cleanup.
# Shared helpers (die, ensure_commands, free_port, start_prometheus) come
# from tests/testing/shell_lib.sh.

set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../testing/shell_lib.sh"

# setup <build dir>: sets BIN, TOOLS, T (temporary dir) and the cleanup trap.
PIDS=()
setup() {
  BUILD=${1:?usage: $0 <build dir>}
  BIN="$BUILD/bin"
  TOOLS="$BUILD/tests"
  [[ -x "$BIN/mmfuse-server" && -x "$BIN/mmfuse" && -x "$TOOLS/feature_stream_client" ]] ||
    die "build $BIN/mmfuse-server, $BIN/mmfuse and $TOOLS/feature_stream_client first"
  T=$(mktemp -d "${TMPDIR:-/tmp}/mmfuse-metrics.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do wait "${PIDS[i]}" 2>/dev/null || true; done
  rm -rf "$T"
}

# start_server: trains a small package (seconds) and starts mmfuse-server on
# free ports; sets GRPC and METRICS (host:port).
start_server() {
  "$BIN/mmfuse" datagen --out "$T/train.mmds" --examples 300 >"$T/datagen.log" 2>&1 ||
    { cat "$T/datagen.log"; die "datagen failed"; }
  "$BIN/mmfuse" train --data "$T/train.mmds" --out "$T/model" --epochs 1 >"$T/train.log" 2>&1 ||
    { cat "$T/train.log"; die "train failed"; }
  "$BIN/mmfuse-server" --host 127.0.0.1 --port 0 --metrics_port 0 --model_dir "$T/model" \
    --workers 1 >"$T/server.log" 2>&1 &
  PIDS+=($!)
  local _
  for _ in $(seq 300); do grep -q 'metrics on port' "$T/server.log" && break; sleep 0.1; done
  local grpc_port metrics_port
  grpc_port=$(sed -n 's/.* on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$T/server.log")
  metrics_port=$(sed -n 's/.*metrics on port \([0-9]*\).*/\1/p' "$T/server.log")
  [[ -n "$grpc_port" && -n "$metrics_port" ]] || { cat "$T/server.log"; die "mmfuse-server did not start"; }
  GRPC="127.0.0.1:$grpc_port"
  METRICS="127.0.0.1:$metrics_port"
  echo "mmfuse-server: grpc $GRPC, metrics $METRICS"
}

# workload N M S B: N valid and M invalid Classify calls (priority beyond the
# model's levels), S valid and B bad (gap at chunk 1) StreamFeatures calls.
workload() {
  local n=$1 m=$2 s=$3 b=$4 i
  for ((i = 0; i < n; i++)); do
    "$BIN/mmfuse" classify --server "$GRPC" --seed $((i + 1)) >/dev/null 2>"$T/classify.err" ||
      { cat "$T/classify.err"; die "valid classify $i failed"; }
  done
  for ((i = 0; i < m; i++)); do
    if "$BIN/mmfuse" classify --server "$GRPC" --priority 99 >/dev/null 2>"$T/classify.err"; then
      die "classify --priority 99 succeeded; expected INVALID_ARGUMENT"
    fi
    grep -q 'priority=99' "$T/classify.err" || { cat "$T/classify.err"; die "invalid classify: unexpected error"; }
  done
  if ((s > 0)); then
    "$TOOLS/feature_stream_client" --server "$GRPC" --streams "$s" >"$T/streams.out" 2>&1 ||
      { cat "$T/streams.out"; die "valid feature streams failed"; }
  fi
  if ((b > 0)); then
    "$TOOLS/feature_stream_client" --server "$GRPC" --streams "$b" --bad >"$T/streams.out" 2>&1 ||
      { cat "$T/streams.out"; die "bad feature streams did not end INVALID_ARGUMENT"; }
  fi
}
