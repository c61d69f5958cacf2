#include "model/transformer_layer.h"

#include <ATen/ops/gelu.h>

#include "model/attention.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

TransformerLayerImpl::TransformerLayerImpl(const TransformerLayerOptions& options)
    : options_(options) {
  const int64_t d = options.d_model;
  attention_norm_ = register_module("attention_norm", torch::nn::LayerNorm(
                                                          torch::nn::LayerNormOptions({d})));
  qkv_ = register_module("qkv", torch::nn::Linear(d, 3 * d));
  attention_out_ = register_module("attention_out", torch::nn::Linear(d, d));
  ff_norm_ = register_module("ff_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  ff_in_ = register_module("ff_in", torch::nn::Linear(d, options.ff_dim));
  ff_out_ = register_module("ff_out", torch::nn::Linear(options.ff_dim, d));
  dropout_ = register_module("dropout", torch::nn::Dropout(options.dropout));
}

torch::Tensor TransformerLayerImpl::forward(const torch::Tensor& x,
                                            const torch::Tensor& padding) {
  torch::Tensor q, k, v;
  SplitHeads(CountedLinear(qkv_, attention_norm_(x)), options_.num_heads, &q, &k, &v);
  torch::Tensor context =
      MergeHeads(Attend(q, k, v, padding, options_.dropout, is_training()));
  torch::Tensor h = x + dropout_(CountedLinear(attention_out_, context));
  return h + FeedForward(h);
}

torch::Tensor TransformerLayerImpl::FeedForward(const torch::Tensor& h) {
  return dropout_(
      CountedLinear(ff_out_, dropout_(at::gelu(CountedLinear(ff_in_, ff_norm_(h))))));
}

}  // namespace mmfuse::model
