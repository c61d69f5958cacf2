#!/usr/bin/env bash
# Sets up if needed, creates the default model package if missing, and runs
# mmfuse-server in the foreground on 127.0.0.1:50051 (metrics on 9464).
# Ctrl-C (or SIGTERM) drains and stops it. Extra flags go to mmfuse-server.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [[ ! -f models/default/config.pbtxt ]]; then
  echo "run: creating the default model package (models/default)"
  ./scripts/make_default_model.sh models/default
fi
exec "${MMFUSE_BUILD_DIR:-build}/bin/mmfuse-server" --host 127.0.0.1 --port 50051 \
  --metrics_port 9464 --model_dir models/default "$@"
