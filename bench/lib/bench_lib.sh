# Shell helpers of bench/make_benchmarks.sh (sourced): servers on loopback,
# the commands behind every figure, JSON look-ups. Expects BIN (the build's
# bin/), PY (python with torch and grpcio), RAW (the raw results folder) and
# an array PIDS, and a `cleanup` trap of the caller stopping what is in it.

log() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# free_port: a TCP port on loopback nobody listens on now.
free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# record KEY CMD...: notes the command that makes figure KEY (shown beside
# the figure), then runs it with stdout to $RAW/KEY.out.
record() {
  local key=$1
  shift
  printf '%s\t%s\n' "$key" "$*" >>"$RAW/commands.tsv"
  "$@" >"$RAW/$key.out" 2>"$RAW/$key.err" || {
    local rc=$?
    log "$key failed (exit $rc): $(tail -3 "$RAW/$key.err")"
    return "$rc"
  }
}

# bench KEY ADDRESS DATA ARGS...: one mmfuse-bench run (JSON) into $RAW/KEY.out.
bench() {
  local key=$1 address=$2 data=$3
  shift 3
  record "$key" "$BIN/mmfuse-bench" --server "$address" --data "$data" --progress=false --json \
    --duration "$DURATION" --warmup "$WARMUP" "$@"
}

# json FILE EXPRESSION: a value from a JSON file, via jq.
json() { jq -r "$2" "$1"; }

# wait_serving ADDRESS PID WHAT: until GetModelInfo answers (120 s at most).
wait_serving() {
  local _
  for _ in $(seq 1 600); do
    "$BIN/mmfuse" info --server "$1" >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited before serving (log: $RAW/$3.log)"
    sleep 0.2
  done
  die "$3 did not serve within 120 s (log: $RAW/$3.log)"
}

# start_server NAME MODEL_DIR FLAGS...: mmfuse-server on loopback; sets
# SERVER_ADDR, SERVER_PID and METRICS_ADDR.
start_server() {
  local name=$1 model=$2 port metrics
  shift 2
  port=$(free_port)
  metrics=$(free_port)
  printf '%s\t%s\n' "$name" "$BIN/mmfuse-server --host 127.0.0.1 --port $port --metrics_port $metrics --model_dir $model${*:+ $*}" >>"$RAW/commands.tsv"
  "$BIN/mmfuse-server" --host 127.0.0.1 --port "$port" --metrics_port "$metrics" --model_dir "$model" \
    "$@" >"$RAW/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  SERVER_ADDR=127.0.0.1:$port
  METRICS_ADDR=127.0.0.1:$metrics
  wait_serving "$SERVER_ADDR" "$SERVER_PID" "$name"
}

# start_peer NAME MODEL_DIR FLAGS...: the Python peer on loopback; sets
# PEER_ADDR and PEER_PID.
start_peer() {
  local name=$1 model=$2 port
  shift 2
  port=$(free_port)
  printf '%s\t%s\n' "$name" "$PY bench/peer/peer_server.py --model_dir $model --host 127.0.0.1 --port $port${*:+ $*}" >>"$RAW/commands.tsv"
  "$PY" bench/peer/peer_server.py --model_dir "$model" --host 127.0.0.1 --port "$port" "$@" \
    >"$RAW/$name.log" 2>&1 &
  PEER_PID=$!
  PIDS+=("$PEER_PID")
  PEER_ADDR=127.0.0.1:$port
  wait_serving "$PEER_ADDR" "$PEER_PID" "$name"
}

# stop PID: SIGTERM, then wait for it.
stop() {
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# metrics_snapshot ADDRESS: total GFLOPs and OK requests counted by a server.
metrics_snapshot() {
  curl -sf "http://$1/metrics" | awk '
    /^mmfuse_gflops_total/ { g += $NF }
    /^mmfuse_requests_total/ && /code="OK"/ { r += $NF }
    END { printf "{\"gflops_total\": %.6f, \"ok_requests\": %d}\n", g, r }'
}
