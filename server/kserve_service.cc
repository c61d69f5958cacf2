#include "server/kserve_service.h"

#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc_call_context.h"
#include "server/grpc_status.h"
#include "server/kserve_convert.h"
#include "server/metrics.h"
#include "server/response_write_queue.h"

namespace mmfuse::server {
namespace {

using inference::ModelInferRequest;
using inference::ModelInferResponse;
using inference::ModelStreamInferResponse;

// One ModelStreamInfer call: as ClassifyStream's reactor (server/
// classifier_service.cc). Each request read is submitted at once through
// KServeService::Infer (up to kMaxKServeStreamInflight in flight);
// responses are written one at a time, in completion order; a failed
// request is answered with error_message set and the stream goes on. The
// call finishes once the client has half-closed (or gone), every request is
// answered and the last write is done, so no completion outlives the
// reactor.
class StreamInferReactor final
    : public grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse> {
 public:
  StreamInferReactor(KServeService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context) {
    read_pending_ = true;
    StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      {
        absl::MutexLock lock(&mu_);
        read_pending_ = false;
        reads_done_ = true;
      }
      MaybeFinish();
      return;
    }
    const absl::Time received = absl::Now();
    auto sample = std::make_unique<Sample>();
    sample->request = std::move(incoming_);
    incoming_.Clear();
    Sample* raw = sample.get();
    bool read_more;
    {
      absl::MutexLock lock(&mu_);
      samples_.emplace(raw, std::move(sample));
      read_more = samples_.size() < kMaxKServeStreamInflight && !cancelled_;
      read_pending_ = read_more;
    }
    // Read before submitting: a refused request completes inline, and its
    // completion must see the read already in flight.
    if (read_more) StartRead(&incoming_);
    service_->Infer(&raw->request, &raw->response, MakeCallContext(context_, received),
                    [this, raw](absl::Status status) { Complete(raw, status); });
  }

  void OnWriteDone(bool ok) override {
    ModelStreamInferResponse* next;
    {
      absl::MutexLock lock(&mu_);
      next = writes_.WriteDone(ok);
    }
    if (next != nullptr) StartWrite(next);
    MaybeFinish();
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      // A read in flight completes (not ok) by itself; a paused one never will.
      if (!read_pending_) reads_done_ = true;
    }
    MaybeFinish();
  }

  void OnDone() override { delete this; }

 private:
  struct Sample {
    ModelInferRequest request;
    ModelInferResponse response;
  };

  // Runs exactly once per request read, on any thread.
  void Complete(Sample* sample, const absl::Status& status) {
    ModelStreamInferResponse answer;
    if (status.ok()) {
      *answer.mutable_infer_response() = std::move(sample->response);
    } else {
      // The id (and what the client asked for) lets it match the error.
      answer.set_error_message(
          absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message()));
      ModelInferResponse* echo = answer.mutable_infer_response();
      echo->set_model_name(sample->request.model_name());
      echo->set_model_version(sample->request.model_version());
    }
    answer.mutable_infer_response()->set_id(sample->request.id());
    ModelStreamInferResponse* write_now;
    bool resume_read = false;
    std::unique_ptr<Sample> owned;
    {
      absl::MutexLock lock(&mu_);
      auto it = samples_.find(sample);
      owned = std::move(it->second);
      samples_.erase(it);
      write_now = writes_.Push(std::move(answer));
      if (!read_pending_ && !reads_done_ && !cancelled_ &&
          samples_.size() < kMaxKServeStreamInflight) {
        read_pending_ = resume_read = true;
      }
    }
    if (write_now != nullptr) StartWrite(write_now);
    if (resume_read) StartRead(&incoming_);
    MaybeFinish();
  }

  void MaybeFinish() {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || !reads_done_ || !samples_.empty() || writes_.in_flight()) return;
      finished_ = true;
    }
    Finish(grpc::Status::OK);
  }

  KServeService* const service_;
  grpc::CallbackServerContext* const context_;
  ModelInferRequest incoming_;  // Target of the one read in flight.

  absl::Mutex mu_;
  absl::flat_hash_map<Sample*, std::unique_ptr<Sample>> samples_ ABSL_GUARDED_BY(mu_);
  ResponseWriteQueueOf<ModelStreamInferResponse> writes_ ABSL_GUARDED_BY(mu_);
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

// A request inside ServedModel: the converted request and the native answer.
struct InferState {
  kserve::InferCall call;
  v1::ClassifyResponse answer;
};

}  // namespace

KServeService::KServeService(ClassifierService* classifier, std::string server_version)
    : classifier_(classifier), server_version_(std::move(server_version)) {}

absl::StatusOr<ServedModel*> KServeService::FindModel(const std::string& name,
                                                      const std::string& version) const {
  absl::StatusOr<ServedModel*> model = classifier_->Find(name);
  if (!model.ok()) return model.status();
  absl::Status status = kserve::CheckVersion((*model)->config(), version);
  if (!status.ok()) return status;
  return model;
}

void KServeService::Infer(const ModelInferRequest* request, ModelInferResponse* response,
                          const CallContext& call, std::function<void(absl::Status)> done) {
  const absl::Time received = call.received;
  absl::StatusOr<ServedModel*> routed = classifier_->Route(request->model_name());
  absl::Status status = routed.ok()
                            ? kserve::CheckVersion((*routed)->config(), request->model_version())
                            : routed.status();
  if (!status.ok()) {
    classifier_->RecordFinished(request->model_name(), status, received, kProtocolKserve);
    done(status);
    return;
  }
  ServedModel* model = *routed;
  absl::StatusOr<kserve::InferCall> converted = kserve::ToInferCall(*request, model->config());
  if (!converted.ok()) {
    if (classifier_->metrics() != nullptr) {
      classifier_->metrics()->RecordRejected(model->name(), "invalid");
    }
    classifier_->RecordFinished(model->name(), converted.status(), received, kProtocolKserve);
    done(converted.status());
    return;
  }
  auto state = std::make_shared<InferState>();
  state->call = *std::move(converted);
  classifier_->RecordAccepted();
  if (classifier_->metrics() != nullptr) classifier_->metrics()->AddInflight(1);
  model->Classify(
      &state->call.request, &state->answer, call,
      [this, model, state, response, received, done = std::move(done)](absl::Status status) {
        classifier_->RecordAnswered(status);
        classifier_->RecordFinished(model->name(), status, received, kProtocolKserve);
        if (classifier_->metrics() != nullptr) {
          classifier_->metrics()->AddInflight(-1);
        }
        if (status.ok()) {
          kserve::ToModelInferResponse(state->answer, state->call, model->config(),
                                       model->info().labels(), response);
        }
        done(status);  // Last: it may free the request and response.
      });
}

grpc::ServerUnaryReactor* KServeService::ModelInfer(grpc::CallbackServerContext* context,
                                                    const ModelInferRequest* request,
                                                    ModelInferResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Infer(request, response, MakeCallContext(context, absl::Now()),
        [reactor](absl::Status status) { reactor->Finish(ToGrpcStatus(status)); });
  return reactor;
}

grpc::ServerBidiReactor<ModelInferRequest, ModelStreamInferResponse>*
KServeService::ModelStreamInfer(grpc::CallbackServerContext* context) {
  return new StreamInferReactor(this, context);
}

grpc::ServerUnaryReactor* KServeService::ServerLive(grpc::CallbackServerContext* context,
                                                    const inference::ServerLiveRequest*,
                                                    inference::ServerLiveResponse* response) {
  // Answering at all means live; draining still answers requests.
  response->set_live(true);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ServerReady(grpc::CallbackServerContext* context,
                                                     const inference::ServerReadyRequest*,
                                                     inference::ServerReadyResponse* response) {
  response->set_ready(!classifier_->draining() && !classifier_->models().empty());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ModelReady(grpc::CallbackServerContext* context,
                                                    const inference::ModelReadyRequest* request,
                                                    inference::ModelReadyResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ServedModel*> model = FindModel(request->name(), request->version());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  // A model is served from its load until the drain: then it refuses work.
  response->set_ready(!classifier_->draining());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ServerMetadata(
    grpc::CallbackServerContext* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  response->set_name("mmfuse");
  response->set_version(server_version_);
  // Beyond the core protocol: request parameters and the streaming RPC.
  response->add_extensions("parameters");
  response->add_extensions("model_stream_infer");
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* KServeService::ModelMetadata(
    grpc::CallbackServerContext* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ServedModel*> model = FindModel(request->name(), request->version());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  kserve::ToModelMetadata((*model)->config(), response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mmfuse::server
