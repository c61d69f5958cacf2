#include "server/request_validator.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fp16.h"
#include "model/model_config.h"

namespace mmfuse::server {
namespace {

std::string ModalityNames(const v1::ModelConfig& config) {
  std::vector<std::string> names;
  for (const v1::ModalityConfig& m : config.modalities()) names.push_back(m.name());
  return absl::StrJoin(names, ", ");
}

// Index of the first non-finite value, or -1.
int64_t FirstNonFinite(const v1::FeatureSequence& seq, int64_t values) {
  if (seq.data_size() > 0) {
    for (int64_t i = 0; i < values; ++i) {
      if (!std::isfinite(seq.data(i))) return i;
    }
  } else {
    for (int64_t i = 0; i < values; ++i) {
      if (!std::isfinite(HalfAt(seq.data_fp16().data(), i))) return i;
    }
  }
  return -1;
}

absl::Status ValidateSequence(const v1::ModalityConfig& modality, const v1::FeatureSequence& seq) {
  const std::string field = absl::StrCat("features[\"", modality.name(), "\"]");
  if (seq.frames() == 0 || seq.frames() > modality.max_frames()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".frames=", seq.frames(),
                                                   " is outside [1, max_frames=",
                                                   modality.max_frames(), "]"));
  }
  if (seq.dim() != modality.feature_dim()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".dim=", seq.dim(),
                                                   " does not match the model's feature_dim=",
                                                   modality.feature_dim()));
  }
  const int64_t values = static_cast<int64_t>(seq.frames()) * seq.dim();
  const bool has_fp32 = seq.data_size() > 0;
  const bool has_fp16 = !seq.data_fp16().empty();
  if (has_fp32 && has_fp16) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " sets both data and data_fp16; send exactly one"));
  }
  if (has_fp16) {
    if (static_cast<int64_t>(seq.data_fp16().size()) != 2 * values) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".data_fp16 has ", seq.data_fp16().size(), " bytes; frames*dim*2 = ",
          seq.frames(), "*", seq.dim(), "*2 = ", 2 * values));
    }
  } else if (seq.data_size() != values) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".data has ", seq.data_size(),
                                                   " values; frames*dim = ", seq.frames(), "*",
                                                   seq.dim(), " = ", values));
  }
  const int64_t bad = FirstNonFinite(seq, values);
  if (bad >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, has_fp16 ? ".data_fp16[" : ".data[", bad, "] (frame ", bad / seq.dim(),
        ") is not finite; values must not be NaN or Inf"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRequest(const v1::ModelConfig& config, int priority_levels,
                             const v1::ClassifyRequest& request) {
  if (request.request_id().size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id has ", request.request_id().size(),
                                                   " bytes, more than the limit of ",
                                                   kMaxRequestIdBytes));
  }
  if (request.features().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "features is empty: send at least one modality (the model takes ", ModalityNames(config),
        ")"));
  }
  // Check in model order so the first error reported is deterministic (map
  // iteration order is not).
  for (const auto& [name, seq] : request.features()) {
    if (model::ModalityIndex(config, name) < 0) {
      return absl::InvalidArgumentError(absl::StrCat("features[\"", name,
                                                     "\"]: unknown modality; the model takes ",
                                                     ModalityNames(config)));
    }
  }
  for (const v1::ModalityConfig& modality : config.modalities()) {
    auto it = request.features().find(modality.name());
    if (it == request.features().end()) continue;
    absl::Status status = ValidateSequence(modality, it->second);
    if (!status.ok()) return status;
  }
  if (request.top_k() > config.num_classes()) {
    return absl::InvalidArgumentError(absl::StrCat("top_k=", request.top_k(),
                                                   " exceeds the model's ", config.num_classes(),
                                                   " classes"));
  }
  const double max_gflops = request.budget().max_gflops();
  if (!std::isfinite(max_gflops) || max_gflops < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget.max_gflops=", max_gflops, " must be finite and >= 0"));
  }
  if (!v1::BudgetLevel_IsValid(request.budget().level())) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget.level=", request.budget().level(), " is not a BudgetLevel"));
  }
  if (request.priority() > static_cast<uint32_t>(priority_levels)) {
    return absl::InvalidArgumentError(absl::StrCat("priority=", request.priority(),
                                                   " exceeds the model's priority levels (",
                                                   priority_levels, "); 0 = default"));
  }
  return absl::OkStatus();
}

}  // namespace mmfuse::server
