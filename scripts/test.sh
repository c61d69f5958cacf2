#!/usr/bin/env bash
# Sets up if needed and runs the whole test suite: every GoogleTest and
# end-to-end test through ctest, then the batching tests again under
# ThreadSanitizer (a LibTorch-free build, so it stays quick).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
BUILD_DIR=${MMFUSE_BUILD_DIR:-build}
(cd "$BUILD_DIR" && ctest --output-on-failure -j2)

TSAN_DIR=${BUILD_DIR}-tsan
if [[ ! -f "$TSAN_DIR/build.ninja" ]]; then
  cmake -S . -B "$TSAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMFUSE_WITH_TORCH=OFF \
    -DMMFUSE_SANITIZE=thread >"$TSAN_DIR.configure.log" 2>&1 || {
    cat "$TSAN_DIR.configure.log" >&2; exit 1; }
fi
cmake --build "$TSAN_DIR" -j2 --target batcher_test fake_clock_test load_bias_test | grep -vE '^\[[0-9]+/[0-9]+\] ' || true
test "${PIPESTATUS[0]}" -eq 0 || { echo "test: TSan build failed" >&2; exit 1; }
(cd "$TSAN_DIR" && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  ctest --output-on-failure -j2 -R '^(Batcher|FakeClock|LoadBias)')
