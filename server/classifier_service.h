// ClassifierService: mmfuse.v1.MultimodalClassifier on gRPC's callback API.
// Handlers validate, submit to the model's batcher and return; responses are
// finished from the batcher's completion, on whatever thread runs it. Nothing
// blocks in a handler or a reaction.
//
// Feature streams (StreamFeatures, StreamFeaturesInteractive): each chunk is
// checked and appended by a FeatureAssembler as it is read; the half-close
// submits the assembled request to ServedModel::Classify like Classify does.
// The stream and idle timeouts run on one StreamTimer thread owned by the
// service; a stream's state is freed once gRPC is done with the call and the
// timer has dropped its callback (reference counted, nothing waits).
//
// Thread-safety: thread-safe. Models are added before the server starts and
// outlive it.
#ifndef MMFUSE_SERVER_CLASSIFIER_SERVICE_H_
#define MMFUSE_SERVER_CLASSIFIER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "server/feature_assembler.h"
#include "server/metrics.h"
#include "server/open_calls.h"
#include "server/served_model.h"

namespace mmfuse::server {

// Most requests of one ClassifyStream in flight at once; the stream stops
// reading (gRPC flow control pushes back on the client) until one finishes.
inline constexpr int kMaxStreamInflight = 256;
// Most interim classifications of one StreamFeaturesInteractive call in
// flight at once; the stream stops reading until one is answered.
inline constexpr int kMaxInterimInflight = 4;

class StreamTimer;

struct FeatureStreamOptions {
  // Per-stream limits checked as chunks arrive (max_stream_bytes default
  // 64 MiB, max_chunks default 100000); see FeatureAssembler::Options.
  FeatureAssembler::Options limits;
  // Longest a feature stream may stay open before its half-close; then it
  // ends DEADLINE_EXCEEDED. > 0. Default 60 s.
  absl::Duration stream_timeout = absl::Seconds(60);
  // Longest a feature stream may go without a chunk (from its opening, and
  // from each chunk) before its half-close; then it ends DEADLINE_EXCEEDED.
  // > 0. Default 10 s.
  absl::Duration idle_timeout = absl::Seconds(10);
  // Not owned; must outlive the service. nullptr = the real clock.
  Clock* clock = nullptr;
};

class ClassifierService final : public v1::MultimodalClassifier::CallbackService {
 public:
  // Checks `options`; errors name the field and its limit.
  static absl::Status ValidateOptions(const FeatureStreamOptions& options);

  // `metrics` is not owned and may be null. `streams` must have passed
  // ValidateOptions.
  explicit ClassifierService(ServerMetrics* metrics, const FeatureStreamOptions& streams = {});
  ~ClassifierService() override;

  // The first model added is the default. Call before serving.
  void AddModel(std::unique_ptr<ServedModel> model);
  const std::map<std::string, std::unique_ptr<ServedModel>>& models() const { return models_; }

  // From now on every new request is answered UNAVAILABLE, and every open
  // stream stops reading, answers what it has read and ends UNAVAILABLE
  // (OpenCalls). Returns once the admissions in progress (Admit) have
  // queued their requests, so the ShutdownModels that follows computes
  // every accepted request.
  void StartDraining();
  // Once draining, the last time a new request or stream was refused as
  // shutting down (InfinitePast if none was): shutdown waits for a quiet
  // moment before gRPC's own shutdown, which cancels the calls it has not
  // handed to the service yet (a bare CANCELLED, which clients do not
  // retry).
  absl::Time last_refusal() const;
  // Finishes every accepted request (drains each model's batcher).
  void ShutdownModels();

  // Finds `name` (empty = default). Also answers UNAVAILABLE while draining.
  absl::StatusOr<ServedModel*> Route(const std::string& name) const;
  // Finds `name` (empty = default) whether or not the server is draining;
  // NOT_FOUND naming it if it is not loaded.
  absl::StatusOr<ServedModel*> Find(const std::string& name) const;
  // True from StartDraining on.
  bool draining() const { return draining_.load(); }

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerReadReactor<v1::FeatureChunk>* StreamFeatures(
      grpc::CallbackServerContext* context, v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<v1::FeatureChunk, v1::ClassifyResponse>* StreamFeaturesInteractive(
      grpc::CallbackServerContext* context) override;

  // Feature streams whose state is held now (open, or ended and not yet
  // freed).
  int64_t open_feature_streams() const;
  // Waits until at most `n` feature streams are held, or `deadline` (on the
  // service's clock); returns whether that happened. For tests and tools.
  bool AwaitOpenFeatureStreamsAtMost(int64_t n, absl::Time deadline) const;

  // Counts, since start, of requests routed to a model (accepted) and of
  // those answered, so shutdown can prove nothing accepted was lost.
  struct Counts {
    int64_t accepted = 0;
    int64_t answered = 0;
    int64_t answered_ok = 0;
    // Answers computed that never reached their client (OpenCalls).
    int64_t undelivered = 0;
  };
  Counts counts() const;

  // Records a finished request (any outcome) in the metrics, under the
  // protocol it came in on (kProtocolMmfuse, kProtocolKserve).
  void RecordFinished(const std::string& model, const absl::Status& status, absl::Time received,
                      const char* protocol = kProtocolMmfuse);

  // Every protocol's way into a model. Accepts `request` (counted in
  // counts() and the in-flight gauge) and hands it to `model`, whose answer
  // `done` gets, exactly once, on any thread, possibly inline; or, once the
  // server is draining, answers `done` UNAVAILABLE without accepting it.
  // The check and the hand-off are one step for StartDraining: an accepted
  // request is always in a batcher before the batchers drain, never refused
  // by a batcher already shut down.
  void Admit(ServedModel* model, const v1::ClassifyRequest* request,
             v1::ClassifyResponse* response, CallContext call,
             std::function<void(absl::Status)> done);

  // For the feature stream reactors.
  ServerMetrics* metrics() const { return metrics_; }
  const FeatureStreamOptions& stream_options() const { return streams_; }
  Clock* clock() const { return clock_; }
  StreamTimer* stream_timer() const { return timer_.get(); }
  void StreamOpened();
  void StreamClosed();
  // Every streaming call joins it; unary calls count undelivered answers.
  OpenCalls* open_calls() { return &open_calls_; }
  const OpenCalls* open_calls() const { return &open_calls_; }
  // Records a refusal as shutting down (see last_refusal) and returns it.
  absl::Status RefuseShuttingDown() const;

 private:
  ServerMetrics* metrics_;
  const FeatureStreamOptions streams_;
  Clock* const clock_;
  std::map<std::string, std::unique_ptr<ServedModel>> models_;
  ServedModel* default_model_ = nullptr;
  std::atomic<bool> draining_{false};  // Set under admission_mu_.
  absl::Mutex admission_mu_;
  int admitting_ ABSL_GUARDED_BY(admission_mu_) = 0;  // Admit calls past the check.
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> answered_{0};
  std::atomic<int64_t> answered_ok_{0};
  mutable std::atomic<int64_t> last_refusal_ns_{0};  // absl::ToUnixNanos; 0 = none
  OpenCalls open_calls_;
  mutable absl::Mutex streams_mu_;
  int64_t open_streams_ ABSL_GUARDED_BY(streams_mu_) = 0;
  // Declared last, destroyed first: dropping its callbacks may free streams,
  // which call StreamClosed().
  std::unique_ptr<StreamTimer> timer_;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_CLASSIFIER_SERVICE_H_
