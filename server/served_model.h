// ServedModel: one loaded model package behind its own dynamic batcher: the
// unit the gRPC service routes requests to. Validates a request, queues it,
// and when its batch has run fills the response (top-k, branch, cost,
// timings). No gRPC and no LibTorch in this header.
//
// A request that needs the gate (a gated package, budget not ACCURATE) runs
// two stages on the batcher's workers: it queues for the gate, which runs on
// a batch of such requests and chooses each one's branch; the request then
// joins its branch's queue (batching::Task::requeue) and the branch's expert
// runs it. The caller's thread only validates and queues: it never runs a
// forward pass.
//
// Thread-safety: thread-safe.
#ifndef MMFUSE_SERVER_SERVED_MODEL_H_
#define MMFUSE_SERVER_SERVED_MODEL_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "batching/batcher.h"
#include "batching/load_bias.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"
#include "model/branch_policy.h"
#include "model/model_config.h"

namespace mmfuse::model {
struct ModelPackage;
}  // namespace mmfuse::model

namespace mmfuse::server {

class ServerMetrics;

// Flag overrides of the package's batching config; 0 (or empty) keeps the
// package's value, then the batcher's default.
struct ServingOptions {
  // Where Load puts the model: a resolved device ("cpu", "cuda:N";
  // model/device.h resolves "auto"). One worker = one stream on a GPU.
  std::string device = "cpu";
  // Number format on that device: "fp32", "bf16", "fp16" (model/device.h).
  std::string precision = "fp32";
  // Replay CUDA graphs per shape bucket (model/cuda_graphs.h); a GPU and a
  // CUDA LibTorch only.
  bool cuda_graphs = false;
  // Batcher worker threads, in common/setting_range.h's ranges::kWorkers.
  // Default 2.
  int workers = 2;
  // Overrides of the package's batching config (ModelConfig.batching);
  // unset = the package's value, or the batcher's default where the package
  // leaves it 0. Ranges in common/setting_range.h; server/settings.h checks
  // them at start.
  std::optional<int> max_batch_size;
  std::optional<int64_t> max_queue_delay_us;  // 0 = run a batch at once.
  std::optional<int> max_queue_size;          // Requests waiting per queue.
  std::optional<int64_t> max_batch_tokens;
  std::optional<int> priority_levels;
  std::optional<int64_t> default_timeout_ms;  // For requests with no deadline.
  // Longest estimated queue wait a request is accepted with.
  std::optional<int64_t> max_queue_time_ms;
  // Per-modality geometric length buckets (batching.length_bucket_ratio):
  // 0 = none, else in [1.05, 16].
  std::optional<double> length_bucket_ratio;
  // Whether a client's deadline may exceed the default timeout.
  bool allow_timeout_override = true;
  // Load-adaptive gating: raise the bias toward cheap branches while queue
  // waits exceed load_bias.target_wait (batching/load_bias.h). Off by default.
  bool adaptive_load_bias = false;
  batching::LoadBiasOptions load_bias;
  // Every branch shares one queue per length bucket, as in a server that
  // does not know the model's branches: a batch then mixes branches and runs
  // one expert per branch group in turn. Off by default (a queue per branch);
  // for measuring what gate-then-batch is worth.
  bool mixed_branch_queues = false;
  ServerMetrics* metrics = nullptr;  // Not owned; may be null.
  Clock* clock = nullptr;            // Not owned; nullptr = real clock.
};

// What the caller knows about the call carrying a request.
struct CallContext {
  absl::Time received = absl::InfinitePast();   // When the request arrived.
  absl::Time deadline = absl::InfiniteFuture();  // The client's deadline.
  // True once the client has gone; must be thread-safe. May be empty.
  std::function<bool()> is_cancelled;
};

class ServedModel {
 public:
  // Loads the package in `dir` and starts its batcher.
  static absl::StatusOr<std::unique_ptr<ServedModel>> Load(const std::string& dir,
                                                           const ServingOptions& options);
  // Serves an already loaded package.
  static absl::StatusOr<std::unique_ptr<ServedModel>> Create(
      std::shared_ptr<const model::ModelPackage> package, const ServingOptions& options);
  ~ServedModel();  // Shuts down.

  const std::string& name() const { return config_.name(); }
  const v1::ModelConfig& config() const { return config_; }
  const v1::ModelInfo& info() const { return info_; }

  // Classifies `*request` into `*response`; `done` runs exactly once, on the
  // caller's thread if the request is refused (INVALID_ARGUMENT,
  // RESOURCE_EXHAUSTED, UNAVAILABLE), else later on a batcher worker.
  // `request` and `response` must stay valid until then.
  void Classify(const v1::ClassifyRequest* request, v1::ClassifyResponse* response,
                const CallContext& call, std::function<void(absl::Status)> done);

  // Refuses new requests (UNAVAILABLE) and finishes every accepted one.
  void Shutdown();

  batching::BatcherStats Stats() const { return batcher_->Stats(); }

  // Requests waiting now per queue stage: each branch's name, then
  // kGateStage for the gate's queue (gated packages only).
  std::vector<std::pair<std::string, int64_t>> QueueDepths() const;
  static constexpr char kGateStage[] = "(gate)";

  // Process-wide shift toward cheaper branches (0 = none): the gate's score
  // of branch b loses bias * cost_b / cost_full. Set under load.
  void SetLoadBias(double bias) { load_bias_.store(bias); }
  double load_bias() const { return load_bias_.load(); }

 private:
  class Processor;
  ServedModel(std::shared_ptr<const model::ModelPackage> package, const ServingOptions& options);
  // Sets the task's queue from its payload's branch (and inputs present).
  void JoinBranchQueue(batching::Task* task) const;
  // The gate stage: runs the gate on `batch` and sends each task on to its
  // branch's queue. Called by the processor on a worker.
  std::vector<absl::Status> RunGate(absl::Span<batching::Task* const> batch) const;

  std::shared_ptr<const model::ModelPackage> package_;
  v1::ModelConfig config_;
  std::vector<std::string> labels_;
  v1::ModelInfo info_;
  int priority_levels_ = 1;
  ServerMetrics* metrics_;
  bool mixed_branch_queues_;
  double bucket_ratio_;  // Of the length buckets per modality; 0 = none.
  model::BranchPolicy policy_;
  // Batcher branch of the gate's queue (one past the model's branches); -1
  // = the package has no gate.
  int gate_stage_ = -1;
  model::Branch gate_inputs_;  // Every modality: the gate reads them all.

  std::atomic<double> load_bias_{0};
  std::unique_ptr<batching::LoadBiasController> load_bias_controller_;  // Null = off.
  std::unique_ptr<Processor> processor_;
  std::unique_ptr<batching::Batcher> batcher_;  // Declared last: stops first.
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_SERVED_MODEL_H_
