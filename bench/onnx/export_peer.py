"""Exports a model package to ONNX through the benchmark peer's PyTorch
forward (bench/peer/peer_model.py, the package's own weights), so a generic
runtime (ONNX Runtime, bench/onnx/ort_bench.mjs) runs the very model mmfuse
serves. Inputs: per modality `<name>` [B, T, dim] float32 and
`<name>_lengths` [B] int64, batch and frames dynamic; output `probabilities`
[B, classes]. Every modality must be present (the exported graph has no
branch for an absent one), as in the benchmark's shapes.

    /usr/bin/python3 bench/onnx/export_peer.py --model_dir models/default \
        --out /tmp/default.onnx

Then checks the export: ONNX Runtime is not a Python package on Debian, so
the check runs in bench/onnx/ort_bench.mjs (--check), against the
probabilities this script writes beside the model (<out>.check.json).
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peer"))
from peer_model import PeerModel  # noqa: E402


class Exportable(torch.nn.Module):
    def __init__(self, peer):
        super().__init__()
        self.peer = peer

    def forward(self, *flat):
        inputs = [(flat[2 * m], flat[2 * m + 1]) for m in range(len(flat) // 2)]
        return self.peer.forward(inputs)


def example_inputs(config, batch, lengths, seed):
    generator = torch.Generator().manual_seed(seed)
    flat = []
    for modality, frames in zip(config.modalities, lengths):
        flat.append(torch.randn(batch, frames, modality.feature_dim, generator=generator))
        # Every sample at full length but the last, so padding is exercised.
        length = torch.full((batch,), frames, dtype=torch.int64)
        length[-1] = max(1, frames // 2)
        flat.append(length)
    return flat


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="models/default")
    parser.add_argument("--out", required=True)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()

    torch.set_num_threads(1)
    peer = PeerModel(args.model_dir)
    config = peer.config
    names = []
    dynamic = {"probabilities": {0: "batch"}}
    for modality in config.modalities:
        names += [modality.name, modality.name + "_lengths"]
        dynamic[modality.name] = {0: "batch", 1: modality.name + "_frames"}
        dynamic[modality.name + "_lengths"] = {0: "batch"}
    trace_lengths = [min(m.max_frames, 8 + 3 * i) for i, m in enumerate(config.modalities)]
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(Exportable(peer), tuple(example_inputs(config, 2, trace_lengths, 1)),
                          args.out, input_names=names, output_names=["probabilities"],
                          dynamic_axes=dynamic, opset_version=args.opset)
        # Probabilities at other shapes than the traced ones, for the check.
        check_lengths = [min(m.max_frames, 13 + 5 * i) for i, m in enumerate(config.modalities)]
        check_inputs = example_inputs(config, 3, check_lengths, 2)
        expected = Exportable(peer)(*check_inputs)
    with open(args.out + ".check.json", "w", encoding="utf-8") as f:
        json.dump({"inputs": {name: {"shape": list(t.shape), "data": t.flatten().tolist()}
                              for name, t in zip(names, check_inputs)},
                   "probabilities": expected.flatten().tolist()}, f)
    print("export: wrote %s (opset %d) and %s.check.json" % (args.out, args.opset, args.out))


if __name__ == "__main__":
    main()
