#!/usr/bin/env bash
# Sets up if needed, creates the default model package if missing, and runs
# mmfuse-server in the foreground on 127.0.0.1:50051 (metrics on 9464).
# Ctrl-C (or SIGTERM) drains and stops it. Extra flags go to mmfuse-server.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BIN=${MMFUSE_BUILD_DIR:-build}/bin
if [[ ! -f models/default/config.pbtxt ]]; then
  echo "run: creating the default model package (models/default)"
  ./scripts/make_default_model.sh models/default
elif ! "$BIN/mmfuse" check --model_dir models/default >/dev/null 2>&1; then
  # A package from an older architecture: remake it rather than fail.
  echo "run: models/default does not load with this build; recreating it"
  ./scripts/make_default_model.sh models/default
fi
exec "$BIN/mmfuse-server" --host 127.0.0.1 --port 50051 \
  --metrics_port 9464 --model_dir models/default "$@"
