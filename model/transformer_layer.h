// TransformerLayer: a pre-norm encoder layer (self-attention, then a GELU
// feed-forward, each in a residual) with key-padding masks, so a padded batch
// gives each sample exactly what it gets alone.
#ifndef MMFUSE_MODEL_TRANSFORMER_LAYER_H_
#define MMFUSE_MODEL_TRANSFORMER_LAYER_H_

#include <cstdint>

#include <torch/nn/module.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace mmfuse::model {

struct TransformerLayerOptions {
  int64_t d_model = 64;  // Token width; divisible by num_heads.
  int64_t num_heads = 4;
  int64_t ff_dim = 128;  // Feed-forward hidden width.
  double dropout = 0.0;  // Training only.
};

// Whether layers running inference on the CPU in fp32 use ATen's fused
// encoder-layer kernel (at::_transformer_encoder_layer_fwd: one call for
// the whole layer, packed QKV, no per-op dispatch) instead of the op-by-op
// forward, for a batch with no padding (a batch of one, or of equal
// lengths). On by default; both give the same outputs within 1e-5
// (TransformerLayerTest). The op-by-op forward runs in training, with
// gradients, on other devices and number formats, and for padded batches
// (with a key-padding mask the 1.13 CPU kernel measured slower).
// Process-wide; for tests and benchmarks.
void SetFusedInferenceLayers(bool enabled);
bool FusedInferenceLayers();
// Layer forwards that ran the fused kernel so far, all threads.
int64_t FusedInferenceLayerCalls();

class TransformerLayerImpl : public torch::nn::Module {
 public:
  explicit TransformerLayerImpl(const TransformerLayerOptions& options);

  // x: [B, T, D]. padding: [B, T] bool, true where the token is padding (never
  // attended to); may be undefined (no padding). Returns [B, T, D]; rows at
  // padded positions hold finite values of no meaning.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& padding);

  // The layer's output at the first token only, [B, D]: forward(x,
  // padding).select(1, 0) within 1e-5, for a class-token readout after the
  // last layer. Keys and values still come from every token, but the other
  // tokens' queries, attention rows, output projection and feed-forward are
  // never computed (with d_model 64, ff 128 and 78 tokens, 80% of the
  // layer). Inference only: no dropout.
  torch::Tensor ForwardFirstToken(const torch::Tensor& x, const torch::Tensor& padding);

 private:
  torch::Tensor FeedForward(const torch::Tensor& h);
  bool CanRunFused(const torch::Tensor& x, const torch::Tensor& padding) const;
  // The fused kernel on a contiguous [B, T, D] without padding; counts no
  // multiply-adds (forward does).
  torch::Tensor ForwardFused(const torch::Tensor& x);

  TransformerLayerOptions options_;
  torch::nn::LayerNorm attention_norm_{nullptr};
  torch::nn::Linear qkv_{nullptr};
  torch::nn::Linear attention_out_{nullptr};
  torch::nn::LayerNorm ff_norm_{nullptr};
  torch::nn::Linear ff_in_{nullptr};
  torch::nn::Linear ff_out_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(TransformerLayer);


}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_TRANSFORMER_LAYER_H_
