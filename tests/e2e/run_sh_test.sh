#!/usr/bin/env bash
# The README's first command, as a new user runs it: ./scripts/run.sh sets up,
# creates the default model package if missing and serves; the CLI gets an
# answer; the default model scores well above chance on held-out data; SIGTERM
# stops the server cleanly (exit 0).
#
#   tests/e2e/run_sh_test.sh <build dir>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:?build dir}" && pwd)
cd "$ROOT"
export MMFUSE_BUILD_DIR="$BUILD"
PORT=${MMFUSE_E2E_PORT:-50151}
METRICS_PORT=${MMFUSE_E2E_METRICS_PORT:-9564}
LOG=$(mktemp)
cleanup() { [[ -n "${PID:-}" ]] && kill -9 "$PID" 2>/dev/null || true; rm -f "$LOG"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- run.sh output:" >&2; cat "$LOG" >&2; exit 1; }

./scripts/run.sh --port "$PORT" --metrics_port "$METRICS_PORT" >"$LOG" 2>&1 &
PID=$!

# Setup and training of a missing default package take a minute or two.
for _ in $(seq 1 600); do
  "$BUILD/bin/mmfuse" health --server "127.0.0.1:$PORT" --timeout_ms 1000 >/dev/null 2>&1 && break
  kill -0 "$PID" 2>/dev/null || fail "run.sh exited before serving"
  sleep 0.5
done
[[ $("$BUILD/bin/mmfuse" health --server "127.0.0.1:$PORT") == SERVING ]] || fail "not SERVING"

out=$("$BUILD/bin/mmfuse" classify --server "127.0.0.1:$PORT" --label 3 --top_k 3) || fail "classify failed"
echo "$out"
grep -q "branch full" <<<"$out" || fail "classify printed no branch"
grep -q "server time" <<<"$out" || fail "classify printed no timings"

json=$("$BUILD/bin/mmfuse" classify --server "127.0.0.1:$PORT" --data datasets/test.mmds --index 7 --json)
grep -q '"request_id":"1-7"' <<<"$json" || fail "classify --data did not send sample 1-7: $json"

# Into a variable first: `curl | grep -q` under pipefail fails when grep
# quits at the match and curl is still writing (SIGPIPE).
metrics=$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics") || fail "no /metrics"
grep -q 'mmfuse_requests_total{code="OK",model="default",protocol="mmfuse"} 2' <<<"$metrics" ||
  fail "metrics do not count the two requests"

eval_json=$("$BUILD/bin/mmfuse" eval --model_dir models/default --data datasets/test.mmds --json)
echo "default model on held-out data: $eval_json"
accuracy=$(sed -E 's/.*"accuracy": ([0-9.]+).*/\1/' <<<"$eval_json")
# Ten classes: chance is 0.10.
awk -v a="$accuracy" 'BEGIN { exit !(a > 0.6) }' || fail "default model accuracy $accuracy <= 0.6"

kill -TERM "$PID"
status=0
wait "$PID" || status=$?
PID=
[[ $status -eq 0 ]] || fail "server exited with $status after SIGTERM"
grep -q "stopped; requests accepted=2 answered=2 ok=2 undelivered=0" "$LOG" || fail "server did not report a clean drain"
echo "PASS"
