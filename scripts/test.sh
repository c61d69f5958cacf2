#!/usr/bin/env bash
# Sets up if needed and runs the whole test suite, quietly (one line per
# stage; a failing test's output in full):
#   1. every GoogleTest and end-to-end test through ctest (the main build);
#   2. ThreadSanitizer: the batching tests (a LibTorch-free build), then
#      the server's concurrency suites (a LibTorch build) with a triage of
#      TSan's reports (tests/sanitizers/tsan_server.sh);
#   3. ASan+UBSan: every GoogleTest suite (LibTorch build at -O1);
#   4. the fuzz targets, MMFUSE_FUZZ_SECONDS (default 45) each (clang,
#      libFuzzer, LibTorch-free).
# The sanitizer and fuzz builds live next to the main one ($BUILD_DIR-tsan,
# -tsan-server, -asan, -fuzz); docs/FUZZING.md explains them and their
# options.
#
#   MMFUSE_BUILD_DIR=dir      main build directory (default: build)
#   MMFUSE_FUZZ_SECONDS=N     seconds per fuzz target (default 45)
#   MMFUSE_TEST_STAGES="..."  stages to run, of: main tsan tsan_server asan
#                             fuzz (default all; setup runs with main only)
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES=" ${MMFUSE_TEST_STAGES:-main tsan tsan_server asan fuzz} "
wants() { [[ $STAGES == *" $1 "* ]]; }
if wants main; then ./scripts/setup.sh; fi
BUILD_DIR=${MMFUSE_BUILD_DIR:-build}
SUPP=$PWD/tests/sanitizers

# configure DIR cmake-args...: once per build directory.
configure() {
  local dir=$1; shift
  if [[ ! -f "$dir/build.ninja" ]]; then
    cmake -S . -B "$dir" -G Ninja "$@" >"$dir.configure.log" 2>&1 || {
      cat "$dir.configure.log" >&2; echo "test: configuring $dir failed" >&2; exit 1; }
  fi
}

# build DIR targets...: ninja's progress lines and CMake's re-run notes
# dropped, errors kept.
build() {
  local dir=$1; shift
  # Under pipefail the pipeline fails exactly when the build does (the
  # filter never fails).
  if ! cmake --build "$dir" -j "${MMFUSE_JOBS:-2}" --target "$@" |
      { grep -vE '^\[[0-9]+/[0-9]+\] |^-- |^Re-running CMake' || true; }; then
    echo "test: building $dir failed" >&2; exit 1
  fi
}

# run_ctest DIR ctest-args...: passing tests' lines dropped.
run_ctest() {
  local dir=$1; shift
  if ! (cd "$dir" && ctest --output-on-failure -j2 "$@") |
      { grep -vE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* +Passed +[0-9.]+ sec$|^ +Start +[0-9]+: |^Test project |^Label Time Summary:|^[A-Za-z0-9_]+ += +[0-9.]+ sec\*proc|^$' || true; }; then
    echo "test: tests in $dir failed" >&2; exit 1
  fi
}

stage() { echo "test: $1 ($((SECONDS - stage_start)) s)"; stage_start=$SECONDS; }
stage_start=$SECONDS

if wants main; then
  run_ctest "$BUILD_DIR"
  stage "main suite passed"
fi

if wants tsan; then
  # ThreadSanitizer: LibTorch-free, so it stays quick: the batcher and the
  # feature streams' timer and assembler (docs/FUZZING.md says why the
  # LibTorch-linked server tests do not run under TSan).
  TSAN_DIR=${BUILD_DIR}-tsan
  configure "$TSAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMMFUSE_WITH_TORCH=OFF -DMMFUSE_SANITIZE=thread
  build "$TSAN_DIR" batcher_test fake_clock_test load_bias_test stream_timer_test \
    feature_assembler_test
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$SUPP/tsan.supp" \
    run_ctest "$TSAN_DIR" -R '^(Batcher|FakeClock|LoadBias|StreamTimer|FeatureAssembler)'
  stage "TSan batching and stream tests passed"
fi

if wants tsan_server; then
  # ThreadSanitizer over the LibTorch-linked server suites; a report fails
  # the stage unless one of its two accesses is gRPC's, Abseil's,
  # protobuf's or LibTorch's own (uninstrumented) code (docs/FUZZING.md,
  # "TSan build").
  if ! bash tests/sanitizers/tsan_server.sh "${BUILD_DIR}-tsan-server"; then
    echo "test: TSan server suites failed" >&2; exit 1
  fi
  stage "TSan server suites passed"
fi

if wants asan; then
  # ASan+UBSan: every GoogleTest binary at -O1, each as one ctest (a
  # LibTorch process starts in about 2.5 s under ASan). The shell tests
  # (deploy_*, server_metrics_promtool/_prometheus_live, E2E.*) are left out:
  # they drive release binaries and deployment files, not code ASan could
  # instrument; so are AVD10.* and the bench_* tests (the peer's parity, the
  # ONNX export), which retrain or rerun at ASan's speed what model_test and
  # Featurize.* already cover under it (AVD10.SmallSlice alone took 438 s
  # here), and drive binaries this build does not make.
  ASAN_DIR=${BUILD_DIR}-asan
  configure "$ASAN_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DMMFUSE_SANITIZE=address -DMMFUSE_CTEST_PER_BINARY=ON
  (
    # quarantine_size_mb=16 (default 256): freed memory ASan holds back counts
    # in RSS, and OverloadTest bounds the server's RSS growth.
    export ASAN_OPTIONS="detect_leaks=1 check_initialization_order=1 strict_init_order=1 detect_stack_use_after_return=1 quarantine_size_mb=16"
    export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp print_suppressions=0"
    export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1 suppressions=$SUPP/ubsan.supp"
    build "$ASAN_DIR" mmfuse_tests
    run_ctest "$ASAN_DIR" -E '^(deploy_|server_metrics_(promtool|prometheus_live)$|E2E\.|AVD10\.|bench_(peer_parity|onnx_export)$)'
  )
  stage "ASan+UBSan suite passed"
fi

if wants fuzz; then
  # Fuzzing: each target for MMFUSE_FUZZ_SECONDS from the generated seeds and
  # the corpus earlier runs left in $BUILD_DIR-fuzz/fuzz/corpus.
  FUZZ_DIR=${BUILD_DIR}-fuzz
  CC=clang CXX=clang++ configure "$FUZZ_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMMFUSE_WITH_TORCH=OFF -DMMFUSE_FUZZ=ON
  build "$FUZZ_DIR" request_fuzzer stream_fuzzer config_fuzzer dataset_fuzzer fuzz_seed_gen
  rm -f "$FUZZ_DIR"/fuzz/logs/*.summary
  run_ctest "$FUZZ_DIR" -L fuzz
  cat "$FUZZ_DIR"/fuzz/logs/*.summary
  stage "fuzz targets passed"
fi
