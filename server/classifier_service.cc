#include "server/classifier_service.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc_call_context.h"
#include "server/grpc_status.h"
#include "server/response_write_queue.h"
#include "server/metrics.h"
#include "server/ordered_stream_reactor.h"
#include "server/stream_timer.h"
#include "server/unary_reactor.h"

namespace mmfuse::server {
namespace {

// The part of a feature stream shared by StreamFeatures and
// StreamFeaturesInteractive: routing on the first chunk, assembly, the
// stream and idle timeouts, accounting, and the stream's lifetime.
//
// Lifetime: reference counted. gRPC holds one reference until OnDone, the
// timer's callback one until the timer drops it, each classification in
// flight one and each reaction one while it runs; the last Unref deletes the
// stream (and its chunks). Nothing waits for another thread.
//
// Phases: reading (chunks arrive; the timer may end the stream) until the
// half-close, an error, a timeout or a cancel ends it; whoever ends the
// reading phase under mu_ decides what follows, so it ends once.
class FeatureStream {
 public:
  FeatureStream(ClassifierService* service, grpc::CallbackServerContext* context)
      : service_(service), context_(context), opened_(service->clock()->Now()) {
    last_chunk_ = opened_;
    service_->StreamOpened();
    // Publishes the constructed stream to the first reaction, which may run
    // on another gRPC thread and takes its reference with acquire: gRPC's
    // own handoff is invisible to ThreadSanitizer.
    refs_.store(2, std::memory_order_release);
  }
  virtual ~FeatureStream() {
    service_->open_calls()->Leave(this);
    service_->StreamClosed();
  }

  FeatureStream(const FeatureStream&) = delete;
  FeatureStream& operator=(const FeatureStream&) = delete;

 protected:
  enum class ChunkOutcome { kReadMore, kStopped };

  // Ends the call with `status` (not OK); runs at most once, on any thread,
  // after the reading phase was ended by the caller.
  virtual void End(const absl::Status& status) = 0;
  // Classifies the assembled request (the reading phase has ended on the
  // half-close). Runs once, on the read reaction.
  virtual void Submit(v1::ClassifyRequest request, absl::Time received) = 0;

  // Call last in the derived constructor, after ArmTimer: from then on
  // shutdown may end the stream. One that opens once shutdown has begun
  // ends at once.
  void JoinOpenCalls() {
    const bool joined = service_->open_calls()->Join(
        this, {[this] { return TryRef(); },
               [this] {
                 Drain();
                 Unref();
               }});
    if (!joined) Drain();
  }

  // Call in the derived constructor, after the first StartRead.
  void ArmTimer() {
    std::shared_ptr<FeatureStream> ref(this, [](FeatureStream* stream) { stream->Unref(); });
    const FeatureStreamOptions& options = service_->stream_options();
    const absl::Time first =
        std::min(opened_ + options.stream_timeout, opened_ + options.idle_timeout);
    const StreamTimer::Id id = service_->stream_timer()->Schedule(
        first, [ref](absl::Time now) { return ref->OnTimer(now); });
    bool done;
    {
      absl::MutexLock lock(&mu_);
      timer_id_ = id;
      done = done_;
    }
    if (done) service_->stream_timer()->Cancel(id);
  }

  // From the reactor's OnDone (gRPC's last reaction): drops the timer and
  // gRPC's reference.
  void Done() {
    StreamTimer::Id id;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      id = timer_id_;
    }
    if (id != 0) service_->stream_timer()->Cancel(id);
    Unref();
  }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // A reference for OpenCalls::DrainAll, unless the last one is gone.
  bool TryRef() { return TryAddRef(refs_); }
  // Shutdown: a stream still reading (uploading) ends UNAVAILABLE now; one
  // whose request is already submitted is answered as usual.
  void Drain() { EndReading(service_->RefuseShuttingDown(), service_->clock()->Now()); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // A reference for the length of one gRPC reaction. gRPC runs reactions
  // one after another and OnDone after all of them, but orders them with its
  // own (uninstrumented) synchronisation; taking (acquire) and dropping
  // (release) this reference states that order where ThreadSanitizer sees
  // it: a read reaction sees what the one before it built (the assembler),
  // and OnDone frees the stream only after a reaction that ended the call.
  class ReactionRef {
   public:
    explicit ReactionRef(FeatureStream* stream) : stream_(stream) {
      stream_->refs_.fetch_add(1, std::memory_order_acq_rel);
    }
    ~ReactionRef() { stream_->Unref(); }
    ReactionRef(const ReactionRef&) = delete;
    ReactionRef& operator=(const ReactionRef&) = delete;

   private:
    FeatureStream* const stream_;
  };

  // From OnReadDone(true). Routes the stream on its first chunk, checks and
  // appends the chunk. kStopped: the stream has ended (here, with the
  // chunk's error, or before, by the timer); do not read again.
  ChunkOutcome AddChunk(const v1::FeatureChunk& chunk) {
    const absl::Time now = service_->clock()->Now();
    {
      absl::MutexLock lock(&mu_);
      if (!reading_) return ChunkOutcome::kStopped;
      last_chunk_ = now;
    }
    absl::Status status = Assemble(chunk);
    if (status.ok()) return ChunkOutcome::kReadMore;
    EndReading(status, now);
    return ChunkOutcome::kStopped;
  }

  // From OnReadDone(false): the client half-closed, or the call is gone.
  void ReadsDone() {
    {
      absl::MutexLock lock(&mu_);
      if (!reading_) return;
      reading_ = false;
    }
    const absl::Time now = service_->clock()->Now();
    if (context_->IsCancelled()) {
      Refuse(absl::CancelledError("the client cancelled the feature stream"), now);
      return;
    }
    if (assembler_ == nullptr) {  // No chunk at all: route to the default model.
      absl::Status routed = Route(v1::StreamHeader());
      if (!routed.ok()) {
        Refuse(routed, now);
        return;
      }
    }
    absl::StatusOr<v1::ClassifyRequest> request = assembler_->Finish();
    if (!request.ok()) {
      Refuse(request.status(), now);
      return;
    }
    Submit(*std::move(request), now);
  }

  // Ends the reading phase with `status` unless it has ended already.
  // Returns whether it did.
  bool EndReading(const absl::Status& status, absl::Time now) {
    {
      absl::MutexLock lock(&mu_);
      if (!reading_) return false;
      reading_ = false;
    }
    Refuse(status, now);
    return true;
  }

  // Records a stream that ends without classification, then ends it.
  void Refuse(const absl::Status& status, absl::Time received) {
    if (model_ != nullptr && service_->metrics() != nullptr) {
      const char* reason = status.code() == absl::StatusCode::kResourceExhausted ? "stream_limit"
                           : status.code() == absl::StatusCode::kDeadlineExceeded
                               ? "stream_timeout"
                           : status.code() == absl::StatusCode::kCancelled   ? "cancelled"
                           : status.code() == absl::StatusCode::kUnavailable ? "unavailable"
                                                                            : "invalid";
      service_->metrics()->RecordRejected(model_->name(), reason);
    }
    service_->RecordFinished(model_label(), status, received);
    End(status);
  }

  std::string model_label() const {
    absl::MutexLock lock(&mu_);
    return model_label_;
  }

  ClassifierService* const service_;
  grpc::CallbackServerContext* const context_;
  const absl::Time opened_;
  // Touched only by the read reactions (one at a time) and, after the
  // reading phase, by Submit: never by the timer.
  ServedModel* model_ = nullptr;
  std::unique_ptr<FeatureAssembler> assembler_;

  mutable absl::Mutex mu_;
  // True until the half-close, an error, a timeout or a cancel.
  bool reading_ ABSL_GUARDED_BY(mu_) = true;

 private:
  absl::Status Route(const v1::StreamHeader& header) {
    absl::StatusOr<ServedModel*> model = service_->Route(header.model());
    {
      absl::MutexLock lock(&mu_);
      model_label_ = model.ok() ? (*model)->name() : header.model();
    }
    if (!model.ok()) return model.status();
    model_ = *model;
    absl::StatusOr<std::unique_ptr<FeatureAssembler>> assembler =
        FeatureAssembler::Create(&model_->config(), service_->stream_options().limits);
    if (!assembler.ok()) return assembler.status();
    assembler_ = *std::move(assembler);
    return absl::OkStatus();
  }

  absl::Status Assemble(const v1::FeatureChunk& chunk) {
    if (assembler_ == nullptr) {
      absl::Status routed = Route(chunk.header());
      if (!routed.ok()) return routed;
    }
    return assembler_->Add(chunk);
  }

  // The timer's callback: ends a stream open too long or idle too long
  // while it is reading; else says when to look again.
  absl::Time OnTimer(absl::Time now) {
    const FeatureStreamOptions& options = service_->stream_options();
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (!reading_ || done_) return absl::InfiniteFuture();
      const absl::Time stream_deadline = opened_ + options.stream_timeout;
      const absl::Time idle_deadline = last_chunk_ + options.idle_timeout;
      if (now >= stream_deadline) {
        status = absl::DeadlineExceededError(absl::StrCat(
            "feature stream open for ", absl::FormatDuration(now - opened_),
            " without a half-close, longer than stream_timeout_ms=",
            absl::ToInt64Milliseconds(options.stream_timeout)));
      } else if (now >= idle_deadline) {
        status = absl::DeadlineExceededError(absl::StrCat(
            "feature stream idle: no chunk for ", absl::FormatDuration(now - last_chunk_),
            ", longer than stream_idle_timeout_ms=",
            absl::ToInt64Milliseconds(options.idle_timeout)));
      } else {
        return std::min(stream_deadline, idle_deadline);
      }
      reading_ = false;
    }
    // model_ belongs to the read reactions: use the label set under mu_. A
    // stream that never sent a chunk has no model yet; it counts in
    // requests_total under the default model, not in rejected_total.
    const std::string label = model_label();
    service_->RecordFinished(label, status, now);
    if (service_->metrics() != nullptr && !label.empty()) {
      service_->metrics()->RecordRejected(label, "stream_timeout");
    }
    End(status);
    return absl::InfiniteFuture();
  }

  std::atomic<int> refs_{2};  // gRPC's and the timer's
  absl::Time last_chunk_ ABSL_GUARDED_BY(mu_);
  std::string model_label_ ABSL_GUARDED_BY(mu_);
  StreamTimer::Id timer_id_ ABSL_GUARDED_BY(mu_) = 0;
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone ran
};

// One StreamFeatures call: reads chunks until the half-close, then
// classifies the sample into gRPC's response. Finish runs exactly once:
// from End (error, timeout, cancel) or from the classification's done.
class FeatureStreamReactor final : public grpc::ServerReadReactor<v1::FeatureChunk>,
                                   public FeatureStream {
 public:
  FeatureStreamReactor(ClassifierService* service, grpc::CallbackServerContext* context,
                       v1::ClassifyResponse* response)
      : FeatureStream(service, context), response_(response) {
    StartRead(&chunk_);
    ArmTimer();
    JoinOpenCalls();
  }

  void OnReadDone(bool ok) override {
    ReactionRef reaction(this);
    if (!ok) {
      ReadsDone();
      return;
    }
    if (AddChunk(chunk_) == ChunkOutcome::kReadMore) StartRead(&chunk_);
  }

  void OnDone() override {
    if (answered_ok_.load(std::memory_order_acquire) && context_->IsCancelled()) {
      service_->open_calls()->RecordUndelivered(1);
    }
    Done();
  }

 private:
  void End(const absl::Status& status) override { Finish(ToGrpcStatus(status)); }

  void Submit(v1::ClassifyRequest request, absl::Time received) override {
    request_ = std::move(request);
    // The completion holds a reference through Finish: OnDone may run on a
    // gRPC thread while Finish is still returning on this one, and only the
    // reference count orders the two where ThreadSanitizer can see it.
    Ref();
    service_->Admit(model_, &request_, response_, MakeCallContext(context_, received),
                    [this, received](absl::Status status) {
                      service_->RecordFinished(model_->name(), status, received);
                      answered_ok_.store(status.ok(), std::memory_order_release);
                      Finish(ToGrpcStatus(status));
                      Unref();  // Last: the stream may be gone after it.
                    });
  }

  v1::ClassifyResponse* const response_;  // gRPC's, valid until OnDone
  v1::FeatureChunk chunk_;                // target of the one read in flight
  v1::ClassifyRequest request_;           // the assembled sample, once submitted
  std::atomic<bool> answered_ok_{false};  // Finish carried a computed answer
};

// One StreamFeaturesInteractive call: as FeatureStreamReactor, plus an
// interim classification each time header.partial_every_frames new frames
// have arrived (up to kMaxInterimInflight at once; reading pauses beyond),
// and the final answer written last (held until every interim is answered).
// An interim that fails is written with `error` set; the stream goes on.
// Answers completing after the stream ended with an error are dropped.
// Finish runs once: after the final answer's write, or at an error once no
// write is in flight.
class InteractiveStreamReactor final
    : public grpc::ServerBidiReactor<v1::FeatureChunk, v1::ClassifyResponse>,
      public FeatureStream {
 public:
  InteractiveStreamReactor(ClassifierService* service, grpc::CallbackServerContext* context)
      : FeatureStream(service, context) {
    StartRead(&chunk_);
    ArmTimer();
    JoinOpenCalls();
  }

  void OnReadDone(bool ok) override {
    ReactionRef reaction(this);
    if (!ok) {
      ReadsDone();
      return;
    }
    if (AddChunk(chunk_) != ChunkOutcome::kReadMore) return;
    const int64_t every = assembler_->header().partial_every_frames();
    if (every > 0 && assembler_->frames() - frames_at_interim_ >= every) {
      frames_at_interim_ = assembler_->frames();
      StartClassification(assembler_->request(), /*interim=*/true, service_->clock()->Now());
    }
    bool read = false;
    {
      absl::MutexLock lock(&mu_);
      if (!reading_) return;
      if (interims_ < kMaxInterimInflight) {
        read = true;
      } else {
        read_paused_ = true;
      }
    }
    if (read) StartRead(&chunk_);
  }

  void OnWriteDone(bool ok) override {
    ReactionRef reaction(this);
    v1::ClassifyResponse* next;
    {
      absl::MutexLock lock(&mu_);
      next = writes_.WriteDone(ok);
    }
    if (next != nullptr) StartWrite(next);
    MaybeFinish();
  }

  void OnCancel() override {
    ReactionRef reaction(this);
    cancelled_.store(true);
    bool paused;
    {
      absl::MutexLock lock(&mu_);
      // A read in flight completes (not ok) by itself; a paused one never will.
      paused = read_paused_;
    }
    if (paused) EndReading(absl::CancelledError("the client cancelled the feature stream"),
                           service_->clock()->Now());
  }

  void OnDone() override {
    int64_t dropped;
    {
      absl::MutexLock lock(&mu_);
      dropped = writes_.dropped();
    }
    service_->open_calls()->RecordUndelivered(dropped);
    Done();
  }

 private:
  struct Classification {
    v1::ClassifyRequest request;
    v1::ClassifyResponse response;
  };

  void End(const absl::Status& status) override {
    cancelled_.store(true);  // Queued interims need not run.
    {
      absl::MutexLock lock(&mu_);
      end_status_ = status;
      writes_.Clear();
    }
    MaybeFinish();
  }

  void Submit(v1::ClassifyRequest request, absl::Time received) override {
    StartClassification(std::move(request), /*interim=*/false, received);
  }

  void StartClassification(v1::ClassifyRequest request, bool interim, absl::Time received) {
    auto classification = std::make_shared<Classification>();
    classification->request = std::move(request);
    if (interim) {
      absl::MutexLock lock(&mu_);
      ++interims_;
    }
    Ref();  // Dropped at the end of the completion.
    CallContext call;
    call.received = received;
    call.deadline = Deadline(context_);
    // Not context_->IsCancelled(): the context dies with OnDone, which an
    // interim may outlive; this reactor lives while the completion holds it.
    call.is_cancelled = [this] { return cancelled_.load(); };
    service_->Admit(model_, &classification->request, &classification->response, call,
                    [this, classification, interim, received](absl::Status status) {
                      Completed(classification.get(), interim, status, received);
                      Unref();
                    });
  }

  // Runs once per classification, on any thread.
  void Completed(Classification* done, bool interim, const absl::Status& status,
                 absl::Time received) {
    if (!interim) service_->RecordFinished(model_->name(), status, received);
    v1::ClassifyResponse response = std::move(done->response);
    if (!status.ok()) {
      response.Clear();
      response.set_model(model_->name());
      response.mutable_error()->set_code(static_cast<int>(status.code()));
      response.mutable_error()->set_message(std::string(status.message()));
    }
    response.set_request_id(done->request.request_id());
    response.set_interim(interim);
    v1::ClassifyResponse* write_now = nullptr;
    bool resume_read = false;
    {
      absl::MutexLock lock(&mu_);
      std::vector<v1::ClassifyResponse> ready;
      if (interim) {
        --interims_;
        if (read_paused_ && reading_ && interims_ < kMaxInterimInflight) {
          read_paused_ = false;
          resume_read = true;
        }
        ready.push_back(std::move(response));
      } else if (!status.ok()) {
        end_status_ = status;  // The final answer failed: the call's status.
        writes_.Clear();
      } else {
        final_ = std::move(response);
      }
      // The final answer goes last: it waits for the interims in flight.
      if (final_.has_value() && interims_ == 0) {
        ready.push_back(*std::move(final_));
        final_.reset();
        final_queued_ = true;
      }
      if (end_status_.has_value()) ready.clear();
      for (v1::ClassifyResponse& answer : ready) {
        if (v1::ClassifyResponse* write = writes_.Push(std::move(answer))) write_now = write;
      }
    }
    if (write_now != nullptr) StartWrite(write_now);
    if (resume_read) StartRead(&chunk_);
    MaybeFinish();
  }

  // Finishes once no write is in flight and either the stream has ended
  // (error, timeout, cancel, failed final answer) or the final answer has
  // been written (or dropped, the client being gone).
  void MaybeFinish() {
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || writes_.in_flight()) return;
      if (end_status_.has_value()) {
        status = *end_status_;
      } else if (!final_queued_ || writes_.has_pending()) {
        return;
      }
      finished_ = true;
    }
    Finish(ToGrpcStatus(status));
  }

  v1::FeatureChunk chunk_;         // target of the one read in flight
  int64_t frames_at_interim_ = 0;  // read reactions only
  std::atomic<bool> cancelled_{false};
  ResponseWriteQueue writes_ ABSL_GUARDED_BY(mu_);
  int interims_ ABSL_GUARDED_BY(mu_) = 0;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  // The final answer, held while interims are in flight.
  std::optional<v1::ClassifyResponse> final_ ABSL_GUARDED_BY(mu_);
  bool final_queued_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> end_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

void ClassifierService::AddModel(std::unique_ptr<ServedModel> model) {
  ServedModel* raw = model.get();
  models_[model->name()] = std::move(model);
  if (default_model_ == nullptr) default_model_ = raw;
}

absl::Status ClassifierService::ValidateOptions(const FeatureStreamOptions& options) {
  absl::Status limits = FeatureAssembler::ValidateOptions(options.limits);
  if (!limits.ok()) return limits;
  if (options.stream_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "stream_timeout=", absl::FormatDuration(options.stream_timeout), " must be > 0"));
  }
  if (options.idle_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "idle_timeout=", absl::FormatDuration(options.idle_timeout), " must be > 0"));
  }
  return absl::OkStatus();
}

ClassifierService::ClassifierService(ServerMetrics* metrics, const FeatureStreamOptions& streams)
    : metrics_(metrics),
      streams_(streams),
      clock_(streams.clock != nullptr ? streams.clock : Clock::Real()),
      timer_(std::make_unique<StreamTimer>(clock_)) {}

ClassifierService::~ClassifierService() { timer_->Shutdown(); }

void ClassifierService::StreamOpened() {
  if (metrics_ != nullptr) metrics_->AddOpenStreams(1);
  absl::MutexLock lock(&streams_mu_);
  ++open_streams_;
}

void ClassifierService::StreamClosed() {
  if (metrics_ != nullptr) metrics_->AddOpenStreams(-1);
  absl::MutexLock lock(&streams_mu_);
  --open_streams_;
}

int64_t ClassifierService::open_feature_streams() const {
  absl::MutexLock lock(&streams_mu_);
  return open_streams_;
}

bool ClassifierService::AwaitOpenFeatureStreamsAtMost(int64_t n, absl::Time deadline) const {
  absl::MutexLock lock(&streams_mu_);
  auto at_most = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_) {
    return open_streams_ <= n;
  };
  return clock_->AwaitWithDeadline(&streams_mu_, absl::Condition(&at_most), deadline);
}

void ClassifierService::ShutdownModels() {
  for (auto& [name, model] : models_) model->Shutdown();
}

absl::StatusOr<ServedModel*> ClassifierService::Route(const std::string& name) const {
  if (draining_.load()) return RefuseShuttingDown();
  return Find(name);
}

absl::Status ClassifierService::RefuseShuttingDown() const {
  last_refusal_ns_.store(absl::ToUnixNanos(absl::Now()));
  return absl::UnavailableError(kShuttingDownMessage);
}

absl::Time ClassifierService::last_refusal() const {
  const int64_t ns = last_refusal_ns_.load();
  return ns == 0 ? absl::InfinitePast() : absl::FromUnixNanos(ns);
}

absl::StatusOr<ServedModel*> ClassifierService::Find(const std::string& name) const {
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
  counts.undelivered = open_calls_.undelivered();
  return counts;
}

void ClassifierService::StartDraining() {
  {
    absl::MutexLock lock(&admission_mu_);
    draining_.store(true);
    admission_mu_.Await(absl::Condition(
        +[](int* admitting) { return *admitting == 0; }, &admitting_));
  }
  // After draining_: a stream's last reads are refused, so its drain ends.
  open_calls_.DrainAll();
}

void ClassifierService::Admit(ServedModel* model, const v1::ClassifyRequest* request,
                              v1::ClassifyResponse* response, CallContext call,
                              std::function<void(absl::Status)> done) {
  bool admitted;
  {
    absl::MutexLock lock(&admission_mu_);
    admitted = !draining_.load();
    if (admitted) ++admitting_;
  }
  if (!admitted) {
    done(RefuseShuttingDown());
    return;
  }
  accepted_.fetch_add(1);
  if (metrics_ != nullptr) metrics_->AddInflight(1);
  // The batcher's Submit never blocks (a full queue answers at once), so
  // StartDraining waits microseconds here.
  model->Classify(request, response, std::move(call),
                  [this, done = std::move(done)](absl::Status status) {
                    answered_.fetch_add(1);
                    if (status.ok()) answered_ok_.fetch_add(1);
                    if (metrics_ != nullptr) metrics_->AddInflight(-1);
                    done(status);  // Last: it may free the request and response.
                  });
  absl::MutexLock lock(&admission_mu_);
  --admitting_;
}

void ClassifierService::RecordFinished(const std::string& model, const absl::Status& status,
                                       absl::Time received, const char* protocol) {
  if (metrics_ == nullptr) return;
  const std::string label =
      model.empty() && default_model_ != nullptr ? default_model_->name() : model;
  metrics_->RecordRequest(label, status.code(), absl::Now() - received, protocol);
}

grpc::ServerUnaryReactor* ClassifierService::Classify(grpc::CallbackServerContext* context,
                                                      const v1::ClassifyRequest* request,
                                                      v1::ClassifyResponse* response) {
  const absl::Time received = absl::Now();
  auto* reactor = new UnaryReactor(context, &open_calls_);
  absl::StatusOr<ServedModel*> model = Route(request->model());
  if (!model.ok()) {
    RecordFinished(request->model(), model.status(), received);
    reactor->FinishWith(ToGrpcStatus(model.status()));
    return reactor;
  }
  Admit(*model, request, response, MakeCallContext(context, received),
        [this, reactor, request, received](absl::Status status) {
          RecordFinished(request->model(), status, received);
          reactor->FinishWith(ToGrpcStatus(status));
        });
  return reactor;
}

grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>*
ClassifierService::ClassifyStream(grpc::CallbackServerContext* context) {
  // A ClassifyStream call: as Classify for each request, answered in band
  // (its error fields set on failure) in completion order.
  auto submit = [this](const v1::ClassifyRequest* request, v1::ClassifyResponse* response,
                       CallContext call, std::function<void(absl::Status)> done) {
    const absl::Time received = call.received;
    absl::StatusOr<ServedModel*> model = Route(request->model());
    if (!model.ok()) {
      RecordFinished(request->model(), model.status(), received);
      done(model.status());
      return;
    }
    Admit(*model, request, response, std::move(call),
          [this, request, received, done = std::move(done)](absl::Status status) {
            RecordFinished(request->model(), status, received);
            done(status);  // Last: it may free the request and response.
          });
  };
  auto answer = [](const v1::ClassifyRequest& request, const absl::Status& status,
                   v1::ClassifyResponse* response) {
    if (!status.ok()) {
      response->Clear();
      response->set_model(request.model());
      response->mutable_error()->set_code(static_cast<int>(status.code()));
      response->mutable_error()->set_message(std::string(status.message()));
    }
    response->set_request_id(request.request_id());
  };
  return new OrderedStreamReactor<v1::ClassifyRequest, v1::ClassifyResponse>(
      context, kMaxStreamInflight, &open_calls_, std::move(submit), std::move(answer));
}

grpc::ServerReadReactor<v1::FeatureChunk>* ClassifierService::StreamFeatures(
    grpc::CallbackServerContext* context, v1::ClassifyResponse* response) {
  return new FeatureStreamReactor(this, context, response);
}

grpc::ServerBidiReactor<v1::FeatureChunk, v1::ClassifyResponse>*
ClassifierService::StreamFeaturesInteractive(grpc::CallbackServerContext* context) {
  return new InteractiveStreamReactor(this, context);
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
