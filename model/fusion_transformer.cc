#include "model/fusion_transformer.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/zeros.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"

namespace mmfuse::model {
namespace {

TransformerLayerOptions LayerOptions(const v1::TransformerConfig& t) {
  TransformerLayerOptions options;
  options.d_model = t.d_model();
  options.num_heads = t.num_heads();
  options.ff_dim = t.ff_dim();
  options.dropout = t.dropout();
  return options;
}

// [B, T] bool, true at frames >= the sample's length.
torch::Tensor PaddingMask(const torch::Tensor& lengths, int64_t frames) {
  return at::arange(frames, lengths.options()).unsqueeze(0) >= lengths.unsqueeze(1);
}

}  // namespace

FusionTransformerImpl::FusionTransformerImpl(const v1::ModelConfig& config) : config_(config) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  for (const v1::ModalityConfig& m : config.modalities()) {
    ModalityEncoder encoder;
    const std::string prefix = absl::StrCat(m.name(), "_");
    encoder.projection = register_module(prefix + "projection",
                                         torch::nn::Linear(m.feature_dim(), d));
    encoder.positions = register_parameter(
        prefix + "positions", torch::nn::init::normal_(at::zeros({m.max_frames(), d}), 0, 0.02));
    encoder.embedding = register_parameter(
        prefix + "embedding", torch::nn::init::normal_(at::zeros({d}), 0, 0.02));
    encoder.layers = register_module(prefix + "layers", torch::nn::ModuleList());
    for (uint32_t i = 0; i < t.unimodal_layers(); ++i) {
      encoder.layers->push_back(TransformerLayer(LayerOptions(t)));
    }
    encoders_.push_back(std::move(encoder));
  }
  cls_ = register_parameter("cls", torch::nn::init::normal_(at::zeros({d}), 0, 0.02));
  fusion_layers_ = register_module("fusion_layers", torch::nn::ModuleList());
  for (uint32_t i = 0; i < t.fusion_layers(); ++i) {
    fusion_layers_->push_back(TransformerLayer(LayerOptions(t)));
  }
  final_norm_ = register_module("final_norm",
                                torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  head_ = register_module("head", torch::nn::Linear(d, config.num_classes()));
}

torch::Tensor FusionTransformerImpl::forward(const std::vector<ModalityInput>& inputs) {
  TORCH_CHECK(inputs.size() == encoders_.size(), "expected ", encoders_.size(),
              " modality inputs, got ", inputs.size());
  std::vector<torch::Tensor> tokens;
  std::vector<torch::Tensor> padding;
  int64_t batch = -1;
  for (size_t m = 0; m < inputs.size(); ++m) {
    const ModalityInput& input = inputs[m];
    if (!input.features.defined()) continue;  // Absent: its encoder never runs.
    ModalityEncoder& encoder = encoders_[m];
    const int64_t frames = input.features.size(1);
    TORCH_CHECK(frames <= encoder.positions.size(0), config_.modalities(m).name(),
                " has ", frames, " frames, more than max_frames=", encoder.positions.size(0));
    batch = input.features.size(0);
    torch::Tensor x = encoder.projection(input.features) +
                      encoder.positions.slice(0, 0, frames) + encoder.embedding;
    torch::Tensor mask = PaddingMask(input.lengths, frames);
    for (const auto& layer : *encoder.layers) {
      x = layer->as<TransformerLayer>()->forward(x, mask);
    }
    tokens.push_back(x);
    padding.push_back(mask);
  }
  TORCH_CHECK(batch > 0, "a batch needs at least one present modality");

  const int64_t d = cls_.size(0);
  tokens.insert(tokens.begin(), cls_.view({1, 1, d}).expand({batch, 1, d}));
  padding.insert(padding.begin(),
                 at::zeros({batch, 1}, padding.front().options()));  // CLS is never padding.
  torch::Tensor x = at::cat(tokens, 1);
  torch::Tensor mask = at::cat(padding, 1);
  for (const auto& layer : *fusion_layers_) {
    x = layer->as<TransformerLayer>()->forward(x, mask);
  }
  return head_(final_norm_(x.select(1, 0)));
}

int64_t CountParameters(const torch::nn::Module& module) {
  int64_t count = 0;
  for (const torch::Tensor& p : module.parameters()) {
    if (p.requires_grad()) count += p.numel();
  }
  return count;
}

}  // namespace mmfuse::model
