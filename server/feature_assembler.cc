#include "server/feature_assembler.h"

#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fp16.h"
#include "server/request_validator.h"

namespace mmfuse::server {
namespace {

constexpr int kFloat32 = 1;
constexpr int kFloat16 = 2;

std::string ModalityNames(const v1::ModelConfig& config) {
  std::vector<std::string> names;
  for (const v1::ModalityConfig& m : config.modalities()) names.push_back(m.name());
  return absl::StrJoin(names, ", ");
}

int ModalityIndex(const v1::ModelConfig& config, const std::string& name) {
  for (int m = 0; m < config.modalities_size(); ++m) {
    if (config.modalities(m).name() == name) return m;
  }
  return -1;
}

const char* EncodingField(int encoding) { return encoding == kFloat16 ? "data_fp16" : "data"; }

}  // namespace

absl::Status FeatureAssembler::ValidateOptions(const Options& options) {
  if (options.max_stream_bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_stream_bytes=", options.max_stream_bytes, " must be >= 1"));
  }
  if (options.max_chunks < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_chunks=", options.max_chunks, " must be >= 1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<FeatureAssembler>> FeatureAssembler::Create(
    const v1::ModelConfig* config, const Options& options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  return std::unique_ptr<FeatureAssembler>(new FeatureAssembler(config, options));
}

FeatureAssembler::FeatureAssembler(const v1::ModelConfig* config, const Options& options)
    : config_(config), options_(options), modalities_(config->modalities_size()) {}

absl::Status FeatureAssembler::CheckHeader(const v1::StreamHeader& header) const {
  if (header.request_id().size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk 0: header.request_id has ", header.request_id().size(),
        " bytes, more than the limit of ", kMaxRequestIdBytes));
  }
  if (header.top_k() > config_->num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat("chunk 0: header.top_k=", header.top_k(),
                                                   " exceeds the model's ",
                                                   config_->num_classes(), " classes"));
  }
  const double max_gflops = header.budget().max_gflops();
  if (!std::isfinite(max_gflops) || max_gflops < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk 0: header.budget.max_gflops=", max_gflops, " must be finite and >= 0"));
  }
  if (!v1::BudgetLevel_IsValid(header.budget().level())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk 0: header.budget.level=", header.budget().level(), " is not a BudgetLevel"));
  }
  return absl::OkStatus();
}

// Everything about the chunk but the byte and finiteness checks of its data,
// in the order a client would fix them. Sets `*modality` (model order) for a
// chunk carrying frames, -1 for a header-only one.
absl::Status FeatureAssembler::Check(const v1::FeatureChunk& chunk, int* modality) const {
  const int64_t i = chunks_;
  *modality = -1;
  if (i >= options_.max_chunks) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "chunk ", i, ": the stream exceeds max_stream_chunks=", options_.max_chunks));
  }
  if (chunk.has_header()) {
    if (i > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk ", i, ": header is set; only the stream's first chunk (chunk 0) may carry it"));
    }
    absl::Status header = CheckHeader(chunk.header());
    if (!header.ok()) return header;
  }
  const bool has_data = chunk.data_size() > 0 || !chunk.data_fp16().empty();
  if (chunk.frames() == 0) {
    if (i == 0 && chunk.has_header() && chunk.modality().empty() && !has_data) {
      return absl::OkStatus();  // Header only.
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": frames=0; every chunk but a header-only first chunk carries frames"));
  }
  if (chunk.modality().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": modality is empty; name the modality of the ", chunk.frames(),
        " frames (the model takes ", ModalityNames(*config_), ")"));
  }
  const int m = ModalityIndex(*config_, chunk.modality());
  const std::string field = absl::StrCat("features[\"", chunk.modality(), "\"]");
  if (m < 0) {
    return absl::InvalidArgumentError(absl::StrCat("chunk ", i, ": ", field,
                                                   ": unknown modality; the model takes ",
                                                   ModalityNames(*config_)));
  }
  const v1::ModalityConfig& config = config_->modalities(m);
  const ModalityState& state = modalities_[m];
  if (chunk.dim() != config.feature_dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk ", i, ": ", field, ".dim=", chunk.dim(),
                     " does not match the model's feature_dim=", config.feature_dim()));
  }
  if (!chunk.append() && chunk.offset() != state.frames) {
    if (chunk.offset() > state.frames) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk ", i, ": ", field, " offset=", chunk.offset(), " leaves a gap after frame ",
          state.frames, " (frames [", state.frames, ", ", chunk.offset(),
          ") never sent; the next offset must be ", state.frames, ")"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": ", field, " offset=", chunk.offset(), " overlaps frames [",
        chunk.offset(), ", ", state.frames, ") already received; the next offset must be ",
        state.frames));
  }
  const int64_t total = state.frames + chunk.frames();
  if (total > config.max_frames()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": ", field, " frames=", chunk.frames(), " brings the modality to ", total,
        " frames, more than max_frames=", config.max_frames()));
  }
  const bool has_fp32 = chunk.data_size() > 0;
  const bool has_fp16 = !chunk.data_fp16().empty();
  if (has_fp32 && has_fp16) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": ", field, " sets both data and data_fp16; send exactly one"));
  }
  const int64_t values = static_cast<int64_t>(chunk.frames()) * chunk.dim();
  if (has_fp16) {
    if (static_cast<int64_t>(chunk.data_fp16().size()) != 2 * values) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk ", i, ": ", field, ".data_fp16 has ", chunk.data_fp16().size(),
          " bytes; frames*dim*2 = ", chunk.frames(), "*", chunk.dim(), "*2 = ", 2 * values));
    }
  } else if (chunk.data_size() != values) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": ", field, ".data has ", chunk.data_size(), " values; frames*dim = ",
        chunk.frames(), "*", chunk.dim(), " = ", values));
  }
  const int encoding = has_fp16 ? kFloat16 : kFloat32;
  if (state.encoding != 0 && encoding != state.encoding) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk ", i, ": ", field, " sends ", EncodingField(encoding), " but its earlier chunks sent ",
        EncodingField(state.encoding), "; keep one encoding per modality"));
  }
  *modality = m;
  return absl::OkStatus();
}

absl::Status FeatureAssembler::Add(const v1::FeatureChunk& chunk) {
  if (spent_) {
    return absl::FailedPreconditionError(
        absl::StrCat("chunk ", chunks_, ": the stream already failed or finished"));
  }
  int m = -1;
  absl::Status status = Check(chunk, &m);
  if (!status.ok()) {
    spent_ = true;
    return status;
  }
  const int64_t i = chunks_;
  if (m < 0) {
    TakeHeader(chunk.header());
    ++chunks_;
    return absl::OkStatus();
  }
  const bool fp16 = !chunk.data_fp16().empty();
  const int64_t chunk_bytes =
      fp16 ? static_cast<int64_t>(chunk.data_fp16().size()) : int64_t{4} * chunk.data_size();
  if (bytes_ + chunk_bytes > options_.max_stream_bytes) {
    spent_ = true;
    return absl::ResourceExhaustedError(absl::StrCat(
        "chunk ", i, ": the stream's data would reach ", bytes_ + chunk_bytes,
        " bytes, more than max_stream_bytes=", options_.max_stream_bytes));
  }
  const std::string& name = chunk.modality();
  const int64_t values = static_cast<int64_t>(chunk.frames()) * chunk.dim();
  for (int64_t v = 0; v < values; ++v) {
    const float value = fp16 ? HalfAt(chunk.data_fp16().data(), v) : chunk.data(v);
    if (!std::isfinite(value)) {
      spent_ = true;
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk ", i, ": features[\"", name, "\"].", fp16 ? "data_fp16[" : "data[", v,
          "] (frame ", modalities_[m].frames + v / chunk.dim(),
          " of the modality) is not finite; values must not be NaN or Inf"));
    }
  }

  // Only a chunk accepted whole keeps its header.
  if (chunk.has_header()) TakeHeader(chunk.header());
  ModalityState& state = modalities_[m];
  v1::FeatureSequence& seq = (*request_.mutable_features())[name];
  seq.set_dim(chunk.dim());
  if (fp16) {
    seq.mutable_data_fp16()->append(chunk.data_fp16());
  } else {
    seq.mutable_data()->Add(chunk.data().begin(), chunk.data().end());
  }
  state.frames += chunk.frames();
  state.encoding = fp16 ? kFloat16 : kFloat32;
  seq.set_frames(static_cast<uint32_t>(state.frames));
  frames_ += chunk.frames();
  bytes_ += chunk_bytes;
  ++chunks_;
  return absl::OkStatus();
}

void FeatureAssembler::TakeHeader(const v1::StreamHeader& header) {
  header_ = header;
  request_.set_request_id(header_.request_id());
  request_.set_model(header_.model());
  request_.set_top_k(header_.top_k());
  if (header_.has_budget()) *request_.mutable_budget() = header_.budget();
  request_.set_priority(header_.priority());
}

absl::StatusOr<v1::ClassifyRequest> FeatureAssembler::Finish() {
  if (spent_) {
    return absl::FailedPreconditionError("the stream already failed or finished");
  }
  spent_ = true;
  if (frames_ == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the stream ended after ", chunks_,
        " chunk(s) without frames: send at least one chunk of features (the model takes ",
        ModalityNames(*config_), ")"));
  }
  return std::move(request_);
}

}  // namespace mmfuse::server
