// Factory, shared helpers, and the two baselines (concat, late).
#include "model/fusion_modes.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

TransformerLayerOptions LayerOptions(const v1::TransformerConfig& t) {
  TransformerLayerOptions options;
  options.d_model = t.d_model();
  options.num_heads = t.num_heads();
  options.ff_dim = t.ff_dim();
  options.dropout = t.dropout();
  return options;
}

torch::nn::ModuleList MakeLayers(int count, const TransformerLayerOptions& options) {
  torch::nn::ModuleList layers;
  for (int i = 0; i < count; ++i) layers->push_back(TransformerLayer(options));
  return layers;
}

torch::Tensor MeanOverPresent(const std::vector<torch::Tensor>& values,
                              const std::vector<Stream>& streams) {
  torch::Tensor sum, count;
  for (size_t m = 0; m < values.size(); ++m) {
    if (!values[m].defined()) continue;
    std::vector<int64_t> shape(values[m].dim(), 1);
    shape[0] = values[m].size(0);
    const torch::Tensor weight = streams[m].present.to(values[m].scalar_type()).view(shape);
    sum = sum.defined() ? sum + values[m] * weight : values[m] * weight;
    count = count.defined() ? count + weight : weight;
  }
  return sum / count.clamp_min(1);
}

torch::Tensor ClassTokenAfterLayers(torch::nn::ModuleList& layers, torch::Tensor x,
                                    const torch::Tensor& padding, bool training) {
  const size_t count = layers->size();
  for (size_t i = 0; i < count; ++i) {
    TransformerLayerImpl* layer = layers[i]->as<TransformerLayer>();
    if (!training && i + 1 == count) return layer->ForwardFirstToken(x, padding);
    x = layer->forward(x, padding);
  }
  return x.select(1, 0);
}

ConcatFusion::ConcatFusion(const v1::ModelConfig& config) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  cls_ = register_parameter("cls", torch::nn::init::normal_(at::zeros({d}), 0, 0.02));
  layers_ = register_module("layers", MakeLayers(t.fusion_layers(), LayerOptions(t)));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  head_ = register_module("head", torch::nn::Linear(d, config.num_classes()));
}

torch::Tensor ConcatFusion::Fuse(const std::vector<Stream>& streams) {
  std::vector<torch::Tensor> tokens, padding;
  bool padded = false;
  for (const Stream& s : streams) {
    if (!s.defined()) continue;
    tokens.push_back(s.tokens);
    padding.push_back(s.padding);
    padded |= s.padded;
  }
  const int64_t batch = tokens.front().size(0);
  const int64_t d = cls_.size(0);
  tokens.insert(tokens.begin(), cls_.view({1, 1, d}).expand({batch, 1, d}));
  torch::Tensor mask;  // None without padding: the layers need no check.
  if (padded) {
    padding.insert(padding.begin(), at::zeros({batch, 1}, padding.front().options()));
    mask = at::cat(padding, 1);
  }
  const torch::Tensor cls = ClassTokenAfterLayers(layers_, at::cat(tokens, 1), mask, is_training());
  return CountedLinear(head_, norm_(cls));
}

LateFusion::LateFusion(const v1::ModelConfig& config) {
  const v1::TransformerConfig& t = config.transformer();
  for (const v1::ModalityConfig& m : config.modalities()) {
    layers_.push_back(register_module(absl::StrCat(m.name(), "_layers"),
                                      MakeLayers(t.fusion_layers(), LayerOptions(t))));
    norms_.push_back(register_module(absl::StrCat(m.name(), "_norm"),
                                     torch::nn::LayerNorm(torch::nn::LayerNormOptions({t.d_model()}))));
    heads_.push_back(register_module(absl::StrCat(m.name(), "_head"),
                                     torch::nn::Linear(t.d_model(), config.num_classes())));
  }
}

FusionOutput LateFusion::FuseForTraining(const std::vector<Stream>& streams) {
  FusionOutput out;
  out.stream_logits.resize(streams.size());
  out.fused_loss = false;
  for (size_t m = 0; m < streams.size(); ++m) {
    if (!streams[m].defined()) continue;
    const torch::Tensor cls = ClassTokenAfterLayers(
        layers_[m], streams[m].tokens, streams[m].padded ? streams[m].padding : torch::Tensor(),
        is_training());
    out.stream_logits[m] = CountedLinear(heads_[m], norms_[m](cls));
    // A sample without this modality adds nothing to its product.
    const torch::Tensor present =
        streams[m].present.to(out.stream_logits[m].scalar_type()).unsqueeze(1);
    const torch::Tensor log_p = at::log_softmax(out.stream_logits[m], -1) * present;
    out.logits = out.logits.defined() ? out.logits + log_p : log_p;
  }
  return out;
}

std::shared_ptr<FusionModule> MakeFusionModule(const v1::ModelConfig& config) {
  switch (config.fusion_mode()) {
    case v1::FUSION_MODE_LATE:
      return std::make_shared<LateFusion>(config);
    case v1::FUSION_MODE_MBT:
      return std::make_shared<MbtFusion>(config);
    case v1::FUSION_MODE_SFT:
      return std::make_shared<SftFusion>(config);
    case v1::FUSION_MODE_LOCOMT:
      return std::make_shared<LocomtFusion>(config);
    case v1::FUSION_MODE_PMF:
      return std::make_shared<PmfFusion>(config);
    default:
      return std::make_shared<ConcatFusion>(config);
  }
}

}  // namespace mmfuse::model
