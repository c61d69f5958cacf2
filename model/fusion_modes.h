// The fusion modes: how modality streams meet after their tokenizers and
// unimodal layers. FusionTransformer owns one, chosen by config.fusion_mode;
// docs/FUSION.md relates each to its paper.
//
// Every mode handles padding (never changes a result), modalities absent from
// a batch (undefined tokens: nothing runs for them) or from single samples
// (`present` false: they contribute nothing), and gives each sample in a batch
// the answer it gets alone.
#ifndef MMFUSE_MODEL_FUSION_MODES_H_
#define MMFUSE_MODEL_FUSION_MODES_H_

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "model/locomt_views.h"
#include "model/transformer_layer.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// One modality after its tokenizer and unimodal layers.
struct Stream {
  torch::Tensor tokens;   // [B, 1 + T, D]: the modality's CLS, then its frames.
  torch::Tensor padding;  // [B, 1 + T] bool, true = padding (all of it where absent).
  torch::Tensor present;  // [B] bool.
  // Whether `padding` has a true anywhere (ModalityInput::padded): false
  // lets layers run without a mask (ATen's fused kernel, no check).
  bool padded = true;
  bool defined() const { return tokens.defined(); }
};

// A mode's result with what training needs beyond the logits.
struct FusionOutput {
  torch::Tensor logits;  // [B, classes]: what inference returns.
  // Per stream, logits [B, classes] of a head the mode trains with a loss of
  // its own (late fusion's experts, MBT's per-modality class tokens); empty
  // where the mode has none, undefined for a stream absent from the batch.
  std::vector<torch::Tensor> stream_logits;
  // Whether `logits` carries the task loss as well: false where the mode
  // trains through its per-stream losses alone.
  bool fused_loss = true;
};

class FusionModule : public torch::nn::Module {
 public:
  // One stream per config modality, model order; returns logits [B, classes].
  virtual torch::Tensor Fuse(const std::vector<Stream>& streams) {
    return FuseForTraining(streams).logits;
  }
  // The same logits, with the mode's per-stream logits where it has them.
  virtual FusionOutput FuseForTraining(const std::vector<Stream>& streams) {
    return {Fuse(streams), {}, true};
  }
};

// Builds the mode of a validated config.
std::shared_ptr<FusionModule> MakeFusionModule(const v1::ModelConfig& config);

TransformerLayerOptions LayerOptions(const v1::TransformerConfig& t);

// `count` TransformerLayers in a ModuleList.
torch::nn::ModuleList MakeLayers(int count, const TransformerLayerOptions& options);

// The first token's output [B, D] after `layers` (applied in order to x
// [B, T, D] with key padding `padding`), for a class-token readout. In
// inference the last layer computes that token alone
// (TransformerLayer::ForwardFirstToken); in training every layer runs whole,
// so gradients and dropout are as ever. With no layers, x's first token.
torch::Tensor ClassTokenAfterLayers(torch::nn::ModuleList& layers, torch::Tensor x,
                                    const torch::Tensor& padding, bool training);

// Mean over streams of per-stream values [B, ...], counting for each sample
// only streams it has. `values[m]` is undefined for streams absent from the
// batch.
torch::Tensor MeanOverPresent(const std::vector<torch::Tensor>& values,
                              const std::vector<Stream>& streams);

// Joint self-attention over all streams' tokens behind a fusion CLS token.
class ConcatFusion : public FusionModule {
 public:
  explicit ConcatFusion(const v1::ModelConfig& config);
  torch::Tensor Fuse(const std::vector<Stream>& streams) override;

 private:
  torch::Tensor cls_;
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

// A product of experts: separate streams to the end, each with its own head
// trained with its own loss; the fused logits are the sum of the present
// streams' log-probabilities (their softmax is the normalised product).
class LateFusion : public FusionModule {
 public:
  explicit LateFusion(const v1::ModelConfig& config);
  FusionOutput FuseForTraining(const std::vector<Stream>& streams) override;

 private:
  std::vector<torch::nn::ModuleList> layers_;
  std::vector<torch::nn::LayerNorm> norms_;
  std::vector<torch::nn::Linear> heads_;
};

// MBT: per-modality layers on [tokens || z]; z is the mean of the modalities'
// copies after each layer, the only path between modalities. Head (the
// reference's token variant): one LayerNorm and zero-initialised linear
// shared by every modality's class token, a loss per modality in training,
// logits averaged over the present modalities at inference.
class MbtFusion : public FusionModule {
 public:
  explicit MbtFusion(const v1::ModelConfig& config);
  FusionOutput FuseForTraining(const std::vector<Stream>& streams) override;

 private:
  torch::Tensor bottlenecks_;  // [1, B, D]
  std::vector<torch::nn::ModuleList> layers_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

// SFT: per modality one attention sub-layer (LayerNorm without affine, no
// MLP), then pooling of its frame tokens with kernel = stride = k_m (max,
// avg or attention-saliency top-k); fused CLS = sum of CLS tokens; dense
// layers over [CLS; pooled...].
class SftFusion : public FusionModule {
 public:
  explicit SftFusion(const v1::ModelConfig& config);
  torch::Tensor Fuse(const std::vector<Stream>& streams) override;

 private:
  struct PoolingBlock {
    torch::nn::LayerNorm norm{nullptr};
    torch::nn::Linear qkv{nullptr};
    torch::nn::Linear out{nullptr};
  };
  // tokens [B, 1 + T, D] -> (pooled [B, P, D], pooled padding [B, P]) and
  // the attended CLS [B, D].
  void Pool(int modality, const Stream& stream, torch::Tensor* cls, torch::Tensor* pooled,
            torch::Tensor* padding);

  v1::ModelConfig config_;
  std::vector<PoolingBlock> blocks_;
  std::vector<int64_t> kernels_;
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};


// LoCoMT: every head of a fusion layer attends within its view only, and
// computes only that view's query/key slices. Tokens outside a head's view
// receive zeros from it. Head: mean of the modalities' CLS tokens.
class LocomtFusion : public FusionModule {
 public:
  explicit LocomtFusion(const v1::ModelConfig& config);
  torch::Tensor Fuse(const std::vector<Stream>& streams) override;

 private:
  struct Layer {
    torch::nn::LayerNorm norm{nullptr};
    torch::nn::Linear qkv{nullptr};
    torch::nn::Linear out{nullptr};
    torch::nn::LayerNorm ff_norm{nullptr};
    torch::nn::Linear ff_in{nullptr};
    torch::nn::Linear ff_out{nullptr};
  };
  torch::Tensor RunLayer(int l, const torch::Tensor& x, const std::vector<Stream>& streams);

  v1::ModelConfig config_;
  std::vector<std::vector<HeadView>> views_;  // [layer][head]
  std::vector<Layer> layers_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};

// PMF: in each fusion layer l, stream m first runs layer l on
// [tokens || qcp || qp]; its last qp outputs pass an adapter (Linear, ReLU,
// Linear) to become its message; then it runs layer l again on
// [tokens || fcp || the other streams' messages]. Per-stream heads, logits
// averaged. With train_prompts_only, only prompts, adapters and heads train.
class PmfFusion : public FusionModule {
 public:
  explicit PmfFusion(const v1::ModelConfig& config);
  torch::Tensor Fuse(const std::vector<Stream>& streams) override;

 private:
  struct StreamLayer {
    TransformerLayer layer{nullptr};
    torch::Tensor query_prompts;          // [1, n, D]
    torch::Tensor query_context_prompts;  // [1, n, D]
    torch::Tensor fusion_context_prompts; // [1, n, D]
    torch::nn::Linear adapter_in{nullptr};   // D -> D / 2, then ReLU
    torch::nn::Linear adapter_out{nullptr};  // D / 2 -> D
  };
  int64_t num_prompts_;
  std::vector<std::vector<StreamLayer>> layers_;  // [modality][layer]
  std::vector<torch::nn::LayerNorm> norms_;
  std::vector<torch::nn::Linear> heads_;
};

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_FUSION_MODES_H_
