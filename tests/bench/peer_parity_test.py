#!/usr/bin/python3
"""The benchmark peer (bench/peer) answers with mmfuse's probabilities.

Trains a small package with the default architecture, serves it with
mmfuse-server and with the peer on loopback, sends both the same held-out
samples (whole, with modalities removed, and fp16-encoded) asking for every
class, and requires every probability to agree within 1e-4 and the peer's
metadata (branch, modalities used, labels) to match. Also checks that the
peer refuses packages it does not implement, naming what differs.

Skips (exit 77) only when python3-torch, python3-grpcio, python3-protobuf
or python3-numpy is missing.

    /usr/bin/python3 tests/bench/peer_parity_test.py <build dir>
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

try:
    import grpc
    import numpy as np
    import torch
    import google.protobuf  # noqa: F401
except ImportError as e:
    print("SKIP: the peer needs python3-torch, python3-grpcio, python3-protobuf and "
          "python3-numpy (Debian packages): %s" % e)
    sys.exit(77)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench", "peer"))
import peer_model  # noqa: E402
from peer_protos import classifier_pb2, dataset_pb2  # noqa: E402

TOLERANCE = 1e-4
SAMPLES = 40


def fail(message):
    print("FAIL: %s" % message, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_dataset(path):
    with open(path, "rb") as f:
        data = f.read()
    examples, pos = [], 0
    while pos < len(data):
        size, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        examples.append(dataset_pb2.Example.FromString(data[pos:pos + size]))
        pos += size
    return examples


def requests_from(examples):
    """Whole samples, samples with modalities removed, and fp16 ones."""
    subsets = [None, ["text"], ["audio", "video"], ["video"]]
    requests = []
    for i, example in enumerate(examples):
        request = classifier_pb2.ClassifyRequest(request_id=example.id, top_k=10)
        keep = subsets[i % len(subsets)]
        for name, seq in example.features.items():
            if keep is None or name in keep:
                request.features[name].CopyFrom(seq)
        if not request.features:  # The sample lacked every kept modality.
            for name, seq in example.features.items():
                request.features[name].CopyFrom(seq)
        if i % 5 == 4:
            for seq in request.features.values():
                seq.data_fp16 = np.asarray(seq.data, dtype="<f2").tobytes()
                del seq.data[:]
        requests.append(request)
    return requests


def wait_ready(stub, process, what):
    for _ in range(300):
        if process.poll() is not None:
            fail("%s exited with %d before serving" % (what, process.returncode))
        try:
            return stub(classifier_pb2.GetModelInfoRequest(), timeout=1)
        except grpc.RpcError:
            time.sleep(0.2)
    fail("%s did not answer GetModelInfo within 60 s" % what)


def classify_all(port, process, what, requests):
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    info_rpc = channel.unary_unary("/mmfuse.v1.MultimodalClassifier/GetModelInfo",
                                   classifier_pb2.GetModelInfoRequest.SerializeToString,
                                   classifier_pb2.ModelInfo.FromString)
    classify = channel.unary_unary("/mmfuse.v1.MultimodalClassifier/Classify",
                                   classifier_pb2.ClassifyRequest.SerializeToString,
                                   classifier_pb2.ClassifyResponse.FromString)
    info = wait_ready(info_rpc, process, what)
    responses = [classify(r, timeout=30) for r in requests]
    try:
        classify(classifier_pb2.ClassifyRequest(top_k=1), timeout=30)
        fail("%s accepted a request without features" % what)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail("%s answered a request without features with %s" % (what, e.code()))
    channel.close()
    return info, responses


def check_refuses(package, tmp):
    bad = os.path.join(tmp, "late")
    shutil.copytree(package, bad)
    with open(os.path.join(bad, "config.pbtxt"), encoding="utf-8") as f:
        config = f.read()
    with open(os.path.join(bad, "config.pbtxt"), "w", encoding="utf-8") as f:
        f.write(config.replace("FUSION_MODE_CONCAT", "FUSION_MODE_LATE"))
    try:
        peer_model.PeerModel(bad)
        fail("the peer loaded a late-fusion package")
    except peer_model.PackageError as e:
        if "fusion_mode=FUSION_MODE_LATE" not in str(e):
            fail("the refusal does not name the fusion mode: %s" % e)
    try:
        peer_model.PeerModel(os.path.join(tmp, "missing"))
        fail("the peer loaded a missing package")
    except peer_model.PackageError as e:
        if "is not a directory" not in str(e):
            fail("unclear error for a missing package: %s" % e)


def check_device_flag(package):
    """--device names what is wrong: a spec that is no device, or CUDA where
    this PyTorch has none (every CPU machine; the GPU run uses cuda:0)."""
    specs = [("tpu", "is not one of cpu, cuda, cuda:N")]
    if not torch.cuda.is_available():
        specs.append(("cuda:0", "sees no CUDA device"))
    for spec, expected in specs:
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "peer", "peer_server.py"),
             "--model_dir", package, "--port", "0", "--device", spec],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=120)
        if result.returncode == 0 or expected not in result.stderr:
            fail("--device %s: exit %d, stderr %r (expected %r)"
                 % (spec, result.returncode, result.stderr[-300:], expected))


def main():
    if len(sys.argv) != 2:
        fail("usage: peer_parity_test.py <build dir>")
    bin_dir = os.path.join(os.path.abspath(sys.argv[1]), "bin")
    for tool in ("mmfuse", "mmfuse-server"):
        if not os.access(os.path.join(bin_dir, tool), os.X_OK):
            fail("%s/%s is missing: build it first" % (bin_dir, tool))
    tmp = tempfile.mkdtemp(prefix="mmfuse-peer-test-")
    processes = []
    try:
        mmfuse = os.path.join(bin_dir, "mmfuse")
        package = os.path.join(tmp, "model")
        run = lambda *args: subprocess.run([mmfuse] + list(args), check=True,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run("datagen", "--out", os.path.join(tmp, "train.mmds"), "--examples", "200",
            "--split", "0", "--seed", "1", "--missing_rate", "0.1")
        run("datagen", "--out", os.path.join(tmp, "test.mmds"), "--examples", str(SAMPLES),
            "--split", "1", "--seed", "1", "--missing_rate", "0.3")
        run("train", "--data", os.path.join(tmp, "train.mmds"), "--out", package,
            "--epochs", "1", "--seed", "1")
        check_refuses(package, tmp)
        check_device_flag(package)

        server_port, peer_port = free_port(), free_port()
        server = subprocess.Popen(
            [os.path.join(bin_dir, "mmfuse-server"), "--host", "127.0.0.1", "--port",
             str(server_port), "--nometrics", "--model_dir", package, "--workers", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(server)
        peer = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "bench", "peer", "peer_server.py"),
             "--model_dir", package, "--host", "127.0.0.1", "--port", str(peer_port),
             "--threads", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(peer)

        requests = requests_from(read_dataset(os.path.join(tmp, "test.mmds")))
        ours_info, ours = classify_all(server_port, server, "mmfuse-server", requests)
        peer_info, theirs = classify_all(peer_port, peer, "the peer", requests)

        if list(peer_info.labels) != list(ours_info.labels):
            fail("labels differ: peer %s, mmfuse %s" % (peer_info.labels, ours_info.labels))
        if [m.name for m in peer_info.modalities] != [m.name for m in ours_info.modalities]:
            fail("modalities differ")
        if peer_info.num_parameters != ours_info.num_parameters:
            fail("parameter counts differ: peer %d, mmfuse %d"
                 % (peer_info.num_parameters, ours_info.num_parameters))
        worst = 0.0
        for request, a, b in zip(requests, ours, theirs):
            if b.request_id != request.request_id:
                fail("the peer echoed request_id %r for %r" % (b.request_id, request.request_id))
            if (a.branch, list(a.modalities_used)) != (b.branch, list(b.modalities_used)):
                fail("%s: mmfuse ran %s on %s, the peer %s on %s" % (
                    request.request_id, a.branch, list(a.modalities_used), b.branch,
                    list(b.modalities_used)))
            p = {s.index: s.probability for s in a.top_k}
            q = {s.index: s.probability for s in b.top_k}
            if len(p) != 10 or sorted(p) != sorted(q):
                fail("%s: classes differ: mmfuse %s, peer %s" % (request.request_id, sorted(p),
                                                                 sorted(q)))
            diff = max(abs(p[i] - q[i]) for i in p)
            worst = max(worst, diff)
            if diff > TOLERANCE:
                fail("%s (%s): probabilities differ by %.3g > %g\n  mmfuse %s\n  peer   %s" % (
                    request.request_id, "+".join(request.features), diff, TOLERANCE,
                    [round(p[i], 6) for i in sorted(p)], [round(q[i], 6) for i in sorted(q)]))
        print("PASS: %d requests, largest probability difference %.3g (tolerance %g)"
              % (len(requests), worst, TOLERANCE))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
