// FusionTransformer: the multimodal classifier.
//
// Each modality m is tokenised by a linear projection of its frames plus a
// learned position embedding and a modality embedding, then runs
// `unimodal_layers` layers of its own. Fusion (mode "concat"): a CLS token and
// every modality's tokens are concatenated and run `fusion_layers` joint
// self-attention layers; the CLS token, normalised, feeds a linear head.
//
// A modality may be absent for the whole batch (its encoder never runs) or for
// some samples (length 0: its tokens are padding), so every sample is answered
// from what it has. Thread-safety: forward() is safe to call concurrently in
// eval mode under InferenceMode (no state is mutated).
#ifndef MMFUSE_MODEL_FUSION_TRANSFORMER_H_
#define MMFUSE_MODEL_FUSION_TRANSFORMER_H_

#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "model/transformer_layer.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// One modality of a batch.
struct ModalityInput {
  // [B, T, feature_dim] float32, zero beyond each sample's length. Undefined =
  // the modality is absent from every sample of the batch.
  torch::Tensor features;
  // [B] int64 frame counts in [0, T]; 0 = absent from that sample.
  torch::Tensor lengths;
};

class FusionTransformerImpl : public torch::nn::Module {
 public:
  // `config` must have passed ValidateModelConfig.
  explicit FusionTransformerImpl(const v1::ModelConfig& config);

  // inputs: one per config modality, in model order. Every sample must have
  // at least one frame in some modality. Returns logits [B, num_classes].
  torch::Tensor forward(const std::vector<ModalityInput>& inputs);

 private:
  struct ModalityEncoder {
    torch::nn::Linear projection{nullptr};
    torch::Tensor positions;  // [max_frames, D]
    torch::Tensor embedding;  // [D]
    torch::nn::ModuleList layers{nullptr};
  };

  v1::ModelConfig config_;
  std::vector<ModalityEncoder> encoders_;
  torch::Tensor cls_;  // [D]
  torch::nn::ModuleList fusion_layers_{nullptr};
  torch::nn::LayerNorm final_norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(FusionTransformer);

// Trainable parameters of `module`.
int64_t CountParameters(const torch::nn::Module& module);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_FUSION_TRANSFORMER_H_
