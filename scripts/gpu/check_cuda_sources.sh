#!/usr/bin/env bash
# Compiles (syntax and types, no object kept) the sources that only a CUDA
# LibTorch builds (model/cuda_graphs_cuda.cc) on this CPU-only machine, so a
# change to them is checked before a GPU machine is lent. Debian's LibTorch
# 1.13 ships the ATen/c10 CUDA headers; CUDA's own headers come from
# Debian's nvidia-cuda-dev (non-free, 774 MB; only its headers are
# unpacked, into $CUDA_HEADERS, default /tmp/mmfuse-cuda-headers). Uses the
# main build's compile flags (build/, or MMFUSE_BUILD_DIR).
#
#   scripts/gpu/check_cuda_sources.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${MMFUSE_BUILD_DIR:-build}
HEADERS=${CUDA_HEADERS:-/tmp/mmfuse-cuda-headers}
SOURCES=(model/cuda_graphs_cuda.cc)

if [[ ! -f "$HEADERS/usr/include/cuda_runtime_api.h" ]]; then
  apt_dir=$(mktemp -d)
  trap 'rm -rf "$apt_dir"' EXIT
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  cat >"$apt_dir/non-free.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  apt_opts=(-o Dir::Etc::sourcelist="$apt_dir/non-free.sources" -o Dir::Etc::sourceparts=-
            -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache")
  apt-get "${apt_opts[@]}" update >/dev/null
  (cd "$apt_dir" && apt-get "${apt_opts[@]}" download nvidia-cuda-dev >/dev/null 2>&1)
  mkdir -p "$HEADERS"
  dpkg-deb --fsys-tarfile "$apt_dir"/nvidia-cuda-dev_*.deb | tar -x -C "$HEADERS" --wildcards './usr/include/*'
fi

# The flags of a LibTorch-linked source of the main build, for each source.
template=$(cd "$BUILD" && ninja -t commands model/libmmfuse_model.a | grep -m1 ' -c .*/model/inference\.cc')
status=0
for source in "${SOURCES[@]}"; do
  cmd=${template//model\/inference.cc/$source}
  cmd=$(sed -E 's/ -MD / /; s/ -M[FT] [^ ]+//g; s/ -o [^ ]+/ -o \/dev\/null/' <<<"$cmd")
  # Debian's headers lack LibTorch's generated cuda_cmake_macros.h.
  if (cd "$BUILD" && eval "$cmd -fsyntax-only -Wall -Wextra -isystem $HEADERS/usr/include -DC10_USING_CUSTOM_GENERATED_MACROS"); then
    echo "check_cuda_sources: $source compiles"
  else
    echo "check_cuda_sources: $source does not compile" >&2
    status=1
  fi
done
exit $status
