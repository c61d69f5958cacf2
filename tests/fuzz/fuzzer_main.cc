// libFuzzer entry point of one target; compiled once per target with
// MMFUSE_FUZZ_TARGET naming its function (see CMakeLists.txt).
#include <cstddef>
#include <cstdint>

#include "google/protobuf/stubs/logging.h"
#include "tests/fuzz/fuzz_targets.h"

// Protobuf logs every malformed string field it parses (invalid UTF-8 is a
// fuzzer's daily bread); the log would drown libFuzzer's own output.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mmfuse::fuzz::MMFUSE_FUZZ_TARGET(data, size);
  return 0;
}
