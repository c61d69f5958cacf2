// MacCounter: counts the multiply-adds the model's matmuls actually execute,
// from the shapes they run on. Tests and tools install one to check
// model/flops.h against the code; with none installed the counted helpers
// cost one thread-local read.
//
// Thread-safety: a counter counts its own thread only.
#ifndef MMFUSE_MODEL_MAC_COUNTER_H_
#define MMFUSE_MODEL_MAC_COUNTER_H_

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <torch/nn/modules/linear.h>

namespace mmfuse::model {

class MacCounter {
 public:
  MacCounter();   // Counts on this thread until destroyed (nests).
  ~MacCounter();
  MacCounter(const MacCounter&) = delete;
  MacCounter& operator=(const MacCounter&) = delete;

  int64_t macs() const { return macs_; }
  // Adds to the innermost counter of this thread, if any.
  static void Add(int64_t macs);

 private:
  int64_t macs_ = 0;
  MacCounter* previous_;
};

// a: [..., n, k], b: [..., k, m] (broadcast batch dims) -> [..., n, m].
at::Tensor CountedMatmul(const at::Tensor& a, const at::Tensor& b);
// layer(x), counting in_features multiply-adds per output value.
at::Tensor CountedLinear(torch::nn::Linear& layer, const at::Tensor& x);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_MAC_COUNTER_H_
