#!/usr/bin/env bash
# One bounded libFuzzer run of a target; quiet unless it finds something.
#
#   run_fuzzer.sh FUZZ_DIR TARGET SECONDS [libFuzzer flags...]
#
# FUZZ_DIR is the build's fuzz directory (build-fuzz/fuzz): it holds
# TARGET_fuzzer and fuzz_seed_gen, and receives seeds/ (generated on the
# first run), corpus/TARGET (what the fuzzer learns; kept between runs, so
# a later run starts where this one stopped), artifacts/TARGET (crash
# inputs) and logs/TARGET.log. Exits non-zero on a finding, printing the
# input's path and how to make it a regression test. MMFUSE_FUZZ_SECONDS,
# when set, overrides SECONDS.
set -euo pipefail
if (($# < 3)); then
  echo "usage: $0 FUZZ_DIR TARGET SECONDS [libFuzzer flags...]" >&2; exit 2
fi
fuzz_dir=$1 target=$2 seconds=${MMFUSE_FUZZ_SECONDS:-$3}
shift 3
src_dir=$(cd "$(dirname "$0")" && pwd)
fuzzer=$fuzz_dir/${target}_fuzzer
[[ -x $fuzzer ]] || { echo "fuzz: $fuzzer is not built" >&2; exit 1; }

# Seeds: generated once per build. Targets run in parallel (ctest -j), so
# each writes its own copy and renames it into place; a loser drops its own.
if [[ ! -d $fuzz_dir/seeds/$target ]]; then
  "$fuzz_dir/fuzz_seed_gen" "$fuzz_dir/seeds.tmp.$$"
  mv -T "$fuzz_dir/seeds.tmp.$$" "$fuzz_dir/seeds" 2>/dev/null || rm -rf "$fuzz_dir/seeds.tmp.$$"
fi
corpus=$fuzz_dir/corpus/$target
artifacts=$fuzz_dir/artifacts/$target
log=$fuzz_dir/logs/$target.log
mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
# Corpus directories: the first receives new inputs; the rest are read only.
inputs=("$corpus" "$fuzz_dir/seeds/$target")
for dir in "$src_dir/seeds/$target" "$src_dir/regressions/$target"; do
  [[ -d $dir ]] && inputs+=("$dir")
done

# The config target's dictionary: the text format's words (every field and
# enum value of the current model_config.proto) and numbers at the limits.
dict_args=()
if [[ $target == config ]]; then
  dict=$fuzz_dir/config.dict
  proto=$src_dir/../../proto/mmfuse/v1/model_config.proto
  {
    sed -nE 's/^ *(repeated +|map<[^>]+> +)?[A-Za-z0-9_.]+ +([a-z_0-9]+) *= *[0-9]+.*;.*/"\2"/p' "$proto"
    sed -nE 's/^ *([A-Z][A-Z0-9_]+) *= *[0-9]+;.*/"\1"/p' "$proto"
    printf '"%s"\n' '{' '}' ':' '[' ']' 'self:' 'cross:' 'key' 'value' '0' '-1' '65536' '65537' \
      '2147483648' '4294967295' '18446744073709551615' '1e40' 'nan' 'inf'
  } | sort -u >"$dict"
  dict_args=(-dict="$dict")
fi

# The dataset target writes its input to a scratch file per run: in memory
# it runs ~8x faster than on a busy disk.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then export TMPDIR=/dev/shm; fi

# UBSan findings abort (the build also compiles with
# -fno-sanitize-recover); leaks are checked per input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
marker=$fuzz_dir/logs/$target.start
touch "$marker"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$artifacts/" "${dict_args[@]}" "$@" "${inputs[@]}" >"$log" 2>&1 || status=$?

if ((status != 0)); then
  echo "fuzz: $target FAILED (exit $status); log: $log" >&2
  grep -E 'ERROR|SUMMARY|check failed|runtime error' "$log" | head -5 >&2 || true
  tail -40 "$log" >&2
  find "$artifacts" -type f -newer "$marker" | while read -r crash; do
    echo "fuzz: input $crash" >&2
    echo "fuzz:   reproduce: $fuzzer $crash" >&2
    echo "fuzz:   regression: copy it to tests/fuzz/regressions/$target/<what-it-found> and fix" >&2
  done
  exit 1
fi
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo '?')
echo "fuzz: $target ok: $runs runs in ${seconds} s, coverage $cov, corpus $(ls "$corpus" | wc -l) inputs" |
  tee "$fuzz_dir/logs/$target.summary"
