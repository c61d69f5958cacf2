#!/usr/bin/env bash
# Fetches, on this (Debian 12) machine, the Debian packages the GPU machine
# needs to build mmfuse: gRPC, protobuf (with protoc and the gRPC plugin),
# Abseil, prometheus-cpp, cpp-httplib, GoogleTest and their library
# dependencies, into an ignored folder that travels with the device call
# (`run` with carry: [".gpu-deps"]). The GPU machine reaches no package
# registry; LibTorch there is its PyTorch's own (CUDA). docs/GPU.md.
#
#   scripts/gpu/fetch_deps.sh [out dir, default .gpu-deps]
#
# Left out: what every Linux image has (the C and C++ runtimes) and the
# media libraries (the GPU build is -DMMFUSE_WITH_MEDIA=OFF).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-.gpu-deps}
ROOTS=(libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
       libabsl-dev prometheus-cpp-dev libcpp-httplib-dev libgtest-dev libgmock-dev
       nlohmann-json3-dev pkgconf libtcmalloc-minimal4)
# The C/C++ runtime and libc's headers: the GPU machine's own are newer.
SKIP='^(libc6|libc6-dev|libc-dev-bin|linux-libc-dev|libgcc-s1|gcc-12-base|libstdc\+\+6|libcrypt1|libcrypt-dev|rpcsvc-proto|libnsl-dev|libnsl2|libtirpc-common|libtirpc-dev|libtirpc3)$'

command -v apt-get >/dev/null || { echo "fetch_deps: needs apt-get (a Debian 12 machine)" >&2; exit 1; }
mkdir -p "$OUT/debs"
packages=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${ROOTS[@]}" | grep -v '^ ' | grep -v '^<' | sort -u | grep -vE "$SKIP")
rm -f "$OUT"/debs/*.deb
(cd "$OUT/debs" && apt-get download $packages >/dev/null) ||
  { echo "fetch_deps: apt-get download failed (offline?)" >&2; exit 1; }
echo "$packages" >"$OUT/packages.txt"
echo "fetch_deps: $(ls "$OUT"/debs/*.deb | wc -l) packages, $(du -sh "$OUT/debs" | cut -f1), in $OUT/debs"
