#include "server/request_validator.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/feature_check.h"
#include "model/model_config.h"

namespace mmfuse::server {
namespace {

std::string ModalityNames(const v1::ModelConfig& config) {
  std::vector<std::string> names;
  for (const v1::ModalityConfig& m : config.modalities()) names.push_back(m.name());
  return absl::StrJoin(names, ", ");
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
    absl::Status status = model::ValidateFeatures(modality, it->second);
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
