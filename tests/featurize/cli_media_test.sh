#!/usr/bin/env bash
# The media CLI end to end: generated WAV/PNG files and a manifest ->
# `mmfuse extract` (one bad line reported and skipped) -> `mmfuse train` a tiny
# package with featurizers -> mmfuse-server on loopback -> `mmfuse info`
# shows the featurizers -> `mmfuse classify --audio/--image/--text`.
# Usage: cli_media_test.sh BUILD_DIR
set -euo pipefail
source "$(dirname "$0")/../testing/shell_lib.sh"
BIN=$1/bin
T=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

python3 - "$T" <<'PY'
import math, struct, sys, wave, zlib
root = sys.argv[1]
import os
os.makedirs(f"{root}/media", exist_ok=True)
def wav(path, hz, seconds=0.3, rate=8000):
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(12000 * math.sin(2 * math.pi * hz * n / rate)))
                               for n in range(int(seconds * rate))))
def png(path, width, height, value):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + bytes([value]) * width for _ in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
names = ["zero", "one", "two"]
lines = []
for i in range(6):
    c = i % 3
    wav(f"{root}/media/{i}.wav", 300 + 900 * c)
    png(f"{root}/media/{i}.png", 8, 8, 40 + 80 * c)
    lines.append(f'{{"label": "{names[c]}", "audio": "media/{i}.wav", "image": "media/{i}.png", "text": "{names[c]}"}}')
lines.insert(3, '{"label": "one", "audio": "media/missing.wav"}')
open(f"{root}/m.jsonl", "w").write("\n".join(lines) + "\n")
open(f"{root}/labels.txt", "w").write("\n".join(names) + "\n")
PY
cat >"$T/config.pbtxt" <<'PB'
name: "media" version: "1"
modalities {
  name: "audio" feature_dim: 8 max_frames: 64
  featurizer { audio { sample_rate: 8000 n_fft: 256 hop_length: 128 n_mels: 8 } }
}
modalities {
  name: "video" feature_dim: 4 max_frames: 16
  featurizer { image { width: 4 height: 4 patch_size: 2 } }
}
modalities {
  name: "text" feature_dim: 4 max_frames: 8
  featurizer { text { seed: 3 } }
}
num_classes: 3
fusion_mode: FUSION_MODE_CONCAT
transformer { d_model: 8 num_heads: 2 ff_dim: 16 unimodal_layers: 1 fusion_layers: 1 }
PB

"$BIN/mmfuse" extract --manifest "$T/m.jsonl" --featurizers "$T/config.pbtxt" \
  --out "$T/train.mmds" --progress off 2>"$T/extract.log" || { cat "$T/extract.log"; die "extract failed"; }
grep -q "m.jsonl:4: audio file .*missing.wav: does not exist (skipped)" "$T/extract.log" ||
  { cat "$T/extract.log"; die "extract did not report line 4"; }
grep -q "wrote 6 of 7 examples" "$T/extract.log" || { cat "$T/extract.log"; die "extract summary"; }
if "$BIN/mmfuse" extract --manifest "$T/m.jsonl" --featurizers "$T" --out "$T/strict.mmds" \
     --strict --progress off 2>/dev/null; then
  die "extract --strict succeeded despite a bad line"
fi
[[ ! -e $T/strict.mmds ]] || die "extract --strict left $T/strict.mmds"

"$BIN/mmfuse" train --config "$T/config.pbtxt" --data "$T/train.mmds" --out "$T/pkg" --epochs 1 \
  --batch_size 4 >"$T/train.log" 2>&1 || { tail "$T/train.log"; die "train failed"; }
cp "$T/labels.txt" "$T/pkg/labels.txt"
"$BIN/mmfuse" check --model_dir "$T/pkg" >/dev/null || die "the trained package does not load"

PORT=$(free_port)
"$BIN/mmfuse-server" --model_dir "$T/pkg" --host 127.0.0.1 --port "$PORT" --metrics_port 0 \
  >"$T/server.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 150); do
  "$BIN/mmfuse" health --server "127.0.0.1:$PORT" --timeout_ms 500 >/dev/null 2>&1 && break
  sleep 0.2
done
"$BIN/mmfuse" health --server "127.0.0.1:$PORT" >/dev/null || { cat "$T/server.log"; die "server not serving"; }

"$BIN/mmfuse" info --server "127.0.0.1:$PORT" --json | grep -q '"n_mels":8' ||
  die "GetModelInfo lacks the audio featurizer"
out=$("$BIN/mmfuse" classify --server "127.0.0.1:$PORT" --audio "$T/media/1.wav" \
  --image "$T/media/1.png" --text "one" --top_k 3 --json)
[[ $out == *'"top_k"'* && $out == *'"audio"'* && $out == *'"video"'* && $out == *'"text"'* ]] ||
  die "classify from media: $out"
out=$("$BIN/mmfuse" classify --server "127.0.0.1:$PORT" --text "two" --json)
[[ $out == *'"modalities_used":["text"]'* ]] || die "classify from text only: $out"
if err=$("$BIN/mmfuse" classify --server "127.0.0.1:$PORT" --audio "$T/media/none.wav" 2>&1); then
  die "classify of a missing file succeeded"
fi
[[ $err == *"none.wav: does not exist"* ]] || die "classify error: $err"
echo PASS
