// ModelPackage: a directory holding a trained model.
//   config.pbtxt  ModelConfig in protobuf text format
//   weights.pt    LibTorch-serialised parameters of the MultimodalModel
//                 (one expert per branch, and the gate)
//   labels.txt    one class name per line, num_classes lines
// Load refuses a package whose parts disagree (missing file, truncated or
// mismatched weights, wrong label count) with an error naming the part.
//
// A loaded package is immutable and shared (shared_ptr) by in-flight batches.
#ifndef MMFUSE_MODEL_MODEL_PACKAGE_H_
#define MMFUSE_MODEL_MODEL_PACKAGE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/cuda_graphs.h"
#include "model/multimodal_model.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

struct ModelPackage {
  v1::ModelConfig config;
  std::vector<std::string> labels;
  MultimodalModel model{nullptr};
  // Where the model's parameters live and its batches run, and the number
  // format they compute in (MoveToDevice).
  torch::Device device{torch::kCPU};
  torch::Dtype dtype = torch::kFloat;
  // Set by EnableCudaGraphs: forwards replay CUDA graphs (model/cuda_graphs.h).
  std::shared_ptr<CudaGraphCache> cuda_graphs;
};

// A fresh package with randomly initialised weights (seeded by the caller's
// torch::manual_seed). `config` must be valid; labels default to "class_<i>".
absl::StatusOr<std::shared_ptr<ModelPackage>> NewModelPackage(
    const v1::ModelConfig& config, std::vector<std::string> labels = {});

// Copies parameters of `from` into `to` by name: with no `prefixes`, every
// parameter of `to` (e.g. the same architecture with other trainable flags);
// otherwise those whose names start with one of them (e.g.
// "expert_full.audio_" for the audio tokenizer and unimodal layers of the
// single-branch expert, to start a fusion model from a unimodal one). A
// prefix "A=B" copies `from`'s A... into `to`'s B... (e.g.
// "expert_full.audio_=expert_audio.audio_" into a gated package's audio
// expert). An error names the first parameter missing or misshapen in
// `from`, or a prefix that names no parameter of `to`.
absl::Status CopyWeights(const ModelPackage& from, ModelPackage* to,
                         const std::vector<std::string>& prefixes = {});

// Moves the model's parameters to `device` (a resolved spec, model/device.h:
// "cpu", "cuda:N") in `precision` ("fp32", "bf16", "fp16"; CheckPrecision);
// inference then collates each batch on the host and copies it there. For
// serving: a package moved off fp32 is not for training or saving.
absl::Status MoveToDevice(ModelPackage* package, const std::string& device,
                          const std::string& precision = "fp32");

// Serves the package's forwards through CUDA graphs from now on (call after
// MoveToDevice, before serving). FAILED_PRECONDITION on the CPU or in a
// build without CUDA, saying which.
absl::Status EnableCudaGraphs(ModelPackage* package);

// Loads `dir` (the weights through host memory, wherever they were saved
// from), puts the model in eval mode and moves it to `device` in
// `precision`.
absl::StatusOr<std::shared_ptr<ModelPackage>> LoadModelPackage(
    const std::string& dir, const std::string& device = "cpu",
    const std::string& precision = "fp32");

// Writes the three files into `dir` (created if needed), each through a
// temporary file renamed into place, so a reader never sees half a package.
absl::Status SaveModelPackage(const ModelPackage& package, const std::string& dir);

// Replaces `dir`/config.pbtxt with `config` (validated first; written to a
// temporary file, then renamed over it), leaving weights and labels as they
// are: for settings that do not change the weights' shapes, such as
// batching after `mmfuse tune`.
absl::Status RewriteModelConfig(const std::string& dir, const v1::ModelConfig& config);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_MODEL_PACKAGE_H_
