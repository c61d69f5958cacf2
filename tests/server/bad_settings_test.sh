#!/usr/bin/env bash
# Every mmfuse-server setting out of its range stops start-up with exit
# status 2 and a message naming the flag (or package field), the value and
# the range; none falls back to a default (server/settings.h).
#
#   tests/server/bad_settings_test.sh <build dir>
set -euo pipefail
SERVER=$(cd "${1:?build dir}" && pwd)/bin/mmfuse-server
[[ -x "$SERVER" ]] || { echo "FAIL: no $SERVER" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failures=0

# expect_bad "message" flags...: exit status 2, the message on stderr, and
# no model loaded (every setting is checked first; the model dir is absent).
expect_bad() {
  local message=$1; shift
  local rc=0
  timeout 60 "$SERVER" --model_dir "$TMP/no-such-package" "$@" >/dev/null 2>"$TMP/err" || rc=$?
  if [[ $rc -ne 2 ]] || ! grep -qF -- "$message" "$TMP/err"; then
    echo "FAIL: $* exited $rc (want 2) with: $(cat "$TMP/err")" >&2
    echo "      want the message: $message" >&2
    failures=$((failures + 1))
  fi
}

expect_bad "--port=70000 is outside [0, 65535]" --port=70000
expect_bad "--port=-1 is outside [0, 65535]" --port=-1
expect_bad "--metrics_port=-7 is outside [0, 65535]" --metrics_port=-7
expect_bad "--metrics_port=65536 is outside [0, 65535]" --metrics_port=65536
expect_bad "--workers=0 is outside [1, 256]" --workers=0
expect_bad "--workers=-3 is outside [1, 256]" --workers=-3
expect_bad "--max_batch_size=-5 is outside [1, 4096]" --max_batch_size=-5
expect_bad "--max_batch_size=0 is outside [1, 4096]" --max_batch_size=0
expect_bad "--max_queue_delay_us=-1 is outside [0, 10000000]" --max_queue_delay_us=-1
expect_bad "--max_queue_size=-1 is outside [1, 1000000]" --max_queue_size=-1
expect_bad "--max_queue_size=0 is outside [1, 1000000]" --max_queue_size=0
expect_bad "--max_batch_tokens=-1 is outside [1, 4294967296]" --max_batch_tokens=-1
expect_bad "--default_timeout_ms=-5 is outside [1, 86400000]" --default_timeout_ms=-5
expect_bad "--default_timeout_ms=0 is outside [1, 86400000]" --default_timeout_ms=0
expect_bad "--max_queue_time_ms=0 is outside [1, 86400000]" --max_queue_time_ms=0
expect_bad "--max_queue_time_ms=-3 is outside [1, 86400000]" --max_queue_time_ms=-3
expect_bad "--drain_timeout_s=-1 is outside [0, 3600]" --drain_timeout_s=-1
expect_bad "--max_receive_message_bytes=0 is outside [1024, 2147483647]" --max_receive_message_bytes=0
expect_bad "--target_queue_wait_us=0 is outside [1, 60000000]" --adaptive_gating --target_queue_wait_us=0
expect_bad "--max_stream_bytes=0 is outside [1, 1099511627776]" --max_stream_bytes=0
expect_bad "--max_stream_chunks=-2 is outside [1, 1000000000]" --max_stream_chunks=-2
expect_bad "--stream_timeout_ms=0 is outside [1, 86400000]" --stream_timeout_ms=0
expect_bad "--stream_idle_timeout_ms=-1 is outside [1, 86400000]" --stream_idle_timeout_ms=-1
expect_bad "--length_bucket_ratio=1.01 is outside [1.05, 16] (0 = none)" --length_bucket_ratio=1.01
expect_bad "--host is empty" --host=
expect_bad "--device: device \"tpu\" is not one of" --device=tpu

# A package whose batching config is out of the flags' ranges: the same
# exit status, naming the config field (checked before its weights load).
package=$TMP/package
mkdir -p "$package"
cat >"$package/config.pbtxt" <<'PBTXT'
name: "bad-batching"
fusion_mode: FUSION_MODE_CONCAT
modalities { name: "audio" feature_dim: 4 max_frames: 8 }
num_classes: 2
transformer { d_model: 8 num_heads: 2 ff_dim: 16 unimodal_layers: 1 fusion_layers: 1 }
batching { max_batch_size: 5000 }
PBTXT
printf 'a\nb\n' >"$package/labels.txt"
rc=0
timeout 60 "$SERVER" --model_dir "$package" --port 0 --nometrics >/dev/null 2>"$TMP/err" || rc=$?
if [[ $rc -ne 2 ]] || ! grep -qF "config.pbtxt: batching.max_batch_size=5000 is outside [1, 4096]" "$TMP/err"; then
  echo "FAIL: a package with batching.max_batch_size 5000 exited $rc (want 2): $(cat "$TMP/err")" >&2
  failures=$((failures + 1))
fi

# Not a bad setting: a package that is not there exits 1.
rc=0
timeout 60 "$SERVER" --model_dir "$TMP/no-such-package" --port 0 --nometrics >/dev/null 2>"$TMP/err" || rc=$?
if [[ $rc -ne 1 ]]; then
  echo "FAIL: a missing package exited $rc (want 1): $(cat "$TMP/err")" >&2
  failures=$((failures + 1))
fi

[[ $failures -eq 0 ]] || { echo "FAIL: $failures case(s)" >&2; exit 1; }
echo "PASS: every bad setting stopped start-up with status 2"
