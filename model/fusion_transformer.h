// FusionTransformer: the multimodal classifier.
//
// Each modality m is tokenised (a linear projection of its frames behind a
// learned CLS token, plus learned positions) and runs `unimodal_layers`
// layers of its own; then the fusion mode of the config (fusion_modes.h)
// lets the modalities meet and produces the logits.
//
// A modality may be absent for the whole batch (its encoder never runs) or
// for some samples (length 0: its tokens are padding), so every sample is
// answered from what it has. Thread-safety: forward() is safe to call
// concurrently in eval mode under InferenceMode (no state is mutated).
#ifndef MMFUSE_MODEL_FUSION_TRANSFORMER_H_
#define MMFUSE_MODEL_FUSION_TRANSFORMER_H_

#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "model/fusion_modes.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// One modality of a batch.
struct ModalityInput {
  // [B, T, feature_dim] float32, zero beyond each sample's length. Undefined =
  // the modality is absent from every sample of the batch.
  torch::Tensor features;
  // [B] int64 frame counts in [0, T]; 0 = absent from that sample.
  torch::Tensor lengths;
  // Whether some sample is shorter than T or lacks the modality. false
  // (every length is T, known on the host at collation) lets the encoder
  // skip its key-padding masks; true is always correct.
  bool padded = true;
};

class FusionTransformerImpl : public torch::nn::Module {
 public:
  // `config` must have passed ValidateModelConfig.
  explicit FusionTransformerImpl(const v1::ModelConfig& config);

  // inputs: one per config modality, in model order. Every sample must have
  // at least one frame in some modality. Returns logits [B, num_classes].
  torch::Tensor forward(const std::vector<ModalityInput>& inputs);

  // What training needs of one forward pass: the fusion mode's output and,
  // per modality, its class token after the unimodal layers ([B, D];
  // undefined where the modality is absent from the batch) and which samples
  // have it ([B] bool), for auxiliary per-modality heads.
  struct TrainingOutput {
    FusionOutput fusion;
    std::vector<torch::Tensor> encoder_cls;
    std::vector<torch::Tensor> present;
  };
  TrainingOutput ForwardForTraining(const std::vector<ModalityInput>& inputs);

 private:
  std::vector<Stream> EncodeAll(const std::vector<ModalityInput>& inputs);
  struct Tokenizer {
    torch::nn::Linear projection{nullptr};
    torch::Tensor cls;        // [D]
    torch::Tensor positions;  // [1 + max_frames, D]: CLS first.
    torch::nn::ModuleList layers{nullptr};
  };
  Stream Encode(int modality, const ModalityInput& input);

  v1::ModelConfig config_;
  std::vector<Tokenizer> tokenizers_;
  std::shared_ptr<FusionModule> fusion_;
  // PMF's frozen backbone: tokenizers and unimodal layers build no graph.
  bool frozen_encoders_ = false;
};
TORCH_MODULE(FusionTransformer);

// Trainable parameters of `module`.
int64_t CountParameters(const torch::nn::Module& module);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_FUSION_TRANSFORMER_H_
