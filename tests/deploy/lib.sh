# Shared helpers of the deploy tests (sourced). They install what they need
# when it is missing (Debian packages as root or through passwordless sudo,
# npm packages with `npm ci`) and fail, never skip, when they cannot.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS="$ROOT/tools/deploy"

source "$ROOT/tests/testing/shell_lib.sh"

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
