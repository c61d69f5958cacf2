// MultimodalModel: what a model package holds. One expert FusionTransformer
// per branch (each over its branch's modalities) and, with several branches,
// the gate that picks one per sample (DynMM). Only the chosen branch's expert
// runs: the encoders of the modalities it skips never see the batch.
#ifndef MMFUSE_MODEL_MULTIMODAL_MODEL_H_
#define MMFUSE_MODEL_MULTIMODAL_MODEL_H_

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "model/fusion_transformer.h"
#include "model/model_config.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Per-modality summaries (mean, or mean and max, over real frames of a
// linear projection; GateConfig.pooling) and presence flags -> branch logits
// through a two-layer MLP. Its cost is counted by GateMacs.
class GateImpl : public torch::nn::Module {
 public:
  GateImpl(const v1::ModelConfig& config, int num_branches);
  // inputs: one per config modality (undefined = absent). -> [B, branches].
  torch::Tensor forward(const std::vector<ModalityInput>& inputs);

 private:
  bool mean_max_;
  std::vector<torch::nn::Linear> summaries_;
  torch::nn::Linear hidden_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Gate);

class MultimodalModelImpl : public torch::nn::Module {
 public:
  // `config` must have passed ValidateModelConfig.
  explicit MultimodalModelImpl(const v1::ModelConfig& config);

  int num_branches() const { return static_cast<int>(experts_.size()); }
  bool has_gate() const { return !gate_.is_empty(); }
  FusionTransformer& expert(int branch) { return experts_[branch]; }
  Gate& gate() { return gate_; }

  // Logits [B, classes] of `branch`'s expert. `inputs` has one entry per
  // config modality; only the branch's are read.
  torch::Tensor forward(const std::vector<ModalityInput>& inputs, int branch);

 private:
  std::vector<Branch> branches_;
  std::vector<FusionTransformer> experts_;
  Gate gate_{nullptr};
};
TORCH_MODULE(MultimodalModel);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_MULTIMODAL_MODEL_H_
