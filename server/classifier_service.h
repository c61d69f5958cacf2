// ClassifierService: mmfuse.v1.MultimodalClassifier on gRPC's callback API.
// Handlers validate, submit to the model's batcher and return; responses are
// finished from the batcher's completion, on whatever thread runs it. Nothing
// blocks in a handler or a reaction.
//
// Thread-safety: thread-safe. Models are added before the server starts and
// outlive it.
#ifndef MMFUSE_SERVER_CLASSIFIER_SERVICE_H_
#define MMFUSE_SERVER_CLASSIFIER_SERVICE_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "mmfuse/v1/classifier.grpc.pb.h"
#include "server/served_model.h"

namespace mmfuse::server {

// Most requests of one ClassifyStream in flight at once; the stream stops
// reading (gRPC flow control pushes back on the client) until one finishes.
inline constexpr int kMaxStreamInflight = 256;

class ClassifierService final : public v1::MultimodalClassifier::CallbackService {
 public:
  // `metrics` is not owned and may be null.
  explicit ClassifierService(ServerMetrics* metrics) : metrics_(metrics) {}

  // The first model added is the default. Call before serving.
  void AddModel(std::unique_ptr<ServedModel> model);
  const std::map<std::string, std::unique_ptr<ServedModel>>& models() const { return models_; }

  // From now on every new request is answered UNAVAILABLE.
  void StartDraining() { draining_.store(true); }
  // Finishes every accepted request (drains each model's batcher).
  void ShutdownModels();

  // Finds `name` (empty = default). Also answers UNAVAILABLE while draining.
  absl::StatusOr<ServedModel*> Route(const std::string& name) const;

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override;
  grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>* ClassifyStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

  // Counts, since start, of requests routed to a model (accepted) and of
  // those answered, so shutdown can prove nothing accepted was lost.
  struct Counts {
    int64_t accepted = 0;
    int64_t answered = 0;
    int64_t answered_ok = 0;
  };
  Counts counts() const;

  // Records a finished request (any outcome) in the metrics.
  void RecordFinished(const std::string& model, const absl::Status& status, absl::Time received);
  // Brackets a request's life inside a model, for counts().
  void RecordAccepted() { accepted_.fetch_add(1); }
  void RecordAnswered(const absl::Status& status);

 private:
  ServerMetrics* metrics_;
  std::map<std::string, std::unique_ptr<ServedModel>> models_;
  ServedModel* default_model_ = nullptr;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> accepted_{0};
  std::atomic<int64_t> answered_{0};
  std::atomic<int64_t> answered_ok_{0};
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_CLASSIFIER_SERVICE_H_
