#include "model/inference.h"

#include <dlfcn.h>

#include <cstring>

#include <ATen/Parallel.h>
#include <ATen/ops/softmax.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "model/collate.h"
#include "model/model_package.h"

namespace mmfuse::model {

absl::StatusOr<std::vector<float>> PredictProbabilities(
    const ModelPackage& package, absl::Span<const FeatureMap* const> samples,
    const std::vector<int>& run_modalities) {
  try {
    c10::InferenceMode guard;
    std::vector<ModalityInput> inputs = Collate(package.config, samples, run_modalities);
    FusionTransformer model = package.model;  // Shares the module; forward is not const.
    torch::Tensor probabilities = at::softmax(model->forward(inputs), -1).contiguous();
    std::vector<float> out(probabilities.numel());
    std::memcpy(out.data(), probabilities.data_ptr<float>(), out.size() * sizeof(float));
    return out;
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("model forward failed: ", e.what_without_backtrace()));
  }
}

int64_t ParameterCount(const ModelPackage& package) { return CountParameters(*package.model); }

void SeedRandom(uint64_t seed) { torch::manual_seed(seed); }

void LimitMathThreads(int threads) {
  at::set_num_threads(threads);
  // OpenBLAS is reached through the BLAS alternative LibTorch links; look its
  // setter up at run time so a build against another BLAS still links.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set(threads);
  }
}

}  // namespace mmfuse::model
