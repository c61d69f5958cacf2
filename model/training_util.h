// Pieces shared by the training stages (trainer.cc, joint_finetune.cc,
// gate_sweep.cc): example checks, batch assembly and the progress line.
// Internal to model/; carries LibTorch.
#ifndef MMFUSE_MODEL_TRAINING_UTIL_H_
#define MMFUSE_MODEL_TRAINING_UTIL_H_

#include <vector>

#include <torch/types.h>

#include "absl/status/status.h"
#include "model/collate.h"
#include "mmfuse/v1/dataset.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Labels in range, no empty example, every modality known and well-formed;
// the error names `which` set ("train", "eval"), the example and the field.
absl::Status CheckExamples(const v1::ModelConfig& config, const std::vector<v1::Example>& examples,
                           const char* which);

// The labels of a batch as an int64 tensor [B].
torch::Tensor Labels(const std::vector<const v1::Example*>& batch);

// The feature maps of a batch, for Collate.
std::vector<const FeatureMap*> Features(const std::vector<const v1::Example*>& batch);

// A tensor [rows, cols] from row-major floats.
torch::Tensor Matrix(std::vector<float> values, int64_t rows, int64_t cols);

// Progress lines are rewritten in place only on a terminal.
bool StderrIsTty();

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_TRAINING_UTIL_H_
