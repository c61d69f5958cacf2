// CUDA graphs against a CUDA LibTorch (1.13 or 2.x). Compiled only when
// CMake finds LibTorch's CUDA libraries (model/CMakeLists.txt).
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include <ATen/cuda/CUDAGraph.h>
#include <ATen/ops/softmax.h>
#include <c10/core/InferenceMode.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include "model/collate.h"
#include "model/cuda_graphs.h"
#include "model/graph_shape.h"
#include "model/model_package.h"

namespace mmfuse::model {

namespace {

struct CapturedGraph {
  std::unique_ptr<at::cuda::CUDAGraph> graph;  // Null: this shape runs eagerly.
  std::vector<ModalityInput> inputs;           // The buffers the graph reads...
  torch::Tensor probabilities;                 // ...and the one it writes.
};

// One worker thread's graphs. They share one memory pool: the thread
// replays one graph at a time and copies its output out before the next.
struct WorkerGraphs {
  bool has_pool = false;
  c10::cuda::MempoolId_t pool{0, 0};
  std::map<GraphShape, CapturedGraph> graphs;
};

// Ends a capture that an exception left open on `stream`, so the stream
// runs eagerly again.
void AbandonCapture(at::cuda::CUDAGraph* graph, cudaStream_t stream) {
  try {
    graph->capture_end();
  } catch (const c10::Error&) {
    // Expected: the capture was invalidated.
  }
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) == cudaSuccess &&
      status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);
    if (partial != nullptr) cudaGraphDestroy(partial);
  }
  cudaGetLastError();  // Clears the capture's error, which is not sticky.
}

}  // namespace

class CudaGraphCache {
 public:
  WorkerGraphs& ForThisThread() {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<WorkerGraphs>& worker = workers_[std::this_thread::get_id()];
    if (!worker) worker = std::make_unique<WorkerGraphs>();
    return *worker;
  }

  std::atomic<int64_t> captured{0}, failed{0}, replays{0}, eager{0};

 private:
  absl::Mutex mu_;
  // A thread's entry is used only by that thread; the map itself is guarded.
  std::map<std::thread::id, std::unique_ptr<WorkerGraphs>> workers_ ABSL_GUARDED_BY(mu_);
};

bool CudaGraphsBuilt() { return true; }

std::shared_ptr<CudaGraphCache> NewCudaGraphCache() { return std::make_shared<CudaGraphCache>(); }

CudaGraphStats StatsOf(const CudaGraphCache& cache) {
  CudaGraphStats stats;
  stats.captured = cache.captured.load();
  stats.failed = cache.failed.load();
  stats.replays = cache.replays.load();
  stats.eager = cache.eager.load();
  return stats;
}

namespace {

// Records `shape`'s forward into `entry` on the current stream; on failure
// leaves `entry->graph` null and says so once.
void Capture(const ModelPackage& package, const GraphShape& shape,
             const std::vector<ModalityInput>& host_batch, WorkerGraphs* worker,
             CudaGraphCache* cache, CapturedGraph* entry) {
  absl::MutexLock exclusive(&CaptureExclusion());
  MultimodalModel model = package.model;
  const c10::cuda::CUDAStream stream = c10::cuda::getCurrentCUDAStream();
  auto graph = std::make_unique<at::cuda::CUDAGraph>();
  bool capturing = false;
  try {
    entry->inputs = PaddedToShape(host_batch, shape,
                                  at::TensorOptions().device(package.device).dtype(package.dtype));
    // One eager pass first: cuBLAS handles, lazily initialised kernels and
    // the allocator's first blocks must not happen inside the capture.
    at::softmax(model->forward(entry->inputs, shape.branch), -1);
    stream.synchronize();
    if (!worker->has_pool) {
      worker->pool = at::cuda::graph_pool_handle();
      worker->has_pool = true;
    }
    capturing = true;
    graph->capture_begin(worker->pool);
    entry->probabilities = at::softmax(model->forward(entry->inputs, shape.branch), -1);
    graph->capture_end();
    capturing = false;
    entry->graph = std::move(graph);
    ++cache->captured;
  } catch (const c10::Error& e) {
    if (capturing) AbandonCapture(graph.get(), stream.stream());
    entry->inputs.clear();
    entry->probabilities = torch::Tensor();
    ++cache->failed;
    std::fprintf(stderr, "mmfuse: CUDA graph capture failed for %s; that shape runs eagerly: %s\n",
                 shape.DebugString().c_str(), e.what_without_backtrace());
  }
}

}  // namespace

std::optional<std::vector<float>> GraphedProbabilities(const ModelPackage& package,
                                                       const std::vector<ModalityInput>& host_batch,
                                                       int branch) {
  if (!package.cuda_graphs || package.device.is_cpu()) return std::nullopt;
  CudaGraphCache& cache = *package.cuda_graphs;
  WorkerGraphs& worker = cache.ForThisThread();
  const GraphShape shape = GraphShapeOf(package.config, host_batch, branch);
  auto it = worker.graphs.find(shape);
  if (it == worker.graphs.end()) {
    if (static_cast<int>(worker.graphs.size()) >= kMaxGraphsPerWorker) {
      ++cache.eager;
      return std::nullopt;
    }
    it = worker.graphs.emplace(shape, CapturedGraph{}).first;
    c10::InferenceMode inference;
    Capture(package, shape, host_batch, &worker, &cache, &it->second);
  }
  CapturedGraph& entry = it->second;
  if (!entry.graph) {
    ++cache.eager;
    return std::nullopt;
  }
  absl::ReaderMutexLock shared(&CaptureExclusion());
  c10::InferenceMode inference;
  CopyIntoPadded(host_batch, &entry.inputs);
  entry.graph->replay();
  ++cache.replays;
  int64_t rows = 0;  // The batch's own rows; the rest are padding.
  for (const ModalityInput& input : host_batch) {
    if (input.features.defined()) rows = input.features.size(0);
  }
  return HostFloats(entry.probabilities.narrow(0, 0, rows));
}

}  // namespace mmfuse::model
