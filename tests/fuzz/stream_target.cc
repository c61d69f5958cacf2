// Feature-stream assembly: the chunks of a StreamFeatures call, one by one,
// into a FeatureAssembler, as server/classifier_service.cc feeds them.
#include <algorithm>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/check.h"
#include "google/protobuf/io/coded_stream.h"
#include "server/feature_assembler.h"
#include "server/request_validator.h"
#include "tests/fuzz/fuzz_targets.h"

namespace mmfuse::fuzz {
namespace {

// Chunks beyond this are not read: longer streams only repeat what the
// per-chunk checks already cover, and slow the fuzzer down.
constexpr int kMaxChunksRead = 256;

}  // namespace

void RunStreamTarget(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t flags = data[0];
  server::FeatureAssembler::Options options;
  if (flags & 1) options.max_chunks = 3;
  if (flags & 2) options.max_stream_bytes = 64;
  const v1::ModelConfig& config = FuzzModelConfig();
  absl::StatusOr<std::unique_ptr<server::FeatureAssembler>> assembler =
      server::FeatureAssembler::Create(&config, options);
  MMFUSE_CHECK(assembler.ok(), assembler.status().ToString());

  google::protobuf::io::CodedInputStream in(data + 1, static_cast<int>(size - 1));
  bool failed = false;
  for (int read = 0; read < kMaxChunksRead && !failed; ++read) {
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) break;
    std::string bytes;
    if (!in.ReadString(&bytes, static_cast<int>(std::min<uint32_t>(length, 1u << 20)))) break;
    v1::FeatureChunk chunk;
    if (!chunk.ParseFromString(bytes)) break;

    const int64_t chunks_before = (*assembler)->chunks();
    const int64_t frames_before = (*assembler)->frames();
    const int64_t bytes_before = (*assembler)->bytes();
    const absl::Status added = (*assembler)->Add(chunk);
    if (!added.ok()) {
      MMFUSE_CHECK(added.code() == absl::StatusCode::kInvalidArgument ||
                       added.code() == absl::StatusCode::kResourceExhausted,
                   added.ToString());
      // "Nothing of the chunk is kept" and the assembler is spent.
      MMFUSE_CHECK((*assembler)->chunks() == chunks_before &&
                       (*assembler)->frames() == frames_before &&
                       (*assembler)->bytes() == bytes_before,
                   "a refused chunk changed the assembler");
      MMFUSE_CHECK(chunks_before > 0 || ((*assembler)->header().ByteSizeLong() == 0 &&
                                         (*assembler)->request().ByteSizeLong() == 0),
                   "a refused first chunk left its header in the assembler");
      MMFUSE_CHECK((*assembler)->Add(chunk).code() == absl::StatusCode::kFailedPrecondition,
                   "an assembler must refuse everything after an error");
      failed = true;
      break;
    }
    MMFUSE_CHECK((*assembler)->chunks() == chunks_before + 1, "chunk count");
    MMFUSE_CHECK((*assembler)->frames() == frames_before + chunk.frames(), "frame count");
    MMFUSE_CHECK((*assembler)->chunks() <= options.max_chunks, "max_chunks exceeded");
    MMFUSE_CHECK((*assembler)->bytes() <= options.max_stream_bytes, "max_stream_bytes exceeded");
  }
  if (failed) return;

  absl::StatusOr<v1::ClassifyRequest> request = (*assembler)->Finish();
  if (!request.ok()) {
    MMFUSE_CHECK(request.status().code() == absl::StatusCode::kInvalidArgument,
                 request.status().ToString());
    return;
  }
  // Priority is left to the model's own levels at half-close; everything
  // else the assembler accepted must be a valid request.
  request->set_priority(0);
  const absl::Status valid = server::ValidateRequest(config, 0, *request);
  MMFUSE_CHECK(valid.ok(), "the assembler accepted a stream whose request is invalid: " +
                               valid.ToString());
}

}  // namespace mmfuse::fuzz
