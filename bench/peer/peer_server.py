#!/usr/bin/python3
"""The benchmark peer: an mmfuse model package served the way a research
prototype serves a PyTorch model. grpcio's synchronous server with a thread
pool, the model run in eager PyTorch one request per forward, no batching,
no queue of its own. It speaks mmfuse's API (mmfuse.v1.MultimodalClassifier
Classify and GetModelInfo), so mmfuse-bench drives it exactly as it drives
mmfuse-server, and answers with the same probabilities (tests/bench).

    /usr/bin/python3 bench/peer/peer_server.py --model_dir models/default \
        --host 127.0.0.1 --port 50300 [--threads 10] [--device cpu|cuda:N]

Threads: the model gets one math thread, as each of mmfuse's workers does
(on this class of machine one thread per forward is fastest): PyTorch's
intra-op pool (torch.set_num_threads(1)) and OpenBLAS's own pool, which
torch.set_num_threads does not reach (left at its default, every linear layer
ran 10x slower). gRPC gets a ThreadPoolExecutor of --threads (10 by default,
the value of gRPC's Python examples and what a prototype copies). Forwards
run concurrently in those threads as far as the GIL lets them (PyTorch
releases it inside operators).
Run with Debian's /usr/bin/python3 (python3-torch, python3-grpcio).
"""
import os

# Before numpy and torch load OpenBLAS: it sizes its thread pool at load time.
# Forced, not defaulted: the comparison assumes one math thread per forward.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import peer_model  # noqa: E402
from peer_protos import classifier_pb2, model_config_pb2  # noqa: E402

SERVICE = "mmfuse.v1.MultimodalClassifier"


class RequestError(Exception):
    """A bad request; the message names the field and the limit."""


class Classifier:
    def __init__(self, model):
        self.model = model
        self.config = model.config
        self.modality_index = {m.name: i for i, m in enumerate(self.config.modalities)}

    def _inputs(self, request):
        if not request.features:
            raise RequestError("features: at least one modality is required")
        inputs = [None] * len(self.config.modalities)
        for name, seq in request.features.items():
            index = self.modality_index.get(name)
            if index is None:
                raise RequestError('features: modality "%s" is not one of the model\'s (%s)'
                                   % (name, ", ".join(self.modality_index)))
            m = self.config.modalities[index]
            if seq.dim != m.feature_dim:
                raise RequestError("features[%s].dim=%d, the model's feature_dim is %d"
                                   % (name, seq.dim, m.feature_dim))
            if not 1 <= seq.frames <= m.max_frames:
                raise RequestError("features[%s].frames=%d is not in [1, max_frames=%d]"
                                   % (name, seq.frames, m.max_frames))
            values = seq.frames * seq.dim
            if len(seq.data_fp16):
                if len(seq.data_fp16) != 2 * values:
                    raise RequestError("features[%s].data_fp16 has %d bytes, frames*dim*2=%d"
                                       % (name, len(seq.data_fp16), 2 * values))
                array = np.frombuffer(seq.data_fp16, dtype="<f2").astype(np.float32)
            else:
                if len(seq.data) != values:
                    raise RequestError("features[%s].data has %d values, frames*dim=%d"
                                       % (name, len(seq.data), values))
                array = np.asarray(seq.data, dtype=np.float32)
            if not np.isfinite(array).all():
                raise RequestError("features[%s] holds a NaN or Inf" % name)
            device = self.model.device
            inputs[index] = (torch.from_numpy(array).view(1, seq.frames, seq.dim).to(device),
                             torch.tensor([seq.frames], dtype=torch.int64, device=device))
        return inputs

    def classify(self, request, context):
        start = time.perf_counter()
        try:
            if request.top_k > self.config.num_classes:
                raise RequestError("top_k=%d is more than the model's %d classes"
                                   % (request.top_k, self.config.num_classes))
            inputs = self._inputs(request)
        except RequestError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        compute_start = time.perf_counter()
        with torch.inference_mode():
            probabilities = self.model.forward(inputs)[0].tolist()
        compute_end = time.perf_counter()
        response = classifier_pb2.ClassifyResponse(
            request_id=request.request_id, model=self.config.name, branch=self.model.branch,
            batch_size=1, budget=request.budget)
        top_k = max(1, request.top_k)
        for index in sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:top_k]:
            response.top_k.add(label=self.model.labels[index], index=index,
                               probability=probabilities[index])
        for name, modality_input in zip(self.modality_index, inputs):
            if modality_input is not None:
                response.modalities_used.append(name)
        response.timings.compute_us = int((compute_end - compute_start) * 1e6)
        response.timings.total_us = int((time.perf_counter() - start) * 1e6)
        return response

    def model_info(self, request, context):
        if request.model and request.model != self.config.name:
            context.abort(grpc.StatusCode.NOT_FOUND, 'model "%s" is not served (only "%s")'
                          % (request.model, self.config.name))
        c = self.config
        info = classifier_pb2.ModelInfo(
            name=c.name, version=c.version, labels=self.model.labels,
            fusion_mode=model_config_pb2.FusionMode.Name(c.fusion_mode)
            .replace("FUSION_MODE_", "").lower(),
            d_model=c.transformer.d_model,
            num_layers=c.transformer.unimodal_layers + c.transformer.fusion_layers,
            num_parameters=self.model.num_parameters, priority_levels=1)
        for m in c.modalities:
            info.modalities.add(name=m.name, feature_dim=m.feature_dim, max_frames=m.max_frames)
            info.reference_frames[m.name] = m.reference_frames
        info.branches.add(name=self.model.branch, modalities=[m.name for m in c.modalities])
        return info


def build_server(classifier, host, port, threads):
    handlers = {
        "Classify": grpc.unary_unary_rpc_method_handler(
            classifier.classify,
            request_deserializer=classifier_pb2.ClassifyRequest.FromString,
            response_serializer=classifier_pb2.ClassifyResponse.SerializeToString),
        "GetModelInfo": grpc.unary_unary_rpc_method_handler(
            classifier.model_info,
            request_deserializer=classifier_pb2.GetModelInfoRequest.FromString,
            response_serializer=classifier_pb2.ModelInfo.SerializeToString),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    bound = server.add_insecure_port("%s:%d" % (host, port))
    if bound == 0:
        raise OSError("cannot listen on %s:%d" % (host, port))
    return server, bound


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_dir", default="models/default", help="model package")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50300, help="0 picks a free port")
    parser.add_argument("--threads", type=int, default=10, help="gRPC handler threads")
    parser.add_argument("--device", default="cpu",
                        help="where the model runs: cpu, cuda or cuda:N (PyTorch's CUDA build)")
    args = parser.parse_args(argv)
    if args.device != "cpu":
        if not args.device.startswith("cuda") or not torch.cuda.is_available():
            parser.error("--device=%s: this PyTorch sees no CUDA device (use cpu)" % args.device
                         if args.device.startswith("cuda")
                         else "--device=%s is not one of cpu, cuda, cuda:N" % args.device)
    if not 0 <= args.port <= 65535:
        parser.error("--port=%d is not in [0, 65535]" % args.port)
    if not 1 <= args.threads <= 1024:
        parser.error("--threads=%d is not in [1, 1024]" % args.threads)
    return args


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(1)
    try:
        model = peer_model.PeerModel(args.model_dir, args.device)
    except peer_model.PackageError as e:
        print("peer: %s" % e, file=sys.stderr)
        return 1
    try:
        server, port = build_server(Classifier(model), args.host, args.port, args.threads)
    except (OSError, RuntimeError) as e:
        print("peer: %s" % e, file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print("peer: serving %s (%s, %d parameters) on %s:%d with %d gRPC threads, 1 math thread, "
          "device %s" % (model.config.name, args.model_dir, model.num_parameters, args.host, port,
                         args.threads, args.device), file=sys.stderr, flush=True)
    stop.wait()
    server.stop(grace=5).wait()
    print("peer: stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
