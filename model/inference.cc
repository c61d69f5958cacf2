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
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/multimodal_model.h"

namespace mmfuse::model {

namespace {

std::vector<float> ToVector(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  std::vector<float> out(c.numel());
  std::memcpy(out.data(), c.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

}  // namespace

absl::StatusOr<std::vector<float>> PredictProbabilities(
    const ModelPackage& package, absl::Span<const FeatureMap* const> samples, int branch) {
  try {
    c10::InferenceMode guard;
    MultimodalModel model = package.model;  // Shares the module; forward is not const.
    if (branch < 0 || branch >= model->num_branches()) {
      return absl::InvalidArgumentError(absl::StrCat("branch ", branch, " does not exist"));
    }
    const std::vector<Branch> branches = ResolveBranches(package.config);
    std::vector<ModalityInput> inputs =
        Collate(package.config, samples, branches[branch].modalities);
    return ToVector(at::softmax(model->forward(inputs, branch), -1));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("model forward failed: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::vector<float>> GateLogits(const ModelPackage& package,
                                              absl::Span<const FeatureMap* const> samples) {
  try {
    c10::InferenceMode guard;
    MultimodalModel model = package.model;
    if (!model->has_gate()) return absl::FailedPreconditionError("the model has no gate");
    return ToVector(
        model->gate()->forward(Collate(package.config, samples, AllModalities(package.config))));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("gate forward failed: ", e.what_without_backtrace()));
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
