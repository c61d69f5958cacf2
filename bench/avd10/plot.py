#!/usr/bin/python3
"""AVD-10 accuracy against mean compute, from the table bench/avd10/run.sh
prints (its $OUT/table.md).

  bench/avd10/plot.py table.md out.png

Points on the test split: each single modality, every fusion mode, the
gated experts' full branch and the gate at each lambda (joined). The rows on
held-out voices are left out (another test set).
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    """(model, test data, accuracy %, GFLOPs) of each table row."""
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 4 or cells[0] in ("model", "---"):
                continue
            try:
                yield cells[0], cells[1], float(cells[2]), float(cells[3])
            except ValueError:
                continue


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    gated = []
    for model, data, accuracy, gflops in rows(sys.argv[1]):
        if model.startswith("held-out"):
            continue
        mflops = gflops * 1000
        if model.startswith("gated, lambda"):
            gated.append((mflops, accuracy, model.split()[-1]))
            continue
        style = {"marker": "^", "color": "tab:green"} if model.endswith(" only") else \
            {"marker": "*", "s": 120, "color": "tab:blue"} if model.startswith("gated") else \
            {"marker": "s", "color": "grey"}
        ax.scatter(mflops, accuracy, **style)
        label = model.replace("fusion ", "").replace("gated experts, ", "")
        ax.annotate(label, (mflops, accuracy), fontsize=8, xytext=(4, -3),
                    textcoords="offset points")
    if gated:
        gated.sort()
        ax.plot([g[0] for g in gated], [g[1] for g in gated], "o-", color="tab:blue",
                label="gated (DynMM), lambda sweep")
        for x, y, lam in gated:
            ax.annotate(f"lambda {lam}", (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("mean MFLOPs per sample (counted)")
    ax.set_ylabel("test accuracy %")
    ax.set_title("AVD-10: accuracy against compute (single modalities on their own test subsets)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
