#!/usr/bin/env bash
# Accuracy against compute of gated inference (DynMM): see bench/gating_bench.py.
#   bench/gating_bench.sh [--out DIR] [--easy_fraction F] [--quick] [--plot PNG]
exec /usr/bin/python3 "$(dirname "$0")/gating_bench.py" "$@"
