#!/usr/bin/env bash
# Batched against unbatched forward of one package, batches formed as the
# server's batcher forms them: dataset order (no grouping) against grouping
# by the modalities present and by per-modality length buckets, with and
# without the fused encoder-layer kernel (docs/BENCHMARKS.md, "Batches as
# the batcher forms them"). raw_model_bench runs each configuration REPEATS
# times, alternating; the table has the medians and the ratios of the
# medians, each row's batch sizes measured side by side in one run.
#
#   bench/batching_breakdown.sh [model dir, default models/default] [data, default datasets/test.mmds]
#
# Environment: MMFUSE_BUILD_DIR (build), REPEATS (3), SECONDS_PER (3),
# WORKERS (2), BATCHES (1,8,16).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MMFUSE_BUILD_DIR:-build}/bin
MODEL=${1:-models/default}
DATA=${2:-datasets/test.mmds}
REPEATS=${REPEATS:-3}
SECONDS_PER=${SECONDS_PER:-3}
WORKERS=${WORKERS:-2}
BATCHES=${BATCHES:-1,8,16}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# name|flags
CONFIGS=(
  "dataset order, fused off|--order dataset --fused_layers=false"
  "modalities present|--order batcher --length_bucket_ratio 0"
  "modalities present, length ratio 2|--order batcher --length_bucket_ratio 2"
  "modalities present, length ratio 1.5|--order batcher --length_bucket_ratio 1.5"
  "modalities present, length ratio 2, fused off|--order batcher --length_bucket_ratio 2 --fused_layers=false"
)
for ((r = 1; r <= REPEATS; ++r)); do
  for i in "${!CONFIGS[@]}"; do
    # shellcheck disable=SC2086  # the flags are a list
    "$BIN/raw_model_bench" --model_dir "$MODEL" --data "$DATA" --workers "$WORKERS" \
      --batch_sizes "$BATCHES" --seconds "$SECONDS_PER" ${CONFIGS[$i]#*|} |
      grep -E '^\| [0-9]' >"$OUT/$i.$r"
  done
done
echo "raw_model_bench, $MODEL on $DATA, $WORKERS workers, medians of $REPEATS runs of ${SECONDS_PER} s per batch size"
echo
/usr/bin/python3 - "$OUT" "$REPEATS" "${CONFIGS[@]}" <<'PY'
import statistics, sys
from pathlib import Path
out, repeats, configs = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
rows = []
for i, config in enumerate(configs):
    name = config.split("|")[0]
    runs = {}
    for r in range(1, repeats + 1):
        for line in (out / f"{i}.{r}").read_text().splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            b, rate, mean, padding = int(cells[0]), float(cells[2]), float(cells[3]), float(cells[4])
            runs.setdefault(b, {"rate": [], "mean": mean, "padding": padding})["rate"].append(rate)
    rows.append((name, runs))
sizes = sorted(rows[0][1])
head = ["batches"] + [f"samples/s, batch {b}" for b in sizes] + \
       [f"batch {b} / batch 1" for b in sizes if b > 1] + \
       [f"mean batch at {sizes[-1]}", f"tokens computed / present at {sizes[-1]}"]
print("| " + " | ".join(head) + " |")
print("|" + " --- |" * len(head))
for name, runs in rows:
    med = {b: statistics.median(runs[b]["rate"]) for b in sizes}
    cells = [name] + [f"{med[b]:.0f}" for b in sizes] + \
            [f"{med[b] / med[1]:.2f}x" for b in sizes if b > 1] + \
            [f"{runs[sizes[-1]]['mean']:.2f}", f"{runs[sizes[-1]]['padding']:.2f}"]
    print("| " + " | ".join(cells) + " |")
PY
