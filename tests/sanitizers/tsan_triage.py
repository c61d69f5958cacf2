#!/usr/bin/python3
"""Sorts ThreadSanitizer reports from the server suites (tests/sanitizers/
tsan_server.sh) into the ones to fix and the ones TSan cannot judge.

  tests/sanitizers/tsan_triage.py REPORT_FILE...

gRPC 1.51 and Abseil are not instrumented: when gRPC hands a message or a
completion between its threads and ours, it synchronises with atomics and
futexes TSan cannot see, and TSan reports a race between the two sides. Such
a report has gRPC's (or Abseil's, or protobuf's) own code as one of the two
accesses. Debian's LibTorch and the kernels it calls (oneDNN, OpenBLAS,
SLEEF) are not instrumented either: two workers that create the same oneDNN
primitive at once meet in its cache, published with atomics TSan cannot
see (seen in a CI run: memcmp in libdnnl under its read lock against the
posix_memalign of the entry on the other worker). So, for each of the two access stacks, frames that only carry the
access (TSan's interceptors such as memcpy, the C++ library, Abseil headers
and code generated from our protos, which gRPC's (de)serialisers call) are
skipped, and the first frame left says whose access it is:

- a report whose accesses include one by gRPC, Abseil, protobuf or
  LibTorch code is a handoff TSan cannot see: counted, not failed;
- a data race between two accesses of our own code fails;
- every other kind of report (use-after-free, lock-order inversion, a
  mutex misuse, a thread leak, TSan's own CHECK) fails.

Exits 1 when any report fails, printing each; 0 otherwise, with the counts.
"""
import re
import sys

SKIP = (
    re.compile(r"\(libtsan\.so"),                      # interceptors: memcpy, sendmsg, new, ...
    re.compile(r"\(libstdc\+\+\.so|/usr/include/c\+\+/|#\d+ (std::|__gnu_cxx::)"),
    re.compile(r"/usr/include/absl/|#\d+ absl::"),
    re.compile(r"tests/testing/tsan_absl_mutex\.cc"),   # the annotating shim
    re.compile(r"/proto/\S+\.pb\.(cc|h):"),            # generated message code
    # ... also where TSan has no line for it (a message's SharedDtor).
    re.compile(r"#\d+ (?:mmfuse::v1|inference)::"
               r"(?!MultimodalClassifier::|GRPCInferenceService::)\w+::"),
)
# gRPC's, Abseil's, protobuf's and LibTorch's code: in their libraries, or
# templates from their headers instantiated (often without line info) in our
# executables.
LIBRARY_MODULE = re.compile(
    r"\((libgrpc|libgpr|libupb|libaddress_sorting|libabsl_|libprotobuf"
    r"|libtorch|libc10|libdnnl|libopenblas|libgomp|libsleef)[^ )]*\.so")
LIBRARY_SOURCE = re.compile(
    r"/usr/include/(grpcpp|grpc|google/protobuf)/"
    r"|#\d+ (?:[\w:]+(?: const)?\*? )*(grpc::|grpc_|gpr_|google::protobuf::"
    r"|inference::GRPCInferenceService::Stub"
    r"|mmfuse::v1::MultimodalClassifier::Stub|grpc::health::)")
FRAME = re.compile(r"^\s*#\d+ ")


def whose(stack):
    """'library', 'ours' or 'unknown' for one access stack's text."""
    for line in stack.splitlines():
        if not FRAME.match(line):
            continue
        if LIBRARY_MODULE.search(line):
            return "library"
        if any(p.search(line) for p in SKIP):
            continue
        return "library" if LIBRARY_SOURCE.search(line) else "ours"
    return "unknown"


def access_stacks(report):
    """The two access stacks of a race report (the blocks that say what was
    read or written)."""
    return re.findall(r"^ *(?:Previous )?(?:atomic )?(?:read|write) of size.*?(?=\n\s*\n|\Z)",
                      report, re.I | re.M | re.S)[:2]


def main(paths):
    tolerated = 0
    failed = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for chunk in text.split("==================\n")[0:]:
            m = re.search(r"(WARNING: ThreadSanitizer: ([^(\n]+)|ThreadSanitizer: CHECK failed.*)", chunk)
            if not m:
                continue
            kind = (m.group(2) or "CHECK failed").strip()
            if kind.startswith("data race"):
                sides = [whose(s) for s in access_stacks(chunk)]
                if "library" in sides:
                    tolerated += 1
                    continue
            failed.append((path, kind, chunk.strip()))
    for path, kind, chunk in failed:
        print("=== %s: %s\n%s\n" % (path, kind, chunk))
    print("tsan_triage: %d report(s) to fix; %d handoff(s) through uninstrumented "
          "gRPC/Abseil/protobuf/LibTorch code not judged" % (len(failed), tolerated))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
