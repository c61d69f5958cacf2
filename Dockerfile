# syntax=docker/dockerfile:1
#
# mmfuse-server image. Two variants, chosen by the VARIANT build argument:
#
#   cpu (default)  Debian 12's LibTorch 1.13 + OpenBLAS.
#                    docker build -t mmfuse:0.1.0-cpu .
#   cuda           a CUDA LibTorch 2.x you download (the pytorch.org
#                  "libtorch-cxx11-abi-shared-with-deps-<version>+cu124" zip,
#                  unzipped), passed as the named build context "libtorch",
#                  plus NVIDIA's CUDA toolkit (debian12 apt repository) to build.
#                    docker buildx build --build-arg VARIANT=cuda \
#                      --build-context libtorch=/path/to/libtorch -t mmfuse:0.1.0-cuda .
#
# The CUDA variant is NOT tested by the project's checks (no GPU, no Docker
# engine and no NVIDIA downloads there); tests/deploy/dockerfile_test.sh only
# checks the CPU variant's inputs and runtime libraries. The server does not
# select a CUDA device yet either: the cuda image runs LibTorch's CUDA build
# on CPU until it does (docs/DEPLOY.md).
#
# Stages: build-base -> build-cpu | build-cuda -> build (compiles, makes the
# default model package); runtime-base -> runtime-cpu | runtime-cuda ->
# runtime (the image). Needs BuildKit (default since Docker 23), which skips
# the stages the chosen variant does not use.

ARG VARIANT=cpu

# ---- build ---------------------------------------------------------------------

FROM debian:12 AS build-base
ARG DEBIAN_FRONTEND=noninteractive
# scripts/setup.sh's packages, except LibTorch/BLAS (per variant below) and
# the test-only ones (the image builds with MMFUSE_BUILD_TESTS=OFF).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto \
      libabsl-dev libtcmalloc-minimal4 \
      prometheus-cpp-dev libcpp-httplib-dev \
      libsndfile1-dev libsamplerate0-dev libfftw3-dev libpng-dev libjpeg-dev \
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev nlohmann-json3-dev \
      curl procps ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM build-base AS build-cpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtorch-dev libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/*

FROM build-base AS build-cuda
# CUDA toolkit version as NVIDIA's apt packages spell it; match the LibTorch
# build (cu124 -> 12-4).
ARG CUDA_APT_VERSION=12-4
ARG DEBIAN_FRONTEND=noninteractive
RUN curl -fsSL -o /tmp/cuda-keyring.deb \
      https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb \
 && dpkg -i /tmp/cuda-keyring.deb && rm /tmp/cuda-keyring.deb \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      cuda-nvcc-${CUDA_APT_VERSION} cuda-libraries-dev-${CUDA_APT_VERSION} \
 && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/local/cuda/bin:${PATH}
# The unzipped LibTorch (its include/, lib/, share/cmake/): the named build
# context "libtorch". It must be the cxx11-ABI build: Debian's gRPC, protobuf
# and Abseil use the C++11 std::string ABI.
COPY --from=libtorch . /opt/libtorch
ENV CMAKE_PREFIX_PATH=/opt/libtorch

FROM build-${VARIANT} AS build
WORKDIR /src
# Only what the build reads (the top-level CMakeLists.txt's subdirectories
# and the scripts); tests/deploy/dockerfile_test.sh keeps this list complete.
COPY CMakeLists.txt ./
COPY common/ common/
COPY batching/ batching/
COPY proto/ proto/
COPY data/ data/
COPY client/ client/
COPY model/ model/
COPY server/ server/
COPY tuning/ tuning/
COPY bench/ bench/
COPY scripts/ scripts/
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMMFUSE_BUILD_TESTS=OFF \
 && cmake --build build --target mmfuse-server mmfuse
# The default model package: deterministic training on generated data (about
# a minute on 2 cores). Its batching is not tuned here: the build machine is
# not the one that serves (run `mmfuse tune` where it does; README).
RUN MMFUSE_BUILD_DIR=build MMFUSE_DATA_DIR=/tmp/datasets MMFUSE_TUNE=0 \
      ./scripts/make_default_model.sh /src/models/default \
 && rm -rf /tmp/datasets

# ---- runtime -------------------------------------------------------------------

FROM debian:12-slim AS runtime-base
ARG DEBIAN_FRONTEND=noninteractive
# The shared libraries of mmfuse-server and mmfuse (ldd + dpkg -S on the
# build), besides LibTorch; apt brings their dependencies.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libabsl20220623 libcpp-httplib0.11 libgrpc29 libgrpc++1.51 \
      libprometheus-cpp-core1.0 libprotobuf32 libtcmalloc-minimal4 \
      libsndfile1 libsamplerate0 libfftw3-double3 libpng16-16 libjpeg62-turbo \
      libavformat59 libavcodec59 libswscale6 libavutil57 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mmfuse \
 && useradd --system --uid 10001 --gid mmfuse --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin mmfuse

FROM runtime-base AS runtime-cpu
# Debian's LibTorch, and OpenBLAS as its BLAS (about 9x faster than the
# reference BLAS apt would pick otherwise).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libtorch1.13 libopenblas0-pthread \
 && rm -rf /var/lib/apt/lists/*

# Not nvidia/cuda: those images are Ubuntu/UBI, and these binaries link
# Debian 12's gRPC, protobuf, Abseil and glibc 2.36. LibTorch's
# "shared-with-deps" lib/ carries the CUDA runtime, cuBLAS and cuDNN it
# needs; the NVIDIA container toolkit mounts the driver (libcuda) at run time.
FROM runtime-base AS runtime-cuda
COPY --from=build /opt/libtorch/lib/ /opt/libtorch/lib/
ENV LD_LIBRARY_PATH=/opt/libtorch/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${VARIANT} AS runtime
COPY --from=build /src/build/bin/mmfuse-server /src/build/bin/mmfuse /usr/local/bin/
COPY --from=build /src/models/default/ /models/default/
# LibTorch may write caches under $HOME; /tmp is the only writable place when
# the root filesystem is read-only (deploy/k8s mounts an emptyDir there).
ENV HOME=/tmp
USER 10001:10001
# gRPC (mmfuse.v1 + grpc.health.v1 + reflection), Prometheus /metrics.
EXPOSE 50051 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["mmfuse", "health", "--server", "127.0.0.1:50051", "--timeout_ms", "3000"]
# SIGTERM drains (health NOT_SERVING, refuse new work, finish open calls
# within --drain_timeout_s). Extra flags (docker run ... IMAGE --workers 4,
# or --flagfile=...) append to these.
ENTRYPOINT ["mmfuse-server", "--host", "0.0.0.0", "--port", "50051", "--metrics_port", "9464", "--model_dir", "/models/default"]
