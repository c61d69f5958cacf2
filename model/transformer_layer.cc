#include "model/transformer_layer.h"

#include <atomic>
#include <cmath>

#include <ATen/core/grad_mode.h>
#include <ATen/ops/_transformer_encoder_layer_fwd.h>
#include <ATen/ops/gelu.h>
#include <ATen/ops/linear.h>

#include "model/attention.h"
#include "model/mac_counter.h"

namespace mmfuse::model {
namespace {

std::atomic<bool> fused_inference_layers{true};
std::atomic<int64_t> fused_inference_layer_calls{0};

}  // namespace

void SetFusedInferenceLayers(bool enabled) { fused_inference_layers.store(enabled); }
bool FusedInferenceLayers() { return fused_inference_layers.load(); }
int64_t FusedInferenceLayerCalls() { return fused_inference_layer_calls.load(); }

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

namespace {

// Whether layers in this state, on this input, may run the fused kernel:
// inference on the CPU in fp32.
bool FusedApplies(const torch::nn::Module& layer, const torch::Tensor& x) {
  return FusedInferenceLayers() && !layer.is_training() && !at::GradMode::is_enabled() &&
         x.device().is_cpu() && x.scalar_type() == at::kFloat;
}

// The multiply-adds of one layer over `tokens` tokens of one sample, as the
// op-by-op forward counts them: four projections per token, then Q.K^T and
// weights.V per head.
int64_t LayerMacs(int64_t tokens, int64_t d, int64_t ff) {
  return tokens * (4 * d * d + 2 * d * ff) + 2 * tokens * tokens * d;
}

}  // namespace

bool TransformerLayerImpl::CanRunFused(const torch::Tensor& x,
                                       const torch::Tensor& padding) const {
  // Only batches without padding: with a key-padding mask, 1.13's CPU kernel
  // ran 0.87x the op-by-op forward here (batch 16 of the default package),
  // against 1.18x without one (batch 1), and packing a padded batch's tokens
  // into a nested tensor for it ran 0.64x the fused batch of one per sample.
  // A sample that lacks the input (every key masked) gets zero attention
  // only op by op.
  return FusedApplies(*this, x) && (!padding.defined() || !padding.any().item<bool>());
}

torch::Tensor TransformerLayerImpl::ForwardFused(const torch::Tensor& x) {
  fused_inference_layer_calls.fetch_add(1, std::memory_order_relaxed);
  return at::_transformer_encoder_layer_fwd(
      x, options_.d_model, options_.num_heads, qkv_->weight, qkv_->bias, attention_out_->weight,
      attention_out_->bias, /*use_gelu=*/true, /*norm_first=*/true,
      attention_norm_->options.eps(), attention_norm_->weight, attention_norm_->bias,
      ff_norm_->weight, ff_norm_->bias, ff_in_->weight, ff_in_->bias, ff_out_->weight,
      ff_out_->bias);
}

torch::Tensor TransformerLayerImpl::forward(const torch::Tensor& x,
                                            const torch::Tensor& padding) {
  if (CanRunFused(x, padding)) {
    MacCounter::Add(x.size(0) * LayerMacs(x.size(1), options_.d_model, options_.ff_dim));
    return ForwardFused(x.contiguous());
  }
  torch::Tensor q, k, v;
  SplitHeads(CountedLinear(qkv_, attention_norm_(x)), options_.num_heads, &q, &k, &v);
  torch::Tensor context =
      MergeHeads(Attend(q, k, v, padding, options_.dropout, is_training()));
  torch::Tensor h = x + dropout_(CountedLinear(attention_out_, context));
  return h + FeedForward(h);
}

torch::Tensor TransformerLayerImpl::ForwardFirstToken(const torch::Tensor& x,
                                                      const torch::Tensor& padding) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  const int64_t d = options_.d_model;
  const int64_t heads = options_.num_heads;
  const int64_t head_dim = d / heads;
  const torch::Tensor h = attention_norm_(x);
  // The packed projection's rows: [0, d) queries, [d, 3d) keys and values.
  const torch::Tensor& w = qkv_->weight;
  const torch::Tensor& b = qkv_->bias;
  const torch::Tensor kv = at::linear(h, w.slice(0, d, 3 * d), b.slice(0, d, 3 * d));
  const torch::Tensor q =
      at::linear(h.select(1, 0), w.slice(0, 0, d), b.slice(0, 0, d)) *
      (1.0 / std::sqrt(static_cast<double>(head_dim)));
  MacCounter::Add(batch * (tokens * 2 * d * d + d * d));
  const torch::Tensor split = kv.view({batch, tokens, 2, heads, head_dim}).permute({2, 0, 3, 1, 4});
  const torch::Tensor context =
      Attend(q.view({batch, heads, 1, head_dim}), split[0], split[1], padding, 0, false)
          .reshape({batch, d});
  const torch::Tensor first = x.select(1, 0) + CountedLinear(attention_out_, context);
  return first + FeedForward(first);
}

torch::Tensor TransformerLayerImpl::FeedForward(const torch::Tensor& h) {
  return dropout_(
      CountedLinear(ff_out_, dropout_(at::gelu(CountedLinear(ff_in_, ff_norm_(h))))));
}

}  // namespace mmfuse::model
