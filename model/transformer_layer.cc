#include "model/transformer_layer.h"

#include <cmath>

#include <ATen/ops/gelu.h>
#include <ATen/ops/matmul.h>
#include <ATen/ops/softmax.h>

namespace mmfuse::model {

// Added to the scores of padding keys. Finite (not -inf) so a row with every
// key masked (an absent modality inside a batch) stays finite instead of NaN;
// exp(-1e9 - max) underflows to exactly 0, so padding never changes a result.
constexpr double kMaskedScore = -1e9;

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
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  const int64_t heads = options_.num_heads;
  const int64_t head_dim = options_.d_model / heads;

  // [B, T, 3D] -> [3, B, H, T, Dh]
  torch::Tensor qkv =
      qkv_(attention_norm_(x)).view({batch, tokens, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  torch::Tensor scores = at::matmul(q, qkv[1].transpose(-2, -1));  // [B, H, T, T]
  if (padding.defined()) {
    scores = scores.masked_fill(padding.view({batch, 1, 1, tokens}), kMaskedScore);
  }
  torch::Tensor weights = dropout_(at::softmax(scores, -1));
  torch::Tensor context =
      at::matmul(weights, qkv[2]).transpose(1, 2).reshape({batch, tokens, options_.d_model});
  torch::Tensor h = x + dropout_(attention_out_(context));
  return h + dropout_(ff_out_(dropout_(at::gelu(ff_in_(ff_norm_(h))))));
}

}  // namespace mmfuse::model
