#include "model/feature_check.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/fp16.h"

namespace mmfuse::model {
namespace {

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

}  // namespace

absl::Status ValidateFeatures(const v1::ModalityConfig& modality, const v1::FeatureSequence& seq) {
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

}  // namespace mmfuse::model
