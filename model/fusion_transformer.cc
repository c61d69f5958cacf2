#include "model/fusion_transformer.h"

#include <optional>

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/ones.h>
#include <ATen/ops/zeros.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

FusionTransformerImpl::FusionTransformerImpl(const v1::ModelConfig& config) : config_(config) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  frozen_encoders_ =
      config.fusion_mode() == v1::FUSION_MODE_PMF && config.pmf().train_prompts_only();
  for (const v1::ModalityConfig& m : config.modalities()) {
    Tokenizer tokenizer;
    const std::string prefix = absl::StrCat(m.name(), "_");
    tokenizer.projection =
        register_module(prefix + "projection", torch::nn::Linear(m.feature_dim(), d));
    tokenizer.cls =
        register_parameter(prefix + "cls", torch::nn::init::normal_(at::zeros({d}), 0, 0.02));
    tokenizer.positions = register_parameter(
        prefix + "positions",
        torch::nn::init::normal_(at::zeros({1 + static_cast<int64_t>(m.max_frames()), d}), 0, 0.02));
    tokenizer.layers =
        register_module(prefix + "layers", MakeLayers(t.unimodal_layers(), LayerOptions(t)));
    tokenizers_.push_back(std::move(tokenizer));
  }
  if (frozen_encoders_) {
    for (torch::Tensor& p : parameters()) p.requires_grad_(false);
  }
  fusion_ = register_module("fusion", MakeFusionModule(config));
}

Stream FusionTransformerImpl::Encode(int modality, const ModalityInput& input) {
  Tokenizer& tokenizer = tokenizers_[modality];
  const int64_t batch = input.features.size(0);
  const int64_t frames = input.features.size(1);
  const int64_t d = tokenizer.cls.size(0);
  TORCH_CHECK(frames < tokenizer.positions.size(0), config_.modalities(modality).name(), " has ",
              frames, " frames, more than max_frames=", tokenizer.positions.size(0) - 1);
  Stream stream;
  stream.padded = input.padded;
  if (input.padded) {
    stream.present = input.lengths > 0;
    torch::Tensor frame_padding =
        at::arange(frames, input.lengths.options()).unsqueeze(0) >= input.lengths.unsqueeze(1);
    // A sample without the modality has its CLS masked too.
    stream.padding = at::cat({(~stream.present).unsqueeze(1), frame_padding}, 1);
  } else {
    stream.present = at::ones({batch}, input.lengths.options().dtype(at::kBool));
    stream.padding = at::zeros({batch, frames + 1}, input.lengths.options().dtype(at::kBool));
  }
  torch::Tensor x = at::cat({tokenizer.cls.view({1, 1, d}).expand({batch, 1, d}),
                             CountedLinear(tokenizer.projection, input.features)},
                            1) +
                    tokenizer.positions.slice(0, 0, frames + 1);
  // Layers see no mask when there is no padding (the fused kernel's path).
  const torch::Tensor layer_padding = input.padded ? stream.padding : torch::Tensor();
  for (const auto& layer : *tokenizer.layers) {
    x = layer->as<TransformerLayer>()->forward(x, layer_padding);
  }
  stream.tokens = x;
  return stream;
}

std::vector<Stream> FusionTransformerImpl::EncodeAll(const std::vector<ModalityInput>& inputs) {
  TORCH_CHECK(inputs.size() == tokenizers_.size(), "expected ", tokenizers_.size(),
              " modality inputs, got ", inputs.size());
  std::vector<Stream> streams(inputs.size());
  bool any = false;
  std::optional<torch::NoGradGuard> frozen;
  if (frozen_encoders_) frozen.emplace();
  for (size_t m = 0; m < inputs.size(); ++m) {
    if (!inputs[m].features.defined()) continue;  // Absent: its encoder never runs.
    streams[m] = Encode(static_cast<int>(m), inputs[m]);
    any = true;
  }
  TORCH_CHECK(any, "a batch needs at least one present modality");
  return streams;
}

torch::Tensor FusionTransformerImpl::forward(const std::vector<ModalityInput>& inputs) {
  return fusion_->Fuse(EncodeAll(inputs));
}

FusionTransformerImpl::TrainingOutput FusionTransformerImpl::ForwardForTraining(
    const std::vector<ModalityInput>& inputs) {
  const std::vector<Stream> streams = EncodeAll(inputs);
  TrainingOutput out;
  out.fusion = fusion_->FuseForTraining(streams);
  for (const Stream& s : streams) {
    out.encoder_cls.push_back(s.defined() ? s.tokens.select(1, 0) : torch::Tensor());
    out.present.push_back(s.present);
  }
  return out;
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const torch::Tensor& p : module.parameters()) {
    if (p.requires_grad()) count += p.numel();
  }
  return count;
}

}  // namespace mmfuse::model
