// CUDA graphs in a build without CUDA (Debian's CPU LibTorch): there is
// nothing to capture, and EnableCudaGraphs refuses before any batch runs.
#include "model/cuda_graphs.h"

namespace mmfuse::model {

class CudaGraphCache {};

bool CudaGraphsBuilt() { return false; }

std::shared_ptr<CudaGraphCache> NewCudaGraphCache() { return std::make_shared<CudaGraphCache>(); }

CudaGraphStats StatsOf(const CudaGraphCache&) { return {}; }

std::optional<std::vector<float>> GraphedProbabilities(const ModelPackage&,
                                                       const std::vector<ModalityInput>&, int) {
  return std::nullopt;
}

}  // namespace mmfuse::model
