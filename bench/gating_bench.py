#!/usr/bin/python3
"""Accuracy against compute of gated inference (DynMM) on the generated benchmark.

On one data set (generated with easy samples, whose text alone gives the class):
  * every fusion mode, ungated (the default architecture, one expert);
  * modality-level gating: experts {text}, {audio}, {video}, full trained once,
    then `mmfuse eval --lambda_sweep`: one fresh gate per lambda over them;
  * fusion-level gating: experts full, fuse_last, late (the same modalities
    fused at other depths), swept the same way;
  * stage 3: the modality-level package finetuned jointly at one lambda.
Writes results.json and a Markdown table into the output folder and, with
--plot, the accuracy-compute plot (bench/plot_gating.py).

  bench/gating_bench.py [--out DIR] [--easy_fraction 0.6] [--quick] [--plot PNG]
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODES = ["concat", "late", "mbt", "sft", "locomt", "pmf"]


def run(args, log=None):
    with open(log, "w") if log else open(os.devnull, "w") as err:
        out = subprocess.run(args, stdout=subprocess.PIPE, stderr=err, text=True)
    if out.returncode != 0:
        sys.exit(f"gating_bench: {' '.join(args)} failed (log: {log})")
    return out.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="/tmp/mmfuse-gating")
    parser.add_argument("--bin", default=os.path.join(ROOT, os.environ.get("MMFUSE_BUILD_DIR", "build"), "bin"))
    parser.add_argument("--easy_fraction", type=float, default=0.6)
    parser.add_argument("--examples", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lambdas", default="0,0.05,0.1,0.2,0.3,0.5,1")
    parser.add_argument("--joint_lambda", type=float, default=0.3)
    parser.add_argument("--joint_epochs", type=int, default=2)
    parser.add_argument("--gate_pooling", default="mean_max")
    parser.add_argument("--modes", default=",".join(MODES), help="fusion modes to train ungated; empty = none")
    parser.add_argument("--quick", action="store_true", help="small data, one epoch: checks the pipeline only")
    parser.add_argument("--plot", default="", help="write the plot here (PNG)")
    a = parser.parse_args()
    if a.quick:
        a.examples, a.epochs, a.lambdas, a.modes, a.joint_epochs = 400, 1, "0,1", "concat", 1
    os.makedirs(a.out, exist_ok=True)
    mmfuse = os.path.join(a.bin, "mmfuse")
    path = lambda name: os.path.join(a.out, name)

    def gen(name, examples, split):
        run([mmfuse, "datagen", "--seed", "3", "--easy_fraction", str(a.easy_fraction),
             "--missing_rate", "0.05", "--examples", str(examples), "--split", str(split),
             "--out", path(name)])

    gen("train.mmds", a.examples, 0)
    gen("test.mmds", 1000 if not a.quick else 200, 1)
    gen("gate.mmds", a.examples // 2, 2)  # Held out from the experts: the gate sees them as they are.

    def train(name, *flags):
        run([mmfuse, "train", "--data", path("train.mmds"), "--out", path(name), "--epochs",
             str(a.epochs), "--seed", "1", *flags], log=path(name + ".log"))

    def evaluate(name, *flags):
        return json.loads(run([mmfuse, "eval", "--model_dir", path(name), "--data", path("test.mmds"),
                               "--json", *flags]))

    results = {"easy_fraction": a.easy_fraction, "modes": {}, "gated": {}}
    for mode in filter(None, a.modes.split(",")):
        train("mode-" + mode, "--mode", mode)
        results["modes"][mode] = evaluate("mode-" + mode)
        print(f"mode {mode}: {results['modes'][mode]['accuracy']:.4f}", file=sys.stderr)

    sweep = ["--lambda_sweep", a.lambdas, "--gate_data", path("gate.mmds"), "--seed", "1"]
    for level in ["modality", "fusion"]:
        # Stage 1 once per branch set; --gate_epochs 1 because the sweep trains its own gates.
        train("experts-" + level, "--gate", "--gate_branches", level, "--gate_pooling",
              a.gate_pooling, "--gate_epochs", "1", "--gate_data", path("gate.mmds"))
        results["gated"][level] = evaluate("experts-" + level, *sweep)
        print(f"{level}-level sweep done", file=sys.stderr)

    # Stage 3 on the modality-level experts: stage 2 at joint_lambda, then joint finetune.
    train("joint", "--gate", "--init_from", path("experts-modality"), "--epochs", "0",
          "--gate_branches", "modality", "--gate_pooling", a.gate_pooling,
          "--lambda", str(a.joint_lambda), "--gate_data", path("gate.mmds"),
          "--joint_epochs", str(a.joint_epochs))
    results["joint"] = {"lambda": a.joint_lambda, "epochs": a.joint_epochs,
                        "balanced": evaluate("joint", "--budget", "balanced")}

    with open(path("results.json"), "w") as f:
        json.dump(results, f, indent=1)
    table = markdown(results)
    with open(path("table.md"), "w") as f:
        f.write(table)
    print(table)
    if a.plot:
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "plot_gating.py"),
                        path("results.json"), a.plot], check=True)


def markdown(results):
    full = results["gated"]["modality"]["full"]
    full_gf = full["mean_gflops"]
    rows = ["| model | accuracy % | mean GFLOPs/sample | compute vs full | branch mix |",
            "| --- | --- | --- | --- | --- |"]

    def row(name, r):
        mix = ", ".join(f"{k}: {v:.3f}" for k, v in r["branch_fraction"].items())
        rows.append(f"| {name} | {100 * r['accuracy']:.1f} | {r['mean_gflops']:.5f} | "
                    f"{100 * (r['mean_gflops'] / full_gf - 1):+.0f}% | {mix} |")

    for mode, r in results["modes"].items():
        row(f"{mode} (ungated)", r)
    for level, sweep in results["gated"].items():
        row(f"{level}-level experts, full branch (accurate)", sweep["full"])
        for point in sweep["sweep"]:
            row(f"{level}-level gate, lambda {point['lambda']:g}", point["balanced"])
    j = results["joint"]
    row(f"modality-level, stage 3 joint finetune (lambda {j['lambda']:g}, {j['epochs']} epochs)", j["balanced"])
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
