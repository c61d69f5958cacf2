# Helpers shared by the shell tests (sourced): failing, installing missing
# Debian packages, free ports, a Prometheus on loopback. They install what
# they need when they can (root or passwordless sudo) and fail, never skip,
# when they cannot.

die() { echo "FAIL: $*" >&2; exit 1; }

# ensure_commands cmd:package ...  installs the Debian package of each
# missing command.
ensure_commands() {
  local missing=() spec
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || missing+=("${spec#*:}")
  done
  ((${#missing[@]})) || return 0
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    sudo -n true 2>/dev/null || die "need Debian packages ${missing[*]} and cannot install them (not root, no passwordless sudo): run  sudo apt-get install ${missing[*]}"
    sudo=(sudo -n)
  fi
  echo "installing Debian packages: ${missing[*]}"
  local log=${TMPDIR:-/tmp}/mmfuse-test-apt.$$.log
  # One apt at a time when ctest runs tests in parallel.
  if ! (flock 9
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}") \
       9>"${TMPDIR:-/tmp}/mmfuse-test-apt.lock" >"$log" 2>&1; then
    tail -5 "$log" >&2
    die "apt-get install ${missing[*]} failed (log: $log)"
  fi
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || die "${spec%%:*} still missing after installing ${spec#*:}"
  done
}

# free_port: a TCP port nobody listens on now (needs python3).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_prometheus CONFIG: Prometheus (needs prometheus and curl) with
# CONFIG on a free loopback port, data and log under $T, its pid appended to
# PIDS; returns once it is ready and sets PROM_PORT.
start_prometheus() {
  PROM_PORT=$(free_port)
  prometheus --config.file="$1" --storage.tsdb.path="$T/tsdb" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$T/prometheus.log" 2>&1 &
  PIDS+=($!)
  local _
  for _ in $(seq 150); do
    curl -sf "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null && { echo "prometheus: 127.0.0.1:$PROM_PORT"; return 0; }
    sleep 0.2
  done
  cat "$T/prometheus.log"
  die "prometheus did not start"
}
