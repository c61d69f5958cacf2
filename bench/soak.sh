#!/usr/bin/env bash
# Soak: mmfuse-server on the default package under steady open-loop load at
# 70% of its measured saturation rate for a long time (default 10 minutes),
# watching for drift: RSS sampled every few seconds, errors, and latency
# p50/p99 per minute. Stops by itself (the load generator has a fixed
# duration under a hard time limit) and stops the server on any exit.
#
#   bench/soak.sh [--duration 10m] [--step 60s] [--load 0.7] [--workers 2]
#                 [--rss_every 5] [--out DIR]
#
# --duration   total measured load (Go-style duration: 90s, 10m).
# --step       one latency row per step (default one minute).
# --load       fraction of the saturation rate offered.
# --out        where soak.md (the tables), bench.csv, rss.csv and server.log
#              go; default /tmp/mmfuse-soak-<UTC time>.
# Environment: MMFUSE_BUILD_DIR (default build), MODEL_DIR (default
# models/default, made by scripts/make_default_model.sh if missing), PORT.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10m
STEP=60s
LOAD=0.7
WORKERS=2
RSS_EVERY=5
OUT=/tmp/mmfuse-soak-$(date -u +%Y%m%dT%H%M%SZ)
while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=$2; shift 2 ;;
    --step) STEP=$2; shift 2 ;;
    --load) LOAD=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rss_every) RSS_EVERY=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

BIN=${MMFUSE_BUILD_DIR:-build}/bin
MODEL_DIR=${MODEL_DIR:-models/default}
PORT=${PORT:-50291}
DATA=${MMFUSE_DATA_DIR:-datasets}/test.mmds

# Go-style duration ("90s", "10m", "1m30s") in whole seconds.
seconds() {
  local d=$1 total=0 n unit
  while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  [[ -z $d && $total -gt 0 ]] || { echo "soak.sh: bad duration $1 (e.g. 90s, 10m)" >&2; exit 2; }
  echo "$total"
}
TOTAL_S=$(seconds "$DURATION")
STEP_S=$(seconds "$STEP")
((STEP_S <= TOTAL_S)) || STEP_S=$TOTAL_S
STEPS=$(((TOTAL_S + STEP_S - 1) / STEP_S))

for tool in mmfuse mmfuse-server mmfuse-bench; do
  [[ -x $BIN/$tool ]] || { echo "soak.sh: $BIN/$tool missing: build it first" >&2; exit 1; }
done
"$BIN/mmfuse" check --model_dir "$MODEL_DIR" >/dev/null 2>&1 ||
  MMFUSE_BUILD_DIR=${MMFUSE_BUILD_DIR:-build} ./scripts/make_default_model.sh "$MODEL_DIR"
DATA_FLAGS=()
[[ -f $DATA ]] && DATA_FLAGS=(--data "$DATA")
mkdir -p "$OUT"

SERVER=""
SAMPLER=""
# SIGTERM, then SIGKILL if the drain takes over a minute.
stop_server() {
  kill -TERM "$SERVER" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
  SERVER=""
}
cleanup() {
  if [[ -n $SAMPLER ]]; then kill "$SAMPLER" 2>/dev/null || true; fi
  if [[ -n $SERVER ]]; then stop_server; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$BIN/mmfuse-server" --host 127.0.0.1 --port "$PORT" --nometrics --model_dir "$MODEL_DIR" \
  --workers "$WORKERS" 2>"$OUT/server.log" &
SERVER=$!
for _ in $(seq 1 150); do
  "$BIN/mmfuse" health --server "127.0.0.1:$PORT" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { cat "$OUT/server.log" >&2; exit 1; }
  sleep 0.2
done

# Every bench run has a hard time limit: the soak always ends.
bench() {  # time limit in seconds, flags...
  local limit=$1
  shift
  timeout -k 10 "$limit" "$BIN/mmfuse-bench" --server "127.0.0.1:$PORT" "${DATA_FLAGS[@]}" --progress=false --csv "$@"
}
# Column of a bench CSV row by header name.
csv_field() {  # file, row (1 = first data row), name
  awk -F, -v row="$2" -v name="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
    NR == row + 1 { print $c }' "$1"
}

echo "soak: measuring the saturation rate (closed loop, 16 in flight, 10 s)" >&2
bench 120 --concurrency 16 --warmup 3s --duration 10s >"$OUT/saturation.csv"
SATURATION=$(csv_field "$OUT/saturation.csv" 1 throughput_rps)
RATE=$(awk -v s="$SATURATION" -v l="$LOAD" 'BEGIN { printf "%d", s * l }')
((RATE >= 1)) || { echo "soak.sh: saturation rate $SATURATION rps is too low" >&2; exit 1; }
echo "soak: saturation $SATURATION rps; offering $RATE rps for ${TOTAL_S}s ($STEPS step(s) of ${STEP_S}s)" >&2

# RSS of the server every RSS_EVERY seconds.
START=$(date +%s)
(
  echo "elapsed_s,rss_kib"
  while kill -0 "$SERVER" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER/status" 2>/dev/null || true)
    [[ -n $rss ]] && echo "$(($(date +%s) - START)),$rss"
    sleep "$RSS_EVERY"
  done
) >"$OUT/rss.csv" &
SAMPLER=$!

RATES=$(printf "$RATE,%.0s" $(seq 1 "$STEPS"))
bench $((TOTAL_S + 10 * STEPS + 120)) --rate "${RATES%,}" --duration "${STEP_S}s" >"$OUT/bench.csv"
END=$(date +%s)
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=""
stop_server

# The tables.
{
  echo "# mmfuse soak"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $WORKERS workers, package $MODEL_DIR;"
  echo "saturation $SATURATION rps (closed loop, 16 in flight); offered $RATE rps (${LOAD} x) open loop"
  echo "for ${TOTAL_S}s in $STEPS step(s) of ${STEP_S}s; wall time $((END - START))s."
  echo "Server at exit: $(sed -n 's/.*stopped; requests //p' "$OUT/server.log")"
  echo
  echo "## Latency and errors per step"
  echo
  echo "| step | until s | sent | ok | errors | unsent | late | p50 us | p99 us | max us | error codes |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  awk -F, -v step="$STEP_S" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { printf "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $c["step"], $c["step"] * step,
        $c["sent"], $c["ok"], $c["errors"], $c["unsent"], $c["late"], $c["p50_us"], $c["p99_us"],
        $c["max_us"], $c["error_codes"] }' "$OUT/bench.csv"
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { sent += $c["sent"]; errors += $c["errors"] + $c["unsent"]
      if (NR == 2) p50 = $c["p50_us"]; last50 = $c["p50_us"]; if (NR == 2) p99 = $c["p99_us"]; last99 = $c["p99_us"] }
    END { printf "\nTotal: %d sent, %d errors or unsent. p50 first -> last step: %s -> %s us; p99: %s -> %s us.\n",
      sent, errors, p50, last50, p99, last99 }' "$OUT/bench.csv"
  echo
  echo "## Server RSS (every ${RSS_EVERY}s; one row per ${STEP_S}s shown, all in rss.csv)"
  echo
  echo "| elapsed s | RSS MiB |"
  echo "|---:|---:|"
  awk -F, -v step="$STEP_S" 'NR == 1 { next }
    { if (NR == 2 || $1 >= next_row) { printf "| %d | %.1f |\n", $1, $2 / 1024; next_row = (int($1 / step) + 1) * step }
      last = $0 }
    END { split(last, f, ","); printf "| %d (last) | %.1f |\n", f[1], f[2] / 1024 }' "$OUT/rss.csv"
  awk -F, 'NR == 1 { next } NR == 2 { first = $2; min = $2; max = $2 }
    { if ($2 < min) min = $2; if ($2 > max) max = $2; last = $2 }
    END { printf "\nRSS first %.1f MiB, last %.1f MiB (%+.1f), min %.1f, max %.1f.\n",
      first / 1024, last / 1024, (last - first) / 1024, min / 1024, max / 1024 }' "$OUT/rss.csv"
} >"$OUT/soak.md"
cat "$OUT/soak.md"
echo
echo "soak: tables in $OUT/soak.md; raw data in $OUT (bench.csv, rss.csv, server.log)" >&2
