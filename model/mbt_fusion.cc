// MBT (Nagrani et al., 2021): fusion through shared bottleneck tokens.
#include <ATen/ops/cat.h>
#include <ATen/ops/zeros.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "model/fusion_modes.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

MbtFusion::MbtFusion(const v1::ModelConfig& config) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  const int64_t n = config.mbt().num_bottlenecks() > 0 ? config.mbt().num_bottlenecks() : 4;
  bottlenecks_ = register_parameter("bottlenecks",
                                    torch::nn::init::normal_(at::zeros({1, n, d}), 0, 0.02));
  for (const v1::ModalityConfig& m : config.modalities()) {
    layers_.push_back(register_module(absl::StrCat(m.name(), "_layers"),
                                      MakeLayers(t.fusion_layers(), LayerOptions(t))));
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  head_ = register_module("head", torch::nn::Linear(d, config.num_classes()));
  // Zero-initialised head, as in the reference implementation.
  torch::NoGradGuard no_grad;
  head_->weight.zero_();
  head_->bias.zero_();
}

FusionOutput MbtFusion::FuseForTraining(const std::vector<Stream>& streams) {
  std::vector<torch::Tensor> x(streams.size());
  int64_t batch = 0;
  for (size_t m = 0; m < streams.size(); ++m) {
    x[m] = streams[m].tokens;
    if (x[m].defined()) batch = x[m].size(0);
  }
  const int64_t n = bottlenecks_.size(1);
  torch::Tensor z = bottlenecks_.expand({batch, n, bottlenecks_.size(2)});
  const int layers = layers_.front()->size();
  for (int l = 0; l < layers; ++l) {
    std::vector<torch::Tensor> copies(streams.size());
    for (size_t m = 0; m < streams.size(); ++m) {
      if (!x[m].defined()) continue;
      const int64_t tokens = x[m].size(1);
      const torch::Tensor padding = at::cat(
          {streams[m].padding, at::zeros({batch, n}, streams[m].padding.options())}, 1);
      const torch::Tensor y = (*layers_[m])[l]->as<TransformerLayer>()->forward(
          at::cat({x[m], z}, 1), padding);
      x[m] = y.slice(1, 0, tokens);
      copies[m] = y.slice(1, tokens);
    }
    // Each sample averages the copies of the modalities it has.
    z = MeanOverPresent(copies, streams);
  }
  // The shared head on each modality's class token (bottlenecks dropped).
  FusionOutput out;
  out.stream_logits.resize(streams.size());
  out.fused_loss = false;
  for (size_t m = 0; m < streams.size(); ++m) {
    if (x[m].defined()) out.stream_logits[m] = CountedLinear(head_, norm_(x[m].select(1, 0)));
  }
  out.logits = MeanOverPresent(out.stream_logits, streams);
  return out;
}

}  // namespace mmfuse::model
