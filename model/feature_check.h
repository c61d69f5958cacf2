// Checks one modality's FeatureSequence against the model's limits: the
// same rules for requests (server/request_validator) and for training and
// evaluation data (model/trainer). No LibTorch.
#ifndef MMFUSE_MODEL_FEATURE_CHECK_H_
#define MMFUSE_MODEL_FEATURE_CHECK_H_

#include "absl/status/status.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// frames in [1, max_frames], dim equal to feature_dim, exactly one encoding
// of frames * dim values, every value finite. INVALID_ARGUMENT naming the
// field (features["<modality>"].frames, .dim, .data, .data_fp16), the value
// and the limit.
absl::Status ValidateFeatures(const v1::ModalityConfig& modality, const v1::FeatureSequence& seq);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_FEATURE_CHECK_H_
