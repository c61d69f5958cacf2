#include "model/training_util.h"

#include <unistd.h>

#include <ATen/ops/from_blob.h>

#include "absl/strings/str_cat.h"
#include "model/feature_check.h"
#include "model/model_config.h"

namespace mmfuse::model {

absl::Status CheckExamples(const v1::ModelConfig& config, const std::vector<v1::Example>& examples,
                           const char* which) {
  for (size_t i = 0; i < examples.size(); ++i) {
    const v1::Example& e = examples[i];
    if (e.label() >= config.num_classes()) {
      return absl::InvalidArgumentError(absl::StrCat(which, " example ", i, " (id ", e.id(),
                                                     "): label=", e.label(), " >= num_classes=",
                                                     config.num_classes()));
    }
    if (e.features().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(which, " example ", i, " is empty"));
    }
    for (const auto& [name, seq] : e.features()) {
      const int m = ModalityIndex(config, name);
      if (m < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(which, " example ", i, ": unknown modality \"", name, "\""));
      }
      const absl::Status valid = ValidateFeatures(config.modalities(m), seq);
      if (!valid.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(which, " example ", i, " (id ", e.id(), "): ", valid.message()));
      }
    }
  }
  return absl::OkStatus();
}

torch::Tensor Labels(const std::vector<const v1::Example*>& batch) {
  std::vector<int64_t> labels;
  for (const v1::Example* e : batch) labels.push_back(e->label());
  return at::from_blob(labels.data(), {static_cast<int64_t>(labels.size())}, at::kLong).clone();
}

std::vector<const FeatureMap*> Features(const std::vector<const v1::Example*>& batch) {
  std::vector<const FeatureMap*> features;
  for (const v1::Example* e : batch) features.push_back(&e->features());
  return features;
}

torch::Tensor Matrix(std::vector<float> values, int64_t rows, int64_t cols) {
  return at::from_blob(values.data(), {rows, cols}, at::kFloat).clone();
}

bool StderrIsTty() { return isatty(STDERR_FILENO) == 1; }

}  // namespace mmfuse::model
