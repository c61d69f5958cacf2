#include "server/classifier_service.h"

#include <chrono>
#include <deque>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc_status.h"
#include "server/metrics.h"

namespace mmfuse::server {
namespace {

absl::Time Deadline(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

CallContext MakeCallContext(grpc::CallbackServerContext* context, absl::Time received) {
  CallContext call;
  call.received = received;
  call.deadline = Deadline(context);
  // IsCancelled is safe from any thread on the callback API.
  call.is_cancelled = [context] { return context->IsCancelled(); };
  return call;
}

// One ClassifyStream call. Each request read is submitted at once (up to
// kMaxStreamInflight in flight); responses are written one at a time, in
// completion order, from a queue. The call finishes once the client has
// half-closed (or gone), every accepted request is answered and the last
// write is done, so no completion can outlive the reactor.
class ClassifyStreamReactor final
    : public grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse> {
 public:
  ClassifyStreamReactor(ClassifierService* service, grpc::CallbackServerContext* context)
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
      read_more = samples_.size() < kMaxStreamInflight && !cancelled_;
      read_pending_ = read_more;
    }
    // Read before submitting: a refused request completes inline, and its
    // completion must see the read already in flight.
    if (read_more) StartRead(&incoming_);

    absl::StatusOr<ServedModel*> model = service_->Route(raw->request.model());
    if (!model.ok()) {
      Complete(raw, model.status(), received);
      return;
    }
    service_->RecordAccepted();
    (*model)->Classify(&raw->request, &raw->response, MakeCallContext(context_, received),
                       [this, raw, received](absl::Status status) {
                         service_->RecordAnswered(status);
                         Complete(raw, status, received);
                       });
  }

  void OnWriteDone(bool ok) override {
    bool write_next = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        broken_ = true;  // The client is gone: later answers have nowhere to go.
        writes_.clear();
      }
      if (!writes_.empty()) {
        writing_ = std::move(writes_.front());
        writes_.pop_front();
        write_next = true;
      } else {
        write_in_flight_ = false;
      }
    }
    if (write_next) StartWrite(&writing_);
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
    v1::ClassifyRequest request;
    v1::ClassifyResponse response;
  };

  // Runs exactly once per accepted request, on any thread.
  void Complete(Sample* sample, const absl::Status& status, absl::Time received) {
    service_->RecordFinished(sample->request.model(), status, received);
    v1::ClassifyResponse response = std::move(sample->response);
    if (!status.ok()) {
      response.Clear();
      response.set_model(sample->request.model());
      response.mutable_error()->set_code(static_cast<int>(status.code()));
      response.mutable_error()->set_message(std::string(status.message()));
    }
    response.set_request_id(sample->request.request_id());
    bool write_now = false;
    bool resume_read = false;
    std::unique_ptr<Sample> owned;
    {
      absl::MutexLock lock(&mu_);
      auto it = samples_.find(sample);
      owned = std::move(it->second);
      samples_.erase(it);
      if (!broken_) {
        if (write_in_flight_) {
          writes_.push_back(std::move(response));
        } else {
          writing_ = std::move(response);
          write_in_flight_ = write_now = true;
        }
      }
      if (!read_pending_ && !reads_done_ && !cancelled_ && samples_.size() < kMaxStreamInflight) {
        read_pending_ = resume_read = true;
      }
    }
    if (write_now) StartWrite(&writing_);
    if (resume_read) StartRead(&incoming_);
    MaybeFinish();
  }

  void MaybeFinish() {
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || !reads_done_ || !samples_.empty() || write_in_flight_) return;
      finished_ = true;
    }
    Finish(grpc::Status::OK);
  }

  ClassifierService* const service_;
  grpc::CallbackServerContext* const context_;
  v1::ClassifyRequest incoming_;  // Target of the one read in flight.

  absl::Mutex mu_;
  absl::flat_hash_map<Sample*, std::unique_ptr<Sample>> samples_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ClassifyResponse> writes_ ABSL_GUARDED_BY(mu_);
  v1::ClassifyResponse writing_;  // Target of the one write in flight.
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

void ClassifierService::AddModel(std::unique_ptr<ServedModel> model) {
  ServedModel* raw = model.get();
  models_[model->name()] = std::move(model);
  if (default_model_ == nullptr) default_model_ = raw;
}

void ClassifierService::ShutdownModels() {
  for (auto& [name, model] : models_) model->Shutdown();
}

absl::StatusOr<ServedModel*> ClassifierService::Route(const std::string& name) const {
  if (draining_.load()) return absl::UnavailableError("server is shutting down");
  if (name.empty()) {
    if (default_model_ == nullptr) return absl::UnavailableError("no model is loaded");
    return default_model_;
  }
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(absl::StrCat("model \"", name, "\" is not loaded"));
  }
  return it->second.get();
}

ClassifierService::Counts ClassifierService::counts() const {
  Counts counts;
  counts.accepted = accepted_.load();
  counts.answered = answered_.load();
  counts.answered_ok = answered_ok_.load();
  return counts;
}

void ClassifierService::RecordAnswered(const absl::Status& status) {
  answered_.fetch_add(1);
  if (status.ok()) answered_ok_.fetch_add(1);
}

void ClassifierService::RecordFinished(const std::string& model, const absl::Status& status,
                                       absl::Time received) {
  if (metrics_ == nullptr) return;
  const std::string label =
      model.empty() && default_model_ != nullptr ? default_model_->name() : model;
  metrics_->RecordRequest(label, status.code(), absl::Now() - received);
}

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  const absl::Time received = absl::Now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ServedModel*> model = Route(request->model());
  if (!model.ok()) {
    RecordFinished(request->model(), model.status(), received);
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  if (metrics_ != nullptr) metrics_->AddInflight(1);
  RecordAccepted();
  (*model)->Classify(request, response, MakeCallContext(context, received),
                     [this, reactor, request, received](absl::Status status) {
                       RecordAnswered(status);
                       RecordFinished(request->model(), status, received);
                       if (metrics_ != nullptr) metrics_->AddInflight(-1);
                       reactor->Finish(ToGrpcStatus(status));
                     });
  return reactor;
}

grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>*
ClassifierService::ClassifyStream(grpc::CallbackServerContext* context) {
  return new ClassifyStreamReactor(this, context);
}

grpc::ServerUnaryReactor* ClassifierService::GetModelInfo(grpc::CallbackServerContext* context,
                                                          const v1::GetModelInfoRequest* request,
                                                          v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<ServedModel*> model = Route(request->model());
  if (!model.ok()) {
    reactor->Finish(ToGrpcStatus(model.status()));
    return reactor;
  }
  *response = (*model)->info();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace mmfuse::server
