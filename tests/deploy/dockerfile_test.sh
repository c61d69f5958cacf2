#!/usr/bin/env bash
# Checks the Dockerfile without a Docker engine (tools/deploy/check_dockerfile.mjs):
# COPY sources vs the build context and .dockerignore, build packages vs
# scripts/setup.sh, runtime apt packages vs the shared libraries of the built
# binaries (ldd + dpkg -S), ENTRYPOINT/HEALTHCHECK flags vs --helpfull. Then
# a broken copy must be rejected (the checks are not vacuous).
#
#   tests/deploy/dockerfile_test.sh <build dir>
source "$(dirname "$0")/lib.sh"
BUILD=$(cd "${1:?usage: dockerfile_test.sh <build dir>}" && pwd)
[[ -x "$BUILD/bin/mmfuse-server" && -x "$BUILD/bin/mmfuse" ]] || die "build $BUILD/bin/mmfuse-server and mmfuse first"
ensure_commands node:nodejs ldd:libc-bin dpkg-query:dpkg
cd "$ROOT"
node tools/deploy/check_dockerfile.mjs "$BUILD" || die "Dockerfile checks"

# Negative control: a build context whose Dockerfile drops OpenBLAS from the
# runtime, COPYs a missing directory and passes an unknown flag.
T=$(mktemp -d "${TMPDIR:-/tmp}/mmfuse-docker.XXXXXX")
trap 'rm -rf "$T"' EXIT
for entry in $(ls -A "$ROOT"); do
  [[ "$entry" == Dockerfile ]] || ln -s "$ROOT/$entry" "$T/$entry"
done
sed -e 's/ libtorch1.13 libopenblas0-pthread/ libtorch1.13/' \
    -e 's/"--metrics_port", "9464"/"--metrics_port", "9464", "--no_such_flag", "1"/' \
    -e 's|^COPY data/ data/$|COPY data/ data/\nCOPY no_such_dir/ no_such_dir/|' Dockerfile >"$T/Dockerfile"
if node tools/deploy/check_dockerfile.mjs --context "$T" "$BUILD" >"$T/out" 2>&1; then
  cat "$T/out"; die "check_dockerfile.mjs accepted a broken Dockerfile"
fi
for want in 'lack libopenblas0-pthread' 'COPY no_such_dir/: no such file' '--no_such_flag: mmfuse-server has no such flag'; do
  grep -qF -- "$want" "$T/out" || { cat "$T/out"; die "broken Dockerfile: expected \"$want\""; }
done
echo "PASS"
