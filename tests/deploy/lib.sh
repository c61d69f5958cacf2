# Shared helpers of the deploy tests (sourced). They install what they need
# when it is missing (Debian packages as root or through passwordless sudo,
# npm packages with `npm ci`) and fail, never skip, when they cannot.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="$ROOT/tools/deploy"

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
  local log=${TMPDIR:-/tmp}/mmfuse-deploy-apt.$$.log
  # One apt at a time when ctest runs tests in parallel.
  if ! (flock 9
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}") \
       9>"${TMPDIR:-/tmp}/mmfuse-deploy-apt.lock" >"$log" 2>&1; then
    tail -5 "$log" >&2
    die "apt-get install ${missing[*]} failed (log: $log)"
  fi
  for spec in "$@"; do
    command -v "${spec%%:*}" >/dev/null 2>&1 || die "${spec%%:*} still missing after installing ${spec#*:}"
  done
}

# ensure_node_modules: Node.js >= 18 and tools/deploy/node_modules as pinned
# by its package-lock.json.
ensure_node_modules() {
  ensure_commands node:nodejs npm:npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  ((major >= 18)) || die "Node.js >= 18 needed, found $(node --version)"
  (
    flock 9
    if [[ ! -f "$TOOLS/node_modules/.package-lock.json" ||
          "$TOOLS/package-lock.json" -nt "$TOOLS/node_modules/.package-lock.json" ]]; then
      echo "npm ci in tools/deploy"
      (cd "$TOOLS" && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
        die "npm ci in tools/deploy failed (needs network access to the npm registry)"
    fi
  ) 9>"${TMPDIR:-/tmp}/mmfuse-deploy-npm.lock"
}

# free_port: a TCP port nobody listens on now.
free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
