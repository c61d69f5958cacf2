#!/usr/bin/python3
"""p99 latency against throughput of mmfuse and the Python peer, from
open-loop rate sweeps of mmfuse-bench (--json output), as a PNG.

    /usr/bin/python3 bench/plot_latency_throughput.py --mmfuse bench/out/full/raw/mmfuse_sweep.out \
        --peer bench/out/full/raw/peer_sweep.out --out docs/img/latency_throughput.png
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")  # No display: render to a file.
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402


def read_sweep(path):
    """(throughput/s, p99 ms, p50 ms, offered rate/s) per open-loop step."""
    try:
        with open(path, encoding="utf-8") as f:
            steps = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("plot: cannot read the sweep %s: %s" % (path, e))
    points = [(s["throughput_rps"], s["p99_us"] / 1000.0, s["p50_us"] / 1000.0, s.get("rate", 0))
              for s in steps if s.get("mode") == "open" and s.get("ok", 0) > 0]
    if not points:
        sys.exit("plot: %s holds no open-loop step with answered requests" % path)
    return sorted(points)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mmfuse", required=True, help="mmfuse-bench --json of mmfuse-server")
    parser.add_argument("--peer", required=True, help="mmfuse-bench --json of the peer")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args()

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for path, label, color in ((args.mmfuse, "mmfuse-server (C++, LibTorch)", "tab:blue"),
                               (args.peer, "Python peer (grpcio + PyTorch)", "tab:orange")):
        points = read_sweep(path)
        x = [p[0] for p in points]
        ax.plot(x, [p[1] for p in points], "o-", color=color, label=label + " p99")
        ax.plot(x, [p[2] for p in points], "x--", color=color, alpha=0.6, label=label + " p50")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # Plain numbers, not powers of ten.
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: "%g" % v))
        axis.set_minor_formatter(ticker.FuncFormatter(lambda v, _: "%g" % v))
    ax.set_xlabel("throughput (responses/s, open loop, Poisson arrivals)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency against throughput, default package, loopback")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
