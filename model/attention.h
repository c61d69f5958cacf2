// Scaled dot-product attention with key padding, the core every layer kind
// shares (joint, bottleneck, view-restricted, pooling).
#ifndef MMFUSE_MODEL_ATTENTION_H_
#define MMFUSE_MODEL_ATTENTION_H_

#include <ATen/core/Tensor.h>

namespace mmfuse::model {

// q: [B, H, Tq, Dh] (already scaled by 1/sqrt(Dh)), k, v: [B, H, Tk, Dh].
// key_padding: [B, Tk] bool, true = never attended; undefined = none. A
// sample whose keys are all padding (a modality it lacks) gets zeros, so
// padded content can never leak into a result. Dropout (probability
// `dropout`, training only) applies to the attention weights. If `weights`
// is not null it receives the weights [B, H, Tq, Tk] (before dropout).
at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& key_padding, double dropout, bool training,
                  at::Tensor* weights = nullptr);

// Splits [B, T, 3D] packed projections into q (scaled), k, v of
// [B, H, T, D / H].
void SplitHeads(const at::Tensor& qkv, int64_t heads, at::Tensor* q, at::Tensor* k, at::Tensor* v);

// [B, H, T, Dh] -> [B, T, H * Dh].
at::Tensor MergeHeads(const at::Tensor& x);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_ATTENTION_H_
