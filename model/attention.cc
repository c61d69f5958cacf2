#include "model/attention.h"

#include <cmath>

#include <ATen/ops/any.h>
#include <ATen/ops/dropout.h>
#include <ATen/ops/softmax.h>

#include "model/mac_counter.h"

namespace mmfuse::model {

// Added to the scores of padding keys. Finite (not -inf) so a row with every
// key masked stays finite; exp(-1e9 - max) underflows to exactly 0, so
// padding never changes a result. fp16 cannot hold -1e9 (its largest
// magnitude is 65504): there -6e4, whose exp also underflows to 0.
constexpr double kMaskedScore = -1e9;
constexpr double kMaskedScoreHalf = -6e4;

at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& key_padding, double dropout, bool training,
                  at::Tensor* weights) {
  at::Tensor scores = CountedMatmul(q, k.transpose(-2, -1));  // [B, H, Tq, Tk]
  at::Tensor has_keys;
  if (key_padding.defined()) {
    const int64_t batch = key_padding.size(0);
    const int64_t keys = key_padding.size(1);
    scores = scores.masked_fill(key_padding.view({batch, 1, 1, keys}),
                                scores.scalar_type() == at::kHalf ? kMaskedScoreHalf : kMaskedScore);
    has_keys = (~key_padding).any(-1).view({batch, 1, 1, 1});
  }
  at::Tensor w = at::softmax(scores, -1);
  if (has_keys.defined()) w = w * has_keys;
  if (weights != nullptr) *weights = w;
  if (training && dropout > 0) w = at::dropout(w, dropout, /*train=*/true);
  return CountedMatmul(w, v);
}

void SplitHeads(const at::Tensor& qkv, int64_t heads, at::Tensor* q, at::Tensor* k,
                at::Tensor* v) {
  const int64_t batch = qkv.size(0);
  const int64_t tokens = qkv.size(1);
  const int64_t head_dim = qkv.size(2) / (3 * heads);
  at::Tensor split = qkv.view({batch, tokens, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  *q = split[0] * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  *k = split[1];
  *v = split[2];
}

at::Tensor MergeHeads(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

}  // namespace mmfuse::model
