#include "model/inference.h"

#include <dlfcn.h>

#include <map>
#include <optional>

#include <ATen/Parallel.h>
#include <ATen/ops/softmax.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <c10/util/Exception.h>
#include <torch/utils.h>

#include "absl/strings/str_cat.h"
#include "model/collate.h"
#include "model/cuda_graphs.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/multimodal_model.h"

namespace mmfuse::model {

namespace {

// On an accelerator, each calling thread (a batcher worker) runs its batches
// on a stream of its own from LibTorch's pool, so one worker's copies and
// kernels overlap another's instead of queueing behind them on the default
// stream. Written against c10's device-generic guard interface, so it
// compiles with a CPU-only LibTorch; on the CPU there is no stream to set.
//
// The calling thread's stream on `device` (not the CPU).
c10::Stream WorkerStream(const torch::Device& device) {
  thread_local std::map<std::pair<int, int>, c10::Stream> streams;
  const std::pair<int, int> key(static_cast<int>(device.type()), device.index());
  auto it = streams.find(key);
  if (it == streams.end()) {
    const c10::impl::VirtualGuardImpl impl(device.type());
    it = streams.emplace(key, impl.getStreamFromGlobalPool(device)).first;
  }
  return it->second;
}

// Sets the calling thread's stream for the guard's lifetime; nothing on the
// CPU.
void UseWorkerStream(const torch::Device& device, c10::OptionalStreamGuard* guard) {
  if (!device.is_cpu()) guard->reset_stream(WorkerStream(device));
}

// Shares CaptureExclusion (model/cuda_graphs.h) for an eager batch on a GPU
// of a process that captures graphs; nothing otherwise.
class EagerBatchScope {
 public:
  explicit EagerBatchScope(const ModelPackage& package)
      : mutex_(!package.device.is_cpu() && CudaGraphsBuilt() ? &CaptureExclusion() : nullptr) {
    if (mutex_ != nullptr) mutex_->ReaderLock();
  }
  ~EagerBatchScope() {
    if (mutex_ != nullptr) mutex_->ReaderUnlock();
  }
  EagerBatchScope(const EagerBatchScope&) = delete;
  EagerBatchScope& operator=(const EagerBatchScope&) = delete;

 private:
  absl::Mutex* const mutex_;
};

// Collates `modalities` of `samples` on the host, into pinned memory when
// the package's device is not the CPU (so the copies there do not block).
std::vector<ModalityInput> HostBatch(const ModelPackage& package,
                                     absl::Span<const FeatureMap* const> samples,
                                     const std::vector<int>& modalities) {
  return Collate(package.config, samples, modalities, /*pin_memory=*/!package.device.is_cpu());
}

std::vector<ModalityInput> OnDevice(const ModelPackage& package, std::vector<ModalityInput> batch) {
  return ToDevice(std::move(batch), package.device, package.dtype);
}

thread_local int64_t forward_passes_on_this_thread = 0;

}  // namespace

int64_t ForwardPassesOnThisThread() { return forward_passes_on_this_thread; }

absl::StatusOr<std::vector<float>> PredictProbabilities(
    const ModelPackage& package, absl::Span<const FeatureMap* const> samples, int branch) {
  ++forward_passes_on_this_thread;
  try {
    c10::InferenceMode guard;
    MultimodalModel model = package.model;  // Shares the module; forward is not const.
    if (branch < 0 || branch >= model->num_branches()) {
      return absl::InvalidArgumentError(absl::StrCat("branch ", branch, " does not exist"));
    }
    const std::vector<Branch> branches = ResolveBranches(package.config);
    c10::OptionalStreamGuard stream;
    UseWorkerStream(package.device, &stream);
    std::vector<ModalityInput> batch = HostBatch(package, samples, branches[branch].modalities);
    if (package.cuda_graphs) {
      std::optional<std::vector<float>> graphed = GraphedProbabilities(package, batch, branch);
      if (graphed) return *std::move(graphed);
    }
    const EagerBatchScope eager(package);
    return HostFloats(
        at::softmax(model->forward(OnDevice(package, std::move(batch)), branch), -1));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("model forward failed: ", e.what_without_backtrace()));
  }
}

absl::StatusOr<std::vector<float>> GateLogits(const ModelPackage& package,
                                              absl::Span<const FeatureMap* const> samples) {
  ++forward_passes_on_this_thread;
  try {
    c10::InferenceMode guard;
    MultimodalModel model = package.model;
    if (!model->has_gate()) return absl::FailedPreconditionError("the model has no gate");
    c10::OptionalStreamGuard stream;
    UseWorkerStream(package.device, &stream);
    const EagerBatchScope eager(package);
    return HostFloats(model->gate()->forward(
        OnDevice(package, HostBatch(package, samples, AllModalities(package.config)))));
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("gate forward failed: ", e.what_without_backtrace()));
  }
}

int64_t ParameterCount(const ModelPackage& package) { return CountParameters(*package.model); }

std::string DeviceName(const ModelPackage& package) { return package.device.str(); }

std::string PrecisionName(const ModelPackage& package) {
  switch (package.dtype) {
    case torch::kBFloat16:
      return "bf16";
    case torch::kHalf:
      return "fp16";
    default:
      return "fp32";
  }
}

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
