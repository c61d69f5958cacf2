"""Python modules of mmfuse's API (proto/mmfuse/v1), generated at import time.

protoc (Debian's protobuf-compiler 3.21, matching python3-protobuf 4.21)
writes them into a private temporary directory once per process, so the
peer never runs against stale generated code and nothing generated lands in
the source tree. Import the modules from here:

    from peer_protos import classifier_pb2, features_pb2, model_config_pb2
"""
import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(_ROOT, "proto")
_FILES = ["classifier", "dataset", "features", "model_config"]


def _generate():
    protoc = shutil.which("protoc")
    if protoc is None:
        sys.exit("peer: protoc not found: install Debian's protobuf-compiler")
    out = tempfile.mkdtemp(prefix="mmfuse-peer-proto-")
    atexit.register(shutil.rmtree, out, True)
    sources = [os.path.join(PROTO_DIR, "mmfuse", "v1", f + ".proto") for f in _FILES]
    result = subprocess.run([protoc, "-I", PROTO_DIR, "--python_out", out] + sources,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit("peer: protoc failed on %s: %s" % (PROTO_DIR, result.stderr.strip()))
    sys.path.insert(0, out)


_generate()
classifier_pb2 = importlib.import_module("mmfuse.v1.classifier_pb2")
dataset_pb2 = importlib.import_module("mmfuse.v1.dataset_pb2")
features_pb2 = importlib.import_module("mmfuse.v1.features_pb2")
model_config_pb2 = importlib.import_module("mmfuse.v1.model_config_pb2")
