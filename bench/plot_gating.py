#!/usr/bin/python3
"""Accuracy against mean compute from bench/gating_bench.py's results.json.

  bench/plot_gating.py results.json out.png
Points: every ungated fusion mode; per gating level the full branch and one
point per lambda (joined, the Pareto front the gate traces); the stage 3
finetune.
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        results = json.load(f)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for mode, r in results["modes"].items():
        ax.scatter(r["mean_gflops"] * 1000, 100 * r["accuracy"], marker="s", color="grey")
        ax.annotate(mode, (r["mean_gflops"] * 1000, 100 * r["accuracy"]), fontsize=8,
                    xytext=(4, -3), textcoords="offset points")
    colours = {"modality": "tab:blue", "fusion": "tab:orange"}
    for level, sweep in results["gated"].items():
        points = sorted((p["balanced"]["mean_gflops"] * 1000, 100 * p["balanced"]["accuracy"], p["lambda"])
                        for p in sweep["sweep"])
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", color=colours.get(level),
                label=f"{level}-level gate (lambda sweep)")
        for x, y, lam in points:
            ax.annotate(f"{lam:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        full = sweep["full"]
        ax.scatter(full["mean_gflops"] * 1000, 100 * full["accuracy"], marker="*", s=120,
                   color=colours.get(level), label=f"{level}-level experts: full branch")
    j = results.get("joint")
    if j:
        ax.scatter(j["balanced"]["mean_gflops"] * 1000, 100 * j["balanced"]["accuracy"], marker="D",
                   color="tab:green", label=f"stage 3 joint finetune (lambda {j['lambda']:g})")
    ax.set_xlabel("mean compute per sample (MFLOPs, gate included)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Gated inference on generated data (easy fraction {results['easy_fraction']:g})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
