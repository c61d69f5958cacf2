#!/usr/bin/env bash
# Installs what mmfuse needs to build and test (Debian 12 packages), then
# configures and builds into build/. Idempotent and quiet: a second run only
# rebuilds what changed.
#
#   ./scripts/setup.sh            install if needed, build
#   MMFUSE_BUILD_DIR=dir ...      build elsewhere (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev
  libtorch-dev libopenblas0-pthread libtcmalloc-minimal4
  prometheus-cpp-dev libcpp-httplib-dev
  libsndfile1-dev libsamplerate0-dev libfftw3-dev libpng-dev libjpeg-dev
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev nlohmann-json3-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3-soundfile
  curl procps openssl
  python3-torch python3-grpcio python3-protobuf python3-numpy python3-matplotlib jq
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then SUDO=(sudo); else
      echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${SUDO[@]}" apt-get update -qq >/tmp/mmfuse-apt.log 2>&1 ||
     ! "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/mmfuse-apt.log 2>&1; then
    still=()
    for p in "${missing[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || still+=("$p")
    done
    echo "setup: could not install: ${still[*]:-?} (apt log: /tmp/mmfuse-apt.log)" >&2
    tail -5 /tmp/mmfuse-apt.log >&2
    exit 1
  fi
fi

BUILD_DIR=${MMFUSE_BUILD_DIR:-build}
if [[ ! -f "$BUILD_DIR/build.ninja" ]]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >"$BUILD_DIR.configure.log" 2>&1 || {
    cat "$BUILD_DIR.configure.log" >&2; echo "setup: cmake configure failed" >&2; exit 1; }
fi
# Two jobs: a LibTorch translation unit takes ~1 GiB and ~20 s; more jobs
# only thrash on the 2-core machines we target.
# Under pipefail the pipeline fails exactly when the build does.
if ! cmake --build "$BUILD_DIR" -j "${MMFUSE_JOBS:-2}" | { grep -vE '^\[[0-9]+/[0-9]+\] ' || true; }; then
  echo "setup: build failed" >&2; exit 1
fi
