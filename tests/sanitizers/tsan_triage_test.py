#!/usr/bin/python3
"""tsan_triage.py on made-up reports of each kind it judges: a race between
two of our accesses and a use-after-free fail; a race with gRPC's code on
one side (also behind a generated message's destructor), or LibTorch's
kernels on both, is a handoff."""
import os
import subprocess
import sys
import tempfile

TRIAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tsan_triage.py")

RACE = """==================
WARNING: ThreadSanitizer: data race (pid=1)
  Write of size 8 at 0x1 by thread T1:
{first}

  Previous read of size 8 at 0x1 by thread T2:
{second}

SUMMARY: ThreadSanitizer: data race
==================
"""
OURS_A = "    #0 mmfuse::server::Batcher::Run() /src/batching/batcher.cc:10 (x+0x1)"
OURS_B = "    #0 mmfuse::server::Stats() /src/server/metrics.cc:20 (x+0x2)"
GRPC = "    #0 memcpy (libtsan.so.2+0x1)\n    #1 grpc_core::Foo() <null> (libgrpc.so.29+0x1)"
MESSAGE_FREED_BY_GRPC = (
    "    #0 operator delete(void*, unsigned long) (libtsan.so.2+0x86c3d)\n"
    "    #1 mmfuse::v1::ClassifyRequest::SharedDtor() <null> (mmfuse-server+0x1)\n"
    "    #2 grpc::internal::DefaultMessageHolder<A, B>::Release() <null> (mmfuse-server+0x2)")
# Two workers meeting in oneDNN's primitive cache inside a forward.
ONEDNN_READ = (
    "    #0 memcmp (libtsan.so.2+0x63d04)\n"
    "    #1 <null> <null> (libdnnl.so.2+0x1893ea)\n"
    "    #2 mmfuse::model::TransformerLayerImpl::forward() /src/model/transformer_layer.cc:30 (x+0x3)")
ONEDNN_ALLOC = (
    "    #0 posix_memalign (libtsan.so.2+0x3ef28)\n"
    "    #1 <null> <null> (libdnnl.so.2+0x194c71)\n"
    "    #2 mmfuse::model::TransformerLayerImpl::forward() /src/model/transformer_layer.cc:30 (x+0x3)")
UNKNOWN = "    [failed to restore the stack]"
USE_AFTER_FREE = """==================
WARNING: ThreadSanitizer: heap-use-after-free (pid=1)
  Read of size 8 at 0x1 by thread T1:
{0}
==================
""".format(OURS_A)


def triage(*reports):
    with tempfile.NamedTemporaryFile("w", suffix=".tsan", delete=False) as f:
        f.write("".join(reports))
    try:
        done = subprocess.run([sys.executable, TRIAGE, f.name], capture_output=True, text=True)
        return done.returncode, done.stdout
    finally:
        os.unlink(f.name)


def main():
    failures = []

    def expect(what, reports, code, counts):
        rc, out = triage(*reports)
        if rc != code or counts not in out:
            failures.append("%s: exit %d, output:\n%s" % (what, rc, out))

    expect("ours against ours", [RACE.format(first=OURS_A, second=OURS_B)], 1,
           "1 report(s) to fix; 0 handoff(s)")
    expect("ours against gRPC", [RACE.format(first=OURS_A, second=GRPC)], 0,
           "0 report(s) to fix; 1 handoff(s)")
    expect("a message gRPC frees", [RACE.format(first=MESSAGE_FREED_BY_GRPC, second=UNKNOWN)],
           0, "0 report(s) to fix; 1 handoff(s)")
    expect("two workers in oneDNN's cache", [RACE.format(first=ONEDNN_READ, second=ONEDNN_ALLOC)],
           0, "0 report(s) to fix; 1 handoff(s)")
    expect("use-after-free", [USE_AFTER_FREE], 1, "1 report(s) to fix")
    expect("no report", [""], 0, "0 report(s) to fix; 0 handoff(s)")
    for failure in failures:
        print("FAIL " + failure)
    print("tsan_triage_test: %d of 6 cases failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
