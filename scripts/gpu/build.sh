#!/usr/bin/env bash
# Builds mmfuse on the GPU machine (docs/GPU.md): unpacks the Debian packages
# that scripts/gpu/fetch_deps.sh fetched (carried as .gpu-deps) into a
# prefix and configures against them and the machine's CUDA LibTorch (its
# PyTorch's, found through python3). Prints the environment line that the
# built binaries need (LD_LIBRARY_PATH) into $BUILD/env.sh.
#
#   scripts/gpu/build.sh [targets...]     (default: the server, the CLI, the
#                                          benchmarks and the GPU tests)
#
# Environment: MMFUSE_GPU_DEPS (.gpu-deps), MMFUSE_GPU_PREFIX
# (/tmp/mmfuse-deps), MMFUSE_BUILD_DIR (build-gpu), TORCH_PREFIX (the CMake
# prefix of LibTorch; default python3's torch.utils.cmake_prefix_path),
# MMFUSE_JOBS (all cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEPS=${MMFUSE_GPU_DEPS:-.gpu-deps}
PREFIX=${MMFUSE_GPU_PREFIX:-/tmp/mmfuse-deps}
BUILD=${MMFUSE_BUILD_DIR:-build-gpu}
TARGETS=("$@")
[[ ${#TARGETS[@]} -gt 0 ]] || TARGETS=(mmfuse-server mmfuse mmfuse-bench raw_model_bench model_test gpu_metrics_test)

ls "$DEPS"/debs/*.deb >/dev/null 2>&1 ||
  { echo "build: no packages in $DEPS/debs (run scripts/gpu/fetch_deps.sh first, carry .gpu-deps)" >&2; exit 1; }
if [[ ! -f "$PREFIX/.complete" ]]; then
  python3 scripts/gpu/unpack_debs.py "$PREFIX" "$DEPS"/debs/*.deb
  touch "$PREFIX/.complete"
fi
TORCH_PREFIX=${TORCH_PREFIX:-$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')}
ARCH_LIB=$PREFIX/usr/lib/x86_64-linux-gnu
# protoc and grpc_cpp_plugin run during the build and need the prefix's
# libraries; so do the binaries afterwards.
export LD_LIBRARY_PATH=$ARCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$ARCH_LIB/pkgconfig:$PREFIX/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$PREFIX
mkdir -p "$BUILD"
echo "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >"$BUILD/env.sh"

if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMMFUSE_WITH_MEDIA=OFF \
    -DCMAKE_PREFIX_PATH="$PREFIX/usr;$ARCH_LIB/cmake;$TORCH_PREFIX" \
    -DPKG_CONFIG_EXECUTABLE="$PREFIX/usr/bin/pkgconf" \
    -DProtobuf_PROTOC_EXECUTABLE="$PREFIX/usr/bin/protoc" \
    -DProtobuf_INCLUDE_DIR="$PREFIX/usr/include" \
    -DProtobuf_LIBRARY="$ARCH_LIB/libprotobuf.so" \
    -DMMFUSE_GRPC_PROTO_DIR="$PREFIX/usr/share/grpc-proto" \
    -DGTest_DIR="$ARCH_LIB/cmake/GTest" \
    >"$BUILD.configure.log" 2>&1 || { tail -40 "$BUILD.configure.log" >&2; echo "build: configure failed" >&2; exit 1; }
fi
cmake --build "$BUILD" -j "${MMFUSE_JOBS:-$(nproc)}" --target "${TARGETS[@]}"
echo "build: done in $BUILD; source $BUILD/env.sh before running its binaries"
