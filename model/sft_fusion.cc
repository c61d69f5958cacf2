// SFT (Ding et al.): sparse pooling of each modality's tokens before dense
// fusion over the short sequence.
#include <limits>

#include <ATen/ops/arange.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/full.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/topk.h>
#include <ATen/ops/zeros.h>

#include "absl/strings/str_cat.h"
#include "model/attention.h"
#include "model/fusion_modes.h"
#include "model/mac_counter.h"

namespace mmfuse::model {

SftFusion::SftFusion(const v1::ModelConfig& config) : config_(config) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  const uint32_t default_kernel = config.sft().default_kernel() > 0 ? config.sft().default_kernel() : 4;
  for (const v1::ModalityConfig& m : config.modalities()) {
    auto it = config.sft().kernel().find(m.name());
    kernels_.push_back(it != config.sft().kernel().end() ? it->second : default_kernel);
    PoolingBlock block;
    const std::string prefix = absl::StrCat(m.name(), "_pool_");
    // The reference block's LayerNorm has no learned scale or shift.
    block.norm = register_module(
        prefix + "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).elementwise_affine(false)));
    block.qkv = register_module(prefix + "qkv", torch::nn::Linear(d, 3 * d));
    block.out = register_module(prefix + "out", torch::nn::Linear(d, d));
    blocks_.push_back(block);
  }
  layers_ = register_module("layers", MakeLayers(t.fusion_layers(), LayerOptions(t)));
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  head_ = register_module("head", torch::nn::Linear(d, config.num_classes()));
}

void SftFusion::Pool(int modality, const Stream& stream, torch::Tensor* cls,
                     torch::Tensor* pooled, torch::Tensor* padding) {
  PoolingBlock& block = blocks_[modality];
  const v1::TransformerConfig& t = config_.transformer();
  torch::Tensor q, k, v, weights;
  SplitHeads(CountedLinear(block.qkv, block.norm(stream.tokens)), t.num_heads(), &q, &k, &v);
  const torch::Tensor context =
      MergeHeads(Attend(q, k, v, stream.padding, t.dropout(), is_training(), &weights));
  const torch::Tensor y = stream.tokens + CountedLinear(block.out, context);
  *cls = y.select(1, 0);

  const torch::Tensor frames = y.slice(1, 1);                   // [B, T, D]
  const torch::Tensor frame_padding = stream.padding.slice(1, 1);  // [B, T]
  const int64_t batch = frames.size(0), length = frames.size(1), d = frames.size(2);
  const int64_t kernel = kernels_[modality];
  const int64_t windows = (length + kernel - 1) / kernel;
  const torch::Tensor lengths = (~frame_padding).sum(1);  // [B]
  // Window p holds frames [p k, (p + 1) k); it is padding once p k >= length.
  const torch::Tensor window_start = at::arange(windows, lengths.options()) * kernel;
  *padding = window_start.unsqueeze(0) >= lengths.unsqueeze(1);

  const auto pooling = config_.sft().pooling();
  if (pooling == v1::SftConfig::POOLING_ATTN_TOPK) {
    // Saliency of a frame: the attention it receives, averaged over heads and
    // real queries. Keep each sample's ceil(length / k) most salient frames,
    // in their original order.
    const torch::Tensor real_queries = (~stream.padding).to(weights.scalar_type());  // [B, 1+T]
    torch::Tensor saliency =
        (weights * real_queries.view({batch, 1, -1, 1})).sum({1, 2}).slice(1, 1);  // [B, T]
    saliency = saliency.masked_fill(frame_padding, -std::numeric_limits<float>::infinity());
    torch::Tensor index = std::get<1>(at::topk(saliency, windows, 1));  // [B, P] by saliency
    index = index.masked_fill(*padding, length);  // Slots beyond a sample's count sort last.
    index = std::get<0>(at::sort(index, 1)).clamp_max(length - 1);
    *pooled = at::gather(frames, 1, index.unsqueeze(-1).expand({batch, windows, d}));
  } else {
    const int64_t padded_length = windows * kernel;
    torch::Tensor keep = (~frame_padding).unsqueeze(-1).to(frames.scalar_type());  // [B, T, 1]
    torch::Tensor f = frames;
    if (padded_length > length) {
      f = at::cat({f, at::zeros({batch, padded_length - length, d}, f.options())}, 1);
      keep = at::cat({keep, at::zeros({batch, padded_length - length, 1}, keep.options())}, 1);
    }
    f = f.view({batch, windows, kernel, d});
    keep = keep.view({batch, windows, kernel, 1});
    if (pooling == v1::SftConfig::POOLING_AVG) {
      *pooled = (f * keep).sum(2) / keep.sum(2).clamp_min(1);
    } else {
      *pooled = std::get<0>(f.masked_fill(keep == 0, -std::numeric_limits<float>::infinity()).max(2));
    }
  }
  *pooled = pooled->masked_fill(padding->unsqueeze(-1), 0);  // Empty windows hold no -inf.
}

torch::Tensor SftFusion::Fuse(const std::vector<Stream>& streams) {
  std::vector<torch::Tensor> cls(streams.size()), tokens, padding;
  for (size_t m = 0; m < streams.size(); ++m) {
    if (!streams[m].defined()) continue;
    torch::Tensor pooled, pooled_padding;
    Pool(static_cast<int>(m), streams[m], &cls[m], &pooled, &pooled_padding);
    tokens.push_back(pooled);
    padding.push_back(pooled_padding);
  }
  // Fused CLS: the sum of the CLS tokens of the modalities a sample has.
  torch::Tensor fused_cls;
  for (size_t m = 0; m < streams.size(); ++m) {
    if (!cls[m].defined()) continue;
    const torch::Tensor c = cls[m] * streams[m].present.unsqueeze(1).to(cls[m].scalar_type());
    fused_cls = fused_cls.defined() ? fused_cls + c : c;
  }
  tokens.insert(tokens.begin(), fused_cls.unsqueeze(1));
  padding.insert(padding.begin(), at::zeros({fused_cls.size(0), 1}, padding.front().options()));
  const torch::Tensor out =
      ClassTokenAfterLayers(layers_, at::cat(tokens, 1), at::cat(padding, 1), is_training());
  return CountedLinear(head_, norm_(out));
}

}  // namespace mmfuse::model
