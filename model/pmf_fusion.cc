// PMF (Li et al., CVPR 2023): streams exchange prompt messages in the last
// fusion layers; extended from two streams to any number (each stream reads
// the messages of every other stream it has).
#include <ATen/ops/cat.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/zeros.h>
#include <torch/nn/init.h>

#include "absl/strings/str_cat.h"
#include "model/fusion_modes.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

PmfFusion::PmfFusion(const v1::ModelConfig& config) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  num_prompts_ = config.pmf().num_prompts() > 0 ? config.pmf().num_prompts() : 4;
  auto prompt = [&](const std::string& name) {
    return register_parameter(name, torch::nn::init::normal_(at::zeros({1, num_prompts_, d}), 0, 0.02));
  };
  for (const v1::ModalityConfig& m : config.modalities()) {
    std::vector<StreamLayer> stream;
    for (uint32_t l = 0; l < t.fusion_layers(); ++l) {
      const std::string prefix = absl::StrCat(m.name(), "_layer", l, "_");
      StreamLayer s;
      s.layer = register_module(prefix + "layer", TransformerLayer(LayerOptions(t)));
      s.query_prompts = prompt(prefix + "query_prompts");
      s.query_context_prompts = prompt(prefix + "query_context_prompts");
      s.fusion_context_prompts = prompt(prefix + "fusion_context_prompts");
      s.adapter_in = register_module(prefix + "adapter_in", torch::nn::Linear(d, d / 2));
      s.adapter_out = register_module(prefix + "adapter_out", torch::nn::Linear(d / 2, d));
      if (config.pmf().train_prompts_only()) {
        for (torch::Tensor& p : s.layer->parameters()) p.requires_grad_(false);
      }
      stream.push_back(s);
    }
    layers_.push_back(stream);
    norms_.push_back(register_module(absl::StrCat(m.name(), "_norm"),
                                     torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}))));
    heads_.push_back(register_module(absl::StrCat(m.name(), "_head"),
                                     torch::nn::Linear(d, config.num_classes())));
  }
}

torch::Tensor PmfFusion::Fuse(const std::vector<Stream>& streams) {
  const size_t count = streams.size();
  std::vector<torch::Tensor> x(count);
  int64_t batch = 0;
  for (size_t m = 0; m < count; ++m) {
    x[m] = streams[m].tokens;
    if (x[m].defined()) batch = x[m].size(0);
  }
  const int64_t n = num_prompts_;
  const int fusion_layers = static_cast<int>(layers_.front().size());
  for (int l = 0; l < fusion_layers; ++l) {
    // Query stage: each stream turns its query prompts into a message.
    std::vector<torch::Tensor> message(count), message_padding(count);
    for (size_t m = 0; m < count; ++m) {
      if (!x[m].defined()) continue;
      StreamLayer& s = layers_[m][l];
      const int64_t d = x[m].size(2);
      const torch::Tensor input =
          at::cat({x[m], s.query_context_prompts.expand({batch, n, d}),
                   s.query_prompts.expand({batch, n, d})},
                  1);
      const torch::Tensor padding = at::cat(
          {streams[m].padding, at::zeros({batch, 2 * n}, streams[m].padding.options())}, 1);
      const torch::Tensor queries = s.layer->forward(input, padding).slice(1, -n);
      message[m] = CountedLinear(s.adapter_out, at::relu(CountedLinear(s.adapter_in, queries)));
      // A sample without the modality sends no message.
      message_padding[m] = (~streams[m].present).unsqueeze(1).expand({batch, n});
    }
    // Fusion stage: each stream reads the other streams' messages.
    for (size_t m = 0; m < count; ++m) {
      if (!x[m].defined()) continue;
      StreamLayer& s = layers_[m][l];
      const int64_t tokens = x[m].size(1), d = x[m].size(2);
      std::vector<torch::Tensor> input = {x[m], s.fusion_context_prompts.expand({batch, n, d})};
      std::vector<torch::Tensor> padding = {
          streams[m].padding, at::zeros({batch, n}, streams[m].padding.options())};
      for (size_t o = 0; o < count; ++o) {
        if (o == m || !message[o].defined()) continue;
        input.push_back(message[o]);
        padding.push_back(message_padding[o]);
      }
      x[m] = s.layer->forward(at::cat(input, 1), at::cat(padding, 1)).slice(1, 0, tokens);
    }
  }
  std::vector<torch::Tensor> logits(count);
  for (size_t m = 0; m < count; ++m) {
    if (x[m].defined()) logits[m] = CountedLinear(heads_[m], norms_[m](x[m].select(1, 0)));
  }
  return MeanOverPresent(logits, streams);
}

}  // namespace mmfuse::model
