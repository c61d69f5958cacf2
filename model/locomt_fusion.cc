// LoCoMT (Park & Choi, 2024): every attention head of a fusion layer sees one
// view, and only that view's query/key slices are computed.
#include <map>

#include <ATen/ops/cat.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/index_select.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>

#include "absl/strings/str_cat.h"
#include "model/attention.h"
#include "model/fusion_modes.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

LocomtFusion::LocomtFusion(const v1::ModelConfig& config)
    : config_(config), views_(LocomtViews(config).value()) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  auto norm = [d] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})); };
  for (uint32_t l = 0; l < t.fusion_layers(); ++l) {
    const std::string prefix = absl::StrCat("layer", l, "_");
    Layer layer;
    layer.norm = register_module(prefix + "attention_norm", norm());
    layer.qkv = register_module(prefix + "qkv", torch::nn::Linear(d, 3 * d));
    layer.out = register_module(prefix + "attention_out", torch::nn::Linear(d, d));
    layer.ff_norm = register_module(prefix + "ff_norm", norm());
    layer.ff_in = register_module(prefix + "ff_in", torch::nn::Linear(d, t.ff_dim()));
    layer.ff_out = register_module(prefix + "ff_out", torch::nn::Linear(t.ff_dim(), d));
    layers_.push_back(layer);
  }
  norm_ = register_module("norm", norm());
  head_ = register_module("head", torch::nn::Linear(d, config.num_classes()));
}

torch::Tensor LocomtFusion::RunLayer(int l, const torch::Tensor& x,
                                     const std::vector<Stream>& streams) {
  Layer& layer = layers_[l];
  const v1::TransformerConfig& t = config_.transformer();
  torch::Tensor q, k, v;
  SplitHeads(CountedLinear(layer.qkv, layer.norm(x)), t.num_heads(), &q, &k, &v);
  const int64_t batch = x.size(0), head_dim = q.size(3);

  // Token range of each stream in x (streams absent from the batch have none).
  std::vector<int64_t> offset(streams.size(), -1), length(streams.size(), 0);
  int64_t at = 0;
  for (size_t m = 0; m < streams.size(); ++m) {
    if (!streams[m].defined()) continue;
    offset[m] = at;
    length[m] = streams[m].tokens.size(1);
    at += length[m];
  }
  auto slice = [&](const torch::Tensor& heads, int m) {
    return heads.slice(2, offset[m], offset[m] + length[m]);
  };

  // Heads grouped by view, so each view is one batched attention.
  std::map<HeadView, std::vector<int64_t>> groups;
  for (int64_t h = 0; h < t.num_heads(); ++h) groups[views_[l][h]].push_back(h);
  std::vector<torch::Tensor> outputs;  // Per group: [B, g, T, Dh].
  std::vector<int64_t> order;          // Head index of each output head.
  for (const auto& [view, heads] : groups) {
    const torch::Tensor index = at::tensor(heads, at::kLong).to(q.device());
    const torch::Tensor gq = at::index_select(q, 1, index);
    const torch::Tensor gk = at::index_select(k, 1, index);
    const torch::Tensor gv = at::index_select(v, 1, index);
    std::vector<torch::Tensor> context(streams.size());  // Per stream, [B, g, n_m, Dh].
    const bool a_in = offset[view.a] >= 0, b_in = offset[view.b] >= 0;
    if (view.a == view.b) {
      if (a_in) {
        context[view.a] = Attend(slice(gq, view.a), slice(gk, view.a), slice(gv, view.a),
                                 streams[view.a].padding, t.dropout(), is_training());
      }
    } else if (a_in && b_in) {
      context[view.a] = Attend(slice(gq, view.a), slice(gk, view.b), slice(gv, view.b),
                               streams[view.b].padding, t.dropout(), is_training());
      context[view.b] = Attend(slice(gq, view.b), slice(gk, view.a), slice(gv, view.a),
                               streams[view.a].padding, t.dropout(), is_training());
    }
    // Tokens outside the view receive zeros from these heads.
    std::vector<torch::Tensor> pieces;
    for (size_t m = 0; m < streams.size(); ++m) {
      if (offset[m] < 0) continue;
      pieces.push_back(context[m].defined()
                           ? context[m]
                           : at::zeros({batch, static_cast<int64_t>(heads.size()), length[m],
                                        head_dim},
                                       q.options()));
    }
    outputs.push_back(at::cat(pieces, 2));
    order.insert(order.end(), heads.begin(), heads.end());
  }
  // Put heads back in their own order before the output projection.
  std::vector<int64_t> position(order.size());
  for (size_t i = 0; i < order.size(); ++i) position[order[i]] = static_cast<int64_t>(i);
  const torch::Tensor context =
      at::index_select(at::cat(outputs, 1), 1, at::tensor(position, at::kLong).to(q.device()));
  const torch::Tensor h = x + CountedLinear(layer.out, MergeHeads(context));
  return h + CountedLinear(layer.ff_out, at::gelu(CountedLinear(layer.ff_in, layer.ff_norm(h))));
}

torch::Tensor LocomtFusion::Fuse(const std::vector<Stream>& streams) {
  std::vector<torch::Tensor> tokens;
  for (const Stream& s : streams) {
    if (s.defined()) tokens.push_back(s.tokens);
  }
  torch::Tensor x = at::cat(tokens, 1);
  for (size_t l = 0; l < layers_.size(); ++l) x = RunLayer(static_cast<int>(l), x, streams);
  // Each modality's CLS, averaged over the modalities a sample has.
  std::vector<torch::Tensor> cls(streams.size());
  int64_t at = 0;
  for (size_t m = 0; m < streams.size(); ++m) {
    if (!streams[m].defined()) continue;
    cls[m] = x.select(1, at);
    at += streams[m].tokens.size(1);
  }
  return CountedLinear(head_, norm_(MeanOverPresent(cls, streams)));
}

}  // namespace mmfuse::model
