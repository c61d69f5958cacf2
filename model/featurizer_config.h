// Featurizer parameters of a modality (ModalityConfig.featurizer): defaults,
// limits and output width. Torch-free, so the CLI's featurizers, the model
// config validation and the server share one definition
// (docs/FEATURES.md specifies the featurizers themselves).
#ifndef MMFUSE_MODEL_FEATURIZER_CONFIG_H_
#define MMFUSE_MODEL_FEATURIZER_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Defaults of zero fields (see model_config.proto).
inline constexpr uint32_t kDefaultSampleRate = 16000;
inline constexpr uint32_t kDefaultNfft = 512;
inline constexpr uint32_t kDefaultHopLength = 160;
inline constexpr uint32_t kDefaultNmels = 40;
inline constexpr float kDefaultLogFloor = 1e-10f;
inline constexpr float kDefaultMaxSeconds = 600.0f;
inline constexpr uint32_t kDefaultImageSize = 32;
inline constexpr uint32_t kDefaultPatchSize = 8;
inline constexpr float kDefaultFrameRate = 2.0f;
inline constexpr uint32_t kDefaultNgramMin = 3;
inline constexpr uint32_t kDefaultNgramMax = 5;
inline constexpr uint64_t kDefaultNumBuckets = 1u << 20;

// `featurizer` with every zero field replaced by its default; a text
// featurizer's dim 0 becomes `feature_dim`. Enums stay as given
// (UNSPECIFIED reads as the documented default).
v1::Featurizer ResolveFeaturizer(const v1::Featurizer& featurizer, uint32_t feature_dim);

// Checks a resolved featurizer against its limits; errors start with
// `where` (e.g. "modalities[0] (audio).featurizer") and name field, value
// and limit.
absl::Status ValidateFeaturizer(const v1::Featurizer& resolved, const std::string& where);

// Values per output frame of a resolved featurizer: n_mels * stack_frames
// (audio), patch_size^2 * channels (image), dim (text); 0 if none is set.
int64_t FeaturizerOutputDim(const v1::Featurizer& resolved);

// Patches per image frame of a resolved image featurizer.
int64_t PatchesPerFrame(const v1::ImageFeaturizer& resolved);

// Validates modality `index`'s featurizer, if it has one: limits, and output
// dim equal to its feature_dim.
absl::Status ValidateModalityFeaturizer(const v1::ModalityConfig& modality, int index);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_FEATURIZER_CONFIG_H_
