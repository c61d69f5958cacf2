#include "model/multimodal_model.h"

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/zeros.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

GateImpl::GateImpl(const v1::ModelConfig& config, int num_branches)
    : mean_max_(config.gate().pooling() == v1::GATE_POOLING_MEAN_MAX) {
  const int64_t summary = config.gate().summary_dim() > 0 ? config.gate().summary_dim() : 16;
  const int64_t hidden = config.gate().hidden_dim() > 0 ? config.gate().hidden_dim() : 32;
  for (const v1::ModalityConfig& m : config.modalities()) {
    summaries_.push_back(register_module(absl::StrCat(m.name(), "_summary"),
                                         torch::nn::Linear(m.feature_dim(), summary)));
  }
  const int64_t width = config.modalities_size() * (summary * (mean_max_ ? 2 : 1) + 1);
  hidden_ = register_module("hidden", torch::nn::Linear(width, hidden));
  out_ = register_module("out", torch::nn::Linear(hidden, num_branches));
}

torch::Tensor GateImpl::forward(const std::vector<ModalityInput>& inputs) {
  int64_t batch = 0;
  for (const ModalityInput& in : inputs) {
    if (in.features.defined()) batch = in.features.size(0);
  }
  std::vector<torch::Tensor> parts;
  for (size_t m = 0; m < inputs.size(); ++m) {
    const int64_t width = summaries_[m]->options.out_features() * (mean_max_ ? 2 : 1);
    if (!inputs[m].features.defined()) {
      parts.push_back(at::zeros({batch, width + 1}, out_->weight.options()));
      continue;
    }
    const torch::Tensor& lengths = inputs[m].lengths;
    const torch::Tensor keep =
        (at::arange(inputs[m].features.size(1), lengths.options()).unsqueeze(0) <
         lengths.unsqueeze(1))
            .unsqueeze(-1)
            .to(inputs[m].features.scalar_type());
    const torch::Tensor projected = CountedLinear(summaries_[m], inputs[m].features);
    const torch::Tensor mean = (projected * keep).sum(1) / keep.sum(1).clamp_min(1);
    const torch::Tensor present = (lengths > 0).unsqueeze(1).to(inputs[m].features.scalar_type());
    if (mean_max_) {
      // Padding frames must not win the max; a sample without this modality
      // summarises to zeros, as in the mean.
      const torch::Tensor max =
          projected.masked_fill(keep == 0, -std::numeric_limits<float>::infinity()).amax(1);
      parts.push_back(at::cat({mean, max.masked_fill(present == 0, 0), present}, 1));
    } else {
      parts.push_back(at::cat({mean, present}, 1));
    }
  }
  return CountedLinear(out_, at::relu(CountedLinear(hidden_, at::cat(parts, 1))));
}

MultimodalModelImpl::MultimodalModelImpl(const v1::ModelConfig& config)
    : branches_(ResolveBranches(config)) {
  for (const Branch& branch : branches_) {
    experts_.push_back(register_module(absl::StrCat("expert_", branch.name),
                                       FusionTransformer(ExpertConfig(config, branch))));
  }
  if (branches_.size() > 1) {
    gate_ = register_module("gate", Gate(config, static_cast<int>(branches_.size())));
  }
}

torch::Tensor MultimodalModelImpl::forward(const std::vector<ModalityInput>& inputs, int branch) {
  std::vector<ModalityInput> expert_inputs;
  for (int m : branches_[branch].modalities) expert_inputs.push_back(inputs[m]);
  return experts_[branch]->forward(expert_inputs);
}

}  // namespace mmfuse::model
