#include "model/mac_counter.h"

#include <ATen/ops/matmul.h>

namespace mmfuse::model {
namespace {
thread_local MacCounter* current_counter = nullptr;
}  // namespace

MacCounter::MacCounter() : previous_(current_counter) { current_counter = this; }

MacCounter::~MacCounter() { current_counter = previous_; }

void MacCounter::Add(int64_t macs) {
  if (current_counter != nullptr) current_counter->macs_ += macs;
}

at::Tensor CountedMatmul(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor out = at::matmul(a, b);
  if (current_counter != nullptr) MacCounter::Add(out.numel() * a.size(-1));
  return out;
}

at::Tensor CountedLinear(torch::nn::Linear& layer, const at::Tensor& x) {
  at::Tensor out = layer(x);
  if (current_counter != nullptr) MacCounter::Add(out.numel() * x.size(-1));
  return out;
}

}  // namespace mmfuse::model
