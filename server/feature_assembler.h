// FeatureAssembler: builds one ClassifyRequest from the chunks of a feature
// stream (mmfuse.v1.FeatureChunk, see docs/STREAMS.md), checking every chunk
// as it arrives so that a bad or oversized stream is refused at the chunk
// that makes it so, not after it was buffered whole.
//
// Rules, per chunk (index i counts every chunk, from 0):
//   - only chunk 0 may carry `header`; a header-only chunk 0 carries no
//     frames, every other chunk carries frames >= 1 of one named modality;
//   - the modality must be one of the model's, `dim` its feature dim;
//   - a modality's frames arrive in order: `offset` (unless `append`) must
//     equal the frames received so far for it (no gaps, no overlaps), and
//     their total stays within the modality's max_frames;
//   - exactly one of `data` (frames*dim floats) and `data_fp16`
//     (frames*dim*2 bytes) carries the values, all finite, and a modality
//     keeps the encoding of its first chunk;
//   - at most Options::max_chunks chunks and Options::max_stream_bytes data
//     bytes (4 per float, 2 per half) per stream.
// Errors name the chunk and the field: INVALID_ARGUMENT for a malformed
// chunk or a model limit, RESOURCE_EXHAUSTED for a stream limit. After an
// error the assembler is spent (every later call fails FAILED_PRECONDITION).
//
// No gRPC, no LibTorch: the header fields are checked against the same
// rules as ClassifyRequest (request_id length, top_k, budget) when chunk 0
// arrives; priority is checked by the model's validation at half-close.
//
// Thread-safety: thread-compatible (one stream's reads are serialised).
#ifndef MMFUSE_SERVER_FEATURE_ASSEMBLER_H_
#define MMFUSE_SERVER_FEATURE_ASSEMBLER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::server {

class FeatureAssembler {
 public:
  struct Options {
    // Most data bytes one stream may carry (4 per float value, 2 per half
    // value), summed over its chunks. >= 1. Default 64 MiB.
    int64_t max_stream_bytes = int64_t{64} << 20;
    // Most chunks one stream may carry (a header-only chunk counts). >= 1.
    // Default 100000.
    int64_t max_chunks = 100000;
  };

  // Checks `options`; errors name the field and its limit.
  static absl::Status ValidateOptions(const Options& options);

  // `config` (the model the stream is routed to) is not owned and must
  // outlive the assembler. Fails only on invalid `options`.
  static absl::StatusOr<std::unique_ptr<FeatureAssembler>> Create(const v1::ModelConfig* config,
                                                                  const Options& options);

  // Checks chunk number chunks() and appends its frames (see the file
  // comment). On error nothing of the chunk is kept.
  absl::Status Add(const v1::FeatureChunk& chunk);

  // The request assembled so far (header fields and every frame received),
  // e.g. for an interim classification. Valid until the next Add or Finish.
  const v1::ClassifyRequest& request() const { return request_; }
  // The stream's header (default when chunk 0 carried none).
  const v1::StreamHeader& header() const { return header_; }
  // Chunks accepted so far.
  int64_t chunks() const { return chunks_; }
  // Frames accepted so far, summed over modalities.
  int64_t frames() const { return frames_; }
  // Data bytes accepted so far.
  int64_t bytes() const { return bytes_; }

  // Hands over the assembled request; INVALID_ARGUMENT when no chunk
  // carried frames. The assembler is spent afterwards.
  absl::StatusOr<v1::ClassifyRequest> Finish();

 private:
  // What is known of one modality of the stream, by model order.
  struct ModalityState {
    int64_t frames = 0;
    // 0 = no chunk yet, 1 = float32 `data`, 2 = fp16 `data_fp16`.
    int encoding = 0;
  };

  FeatureAssembler(const v1::ModelConfig* config, const Options& options);
  absl::Status Check(const v1::FeatureChunk& chunk, int* modality) const;
  absl::Status CheckHeader(const v1::StreamHeader& header) const;
  // Copies a checked header into header_ and request_.
  void TakeHeader(const v1::StreamHeader& header);

  const v1::ModelConfig* const config_;
  const Options options_;
  v1::ClassifyRequest request_;
  v1::StreamHeader header_;
  std::vector<ModalityState> modalities_;  // by model order
  int64_t chunks_ = 0;
  int64_t frames_ = 0;
  int64_t bytes_ = 0;
  bool spent_ = false;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_FEATURE_ASSEMBLER_H_
