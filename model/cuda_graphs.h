// CUDA graphs for a package's forwards (--cuda_graphs). A small fusion
// transformer launches hundreds of short kernels per batch; on a GPU the
// launches, not the arithmetic, bound a batch of a few samples. A graph
// records a forward once per shape bucket (model/graph_shape.h) and replays
// it as one launch.
//
// Graphs belong to the worker thread that captured them (its stream, its
// memory pool, its input and output buffers), so workers replay without
// locks and never share a buffer. A shape whose capture fails (an operation
// that cannot be captured) runs eagerly from then on, said once on stderr;
// past kMaxGraphsPerWorker shapes new ones run eagerly too.
//
// Built from model/cuda_graphs_cuda.cc against a CUDA LibTorch, from
// model/cuda_graphs_unavailable.cc otherwise (Debian's CPU LibTorch).
#ifndef MMFUSE_MODEL_CUDA_GRAPHS_H_
#define MMFUSE_MODEL_CUDA_GRAPHS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "model/fusion_transformer.h"

namespace mmfuse::model {

struct ModelPackage;

inline constexpr int kMaxGraphsPerWorker = 64;

// Whether this build can capture CUDA graphs (linked against a CUDA LibTorch).
bool CudaGraphsBuilt();

// Counts over every worker of one package, for logs and benchmarks.
struct CudaGraphStats {
  int64_t captured = 0;  // Graphs recorded.
  int64_t failed = 0;    // Shapes whose capture failed (they run eagerly).
  int64_t replays = 0;   // Batches served by a graph.
  int64_t eager = 0;     // Batches run eagerly (failed shapes, past the cap).
};

// The graphs of one package (ModelPackage::cuda_graphs); opaque.
class CudaGraphCache;
std::shared_ptr<CudaGraphCache> NewCudaGraphCache();
CudaGraphStats StatsOf(const CudaGraphCache& cache);

// Host softmax probabilities, row-major [batch rows x classes], of
// `host_batch` (collated in pinned host memory, model/collate.h) on
// `branch`, through the calling thread's graph for the batch's shape bucket,
// captured on first use, on the calling thread's current stream. nullopt
// where the batch must run eagerly instead (no graphs in this build, the
// package has none, the shape's capture failed, the cap is reached).
std::optional<std::vector<float>> GraphedProbabilities(const ModelPackage& package,
                                                       const std::vector<ModalityInput>& host_batch,
                                                       int branch);

// Held shared by every batch that runs on a GPU and exclusively by a
// capture. CUDA's default (global) capture mode fails a capture when any
// other thread makes a synchronising call meanwhile, and LibTorch 1.13 has
// no other mode; captures are rare (a shape's first batch), so the others
// wait for them.
inline absl::Mutex& CaptureExclusion() {
  static absl::Mutex mutex(absl::kConstInit);
  return mutex;
}

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_CUDA_GRAPHS_H_
