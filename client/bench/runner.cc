#include "client/bench/runner.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/bench/arrival.h"
#include "client/bench/kserve_codec.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "mmfuse/v1/classifier.grpc.pb.h"

namespace mmfuse::bench {
namespace {

using GenericStub = grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>;

// gRPC and google.rpc codes share absl's numbering.
std::string CodeName(int code) {
  const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? absl::StrCat("CODE_", code) : name;
}

}  // namespace

// One in-flight unary call; owned by its completion callback.
struct Runner::UnaryCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  Sent sent;
};

// One ClassifyStream call carrying many requests. Writes go one at a time
// from a queue; a read is always pending; responses are matched to requests
// by request_id. Requests still pending when the stream ends fail with its
// status.
//
// Thread-safety: thread-safe. Lives until the Runner is destroyed, which
// waits for OnDone.
class Runner::StreamCall final
    : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  StreamCall(Runner* runner, GenericStub* stub, std::string target)
      : runner_(runner), stub_(stub), target_(std::move(target)) {}

  void Start() {
    stub_->PrepareBidiStreamingCall(&context_, runner_->stream_method_, grpc::StubOptions(), this);
    StartRead(&incoming_);
    StartCall();
  }

  // Sends `message` carrying request `id`. If the stream has already ended
  // the request fails at once, here.
  void Send(const std::string& id, grpc::ByteBuffer message, const Sent& sent) {
    bool write_now = false;
    std::string failed;
    {
      absl::MutexLock lock(&mu_);
      if (done_) {
        failed = final_code_;
      } else {
        pending_.emplace(id, sent);
        if (broken_) {
          // Not written; fails with the stream's status in OnDone.
        } else if (write_in_flight_) {
          queue_.push_back(std::move(message));
        } else {
          writing_ = std::move(message);
          write_in_flight_ = write_now = true;
        }
      }
    }
    if (!failed.empty()) runner_->Complete(sent, runner_->clock_->Now(), failed, nullptr);
    if (write_now) StartWrite(&writing_);
  }

  // No more Send(): half-closes once the queued writes are out.
  void CloseWrites() {
    bool now = false;
    {
      absl::MutexLock lock(&mu_);
      close_requested_ = true;
      now = TakeWritesDoneLocked();
    }
    if (now) StartWritesDone();
  }

  // Cancels the stream because the step's timeout passed: what is still
  // pending fails DEADLINE_EXCEEDED, as a unary call would.
  void CancelForTimeout() {
    {
      absl::MutexLock lock(&mu_);
      timed_out_ = true;
    }
    context_.TryCancel();
  }

  void OnWriteDone(bool ok) override {
    bool write_next = false;
    bool writes_done = false;
    {
      absl::MutexLock lock(&mu_);
      if (!ok) {
        broken_ = true;  // The stream is ending; OnDone fails what is pending.
        queue_.clear();
      }
      if (!queue_.empty()) {
        writing_ = std::move(queue_.front());
        queue_.pop_front();
        write_next = true;
      } else {
        write_in_flight_ = false;
        writes_done = TakeWritesDoneLocked();
      }
    }
    if (write_next) StartWrite(&writing_);
    if (writes_done) StartWritesDone();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // The server finished the stream; OnDone follows.
    const absl::Time now = runner_->clock_->Now();
    v1::ClassifyResponse response;
    const bool parsed = runner_->ParseResponse(&incoming_, /*stream=*/true, &response);
    std::optional<Sent> sent;
    if (parsed) {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(response.request_id());
      if (it != pending_.end()) {
        sent = it->second;
        pending_.erase(it);
      }
    }
    StartRead(&incoming_);  // `incoming_` was consumed by the parse.
    if (!sent.has_value()) {
      runner_->CountUnmatched();
    } else if (response.has_error()) {
      runner_->Complete(*sent, now, CodeName(response.error().code()), &response);
    } else {
      runner_->Complete(*sent, now, "", &response);
    }
  }

  void OnDone(const grpc::Status& status) override {
    const absl::Time now = runner_->clock_->Now();
    std::vector<Sent> unanswered;
    std::string code;
    bool early;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      // A stream that finished OK with requests unanswered broke the API's
      // contract ("every request is answered"): name that distinctly.
      final_code_ = timed_out_    ? "DEADLINE_EXCEEDED"
                    : status.ok() ? "UNANSWERED"
                                  : CodeName(status.error_code());
      code = final_code_;
      for (auto& [id, sent] : pending_) unanswered.push_back(sent);
      pending_.clear();
      queue_.clear();
      early = !close_requested_;
    }
    if (early) {
      // Before failing what is pending, so the step reports why it stopped.
      runner_->StreamFailed(target_, status.ok() ? "OK"
                                                 : absl::StrCat(CodeName(status.error_code()), ": ",
                                                                status.error_message()));
    }
    for (const Sent& sent : unanswered) runner_->Complete(sent, now, code, nullptr);
    // Last: once this returns, the Runner may destroy this stream.
    runner_->StreamClosed();
  }

 private:
  // Whether the caller should half-close now (once).
  bool TakeWritesDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!close_requested_ || writes_done_sent_ || write_in_flight_ || broken_ || done_) {
      return false;
    }
    writes_done_sent_ = true;
    return true;
  }

  Runner* const runner_;
  GenericStub* const stub_;
  const std::string target_;
  grpc::ClientContext context_;
  grpc::ByteBuffer incoming_;  // Target of the one read in flight.
  grpc::ByteBuffer writing_;   // Source of the one write in flight.

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Sent> pending_ ABSL_GUARDED_BY(mu_);
  std::deque<grpc::ByteBuffer> queue_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool close_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool timed_out_ ABSL_GUARDED_BY(mu_) = false;
  // Set once done_: the error name pending requests fail with.
  std::string final_code_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<Runner>> Runner::Create(const RunnerOptions& options,
                                                       const ChannelPool* channels,
                                                       const Workload& workload) {
  const LoadSpec& load = options.load;
  if (load.mode == LoadMode::kClosedLoop && load.concurrency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("load.concurrency=", load.concurrency, " must be >= 1"));
  }
  if (load.mode == LoadMode::kOpenLoop) {
    ArrivalOptions arrival;
    arrival.rate_rps = load.rate_rps;
    absl::StatusOr<ArrivalSchedule> schedule = ArrivalSchedule::Create(arrival);
    if (!schedule.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("load.", schedule.status().message()));
    }
  }
  if (options.duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("duration=", absl::FormatDuration(options.duration), " must be > 0"));
  }
  if (options.max_requests < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_requests=", options.max_requests, " must be >= 0"));
  }
  if (options.duration == absl::InfiniteDuration() && options.max_requests == 0) {
    return absl::InvalidArgumentError(
        "duration=inf and max_requests=0: the step needs a time or a request bound");
  }
  if (options.warmup < absl::ZeroDuration() || options.warmup == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("warmup=", absl::FormatDuration(options.warmup), " must be finite and >= 0"));
  }
  if (options.max_outstanding < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_outstanding=", options.max_outstanding, " must be >= 1"));
  }
  if (options.timeout <= absl::ZeroDuration() || options.timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout=", absl::FormatDuration(options.timeout), " must be finite and > 0"));
  }
  if (options.late_threshold < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "late_threshold=", absl::FormatDuration(options.late_threshold), " must be >= 0"));
  }
  if (options.max_consecutive_unavailable < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_consecutive_unavailable=", options.max_consecutive_unavailable, " must be >= 0"));
  }
  if (channels == nullptr || channels->size() == 0) {
    return absl::InvalidArgumentError("channels is empty");
  }
  if (workload.requests.empty()) return absl::InvalidArgumentError("workload has no requests");
  return std::unique_ptr<Runner>(new Runner(options, channels, workload));
}

Runner::Runner(const RunnerOptions& options, const ChannelPool* channels, const Workload& workload)
    : options_(options),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      channels_(channels) {
  const bool kserve = options_.protocol == Protocol::kKserve;
  const std::string service = kserve ? inference::GRPCInferenceService::service_full_name()
                                     : v1::MultimodalClassifier::service_full_name();
  classify_method_ = absl::StrCat("/", service, kserve ? "/ModelInfer" : "/Classify");
  stream_method_ = absl::StrCat("/", service, kserve ? "/ModelStreamInfer" : "/ClassifyStream");
  for (const auto& channel : channels_->channels()) {
    stubs_.push_back(std::make_unique<GenericStub>(channel));
  }
  payloads_.reserve(workload.requests.size());
  for (const v1::ClassifyRequest& request : workload.requests) {
    payloads_.emplace_back(kserve ? SerializeAsModelInfer(request) : request.SerializeAsString());
  }
}

bool Runner::ParseResponse(grpc::ByteBuffer* buffer, bool stream,
                           v1::ClassifyResponse* response) const {
  if (options_.protocol == Protocol::kMmfuse) {
    return grpc::SerializationTraits<v1::ClassifyResponse>::Deserialize(buffer, response).ok();
  }
  if (stream) {
    inference::ModelStreamInferResponse parsed;
    if (!grpc::SerializationTraits<inference::ModelStreamInferResponse>::Deserialize(buffer,
                                                                                      &parsed)
             .ok()) {
      return false;
    }
    *response = FromModelStreamInfer(parsed);
    return true;
  }
  inference::ModelInferResponse parsed;
  if (!grpc::SerializationTraits<inference::ModelInferResponse>::Deserialize(buffer, &parsed)
           .ok()) {
    return false;
  }
  *response = FromModelInfer(parsed);
  return true;
}

Runner::~Runner() = default;

grpc::ByteBuffer Runner::Message(int64_t seq, std::string* id) const {
  *id = absl::StrCat(options_.request_id_prefix, seq);
  std::string id_only;
  if (options_.protocol == Protocol::kKserve) {
    id_only = SerializeModelInferId(*id);
  } else {
    v1::ClassifyRequest request;
    request.set_request_id(*id);
    id_only = request.SerializeAsString();
  }
  const grpc::Slice slices[2] = {payloads_[seq % payloads_.size()], grpc::Slice(id_only)};
  return grpc::ByteBuffer(slices, 2);
}

bool Runner::ClosedLoopSlotFree() const {
  return stop_ || outstanding_ < options_.load.concurrency;
}

bool Runner::Drained() const { return outstanding_ == 0 && streams_open_ == 0; }

StepResult Runner::Run() {
  const bool open_loop = options_.load.mode == LoadMode::kOpenLoop;
  const absl::Time start = clock_->Now();
  const absl::Time measure_start = start + options_.warmup;
  const absl::Time end = options_.duration == absl::InfiniteDuration()
                             ? absl::InfiniteFuture()
                             : measure_start + options_.duration;
  {
    absl::MutexLock lock(&mu_);
    started_ = true;
    start_ = last_progress_ = start;
    measure_start_ = last_measured_event_ = measure_start;
    result_.load = options_.load;
  }
  if (options_.load.rpc == RpcKind::kStream) {
    {
      absl::MutexLock lock(&mu_);
      streams_open_ = channels_->size();
    }
    for (int i = 0; i < channels_->size(); ++i) {
      streams_.push_back(
          std::make_unique<StreamCall>(this, stubs_[i].get(), channels_->targets()[i]));
    }
    for (auto& stream : streams_) stream->Start();
  }

  std::optional<ArrivalSchedule> schedule;
  if (open_loop) {
    ArrivalOptions arrival;
    arrival.rate_rps = options_.load.rate_rps;
    arrival.arrival = options_.load.arrival;
    arrival.seed = options_.seed;
    schedule.emplace(*ArrivalSchedule::Create(arrival));  // Validated in Create().
  }

  int64_t measured_scheduled = 0;
  for (int64_t seq = 0;; ++seq) {
    Sent sent;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      if (open_loop) {
        sent.intended = start + schedule->Next();
        if (sent.intended >= end) break;
        sent.measured = sent.intended >= measure_start;
        if (sent.measured && options_.max_requests > 0 &&
            measured_scheduled >= options_.max_requests) {
          break;
        }
        clock_->AwaitWithDeadline(&mu_, absl::Condition(&stop_), sent.intended);
        if (stop_) break;
      } else {
        clock_->AwaitWithDeadline(&mu_, absl::Condition(this, &Runner::ClosedLoopSlotFree), end);
        if (stop_) break;
        sent.intended = clock_->Now();
        if (sent.intended >= end) break;
        sent.measured = sent.intended >= measure_start;
        if (sent.measured && options_.max_requests > 0 &&
            measured_scheduled >= options_.max_requests) {
          break;
        }
      }
      if (sent.measured) ++measured_scheduled;
      if (open_loop && outstanding_ >= options_.max_outstanding) {
        if (sent.measured) ++result_.unsent;
        continue;
      }
      ++outstanding_;
      if (sent.measured) {
        ++result_.sent;
        const absl::Time now = clock_->Now();
        if (open_loop && now - sent.intended > options_.late_threshold) ++result_.late;
        last_measured_event_ = std::max(last_measured_event_, now);
      }
    }
    Dispatch(seq, sent);
  }

  for (auto& stream : streams_) stream->CloseWrites();
  bool drained;
  {
    absl::MutexLock lock(&mu_);
    drained = clock_->AwaitWithDeadline(&mu_, absl::Condition(this, &Runner::Drained),
                                        clock_->Now() + options_.timeout);
  }
  if (!drained) {
    // Unary calls end by their own deadlines; cancel streams still busy.
    for (auto& stream : streams_) stream->CancelForTimeout();
  }
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &Runner::Drained));
  result_.elapsed = result_.sent > 0 ? last_measured_event_ - measure_start_ : absl::ZeroDuration();
  return result_;
}

void Runner::Dispatch(int64_t seq, const Sent& sent) {
  std::string id;
  grpc::ByteBuffer message = Message(seq, &id);
  const size_t channel = static_cast<size_t>(seq % channels_->size());
  if (options_.load.rpc == RpcKind::kStream) {
    streams_[channel]->Send(id, std::move(message), sent);
    return;
  }
  auto* call = new UnaryCall();
  call->request = std::move(message);
  call->sent = sent;
  call->context.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  stubs_[channel]->UnaryCall(&call->context, classify_method_, grpc::StubOptions(), &call->request,
                             &call->response, [this, call](grpc::Status status) {
                               OnUnaryDone(call, static_cast<int>(status.error_code()));
                             });
}

void Runner::OnUnaryDone(UnaryCall* call, int status_code) {
  const absl::Time now = clock_->Now();
  std::unique_ptr<UnaryCall> owned(call);
  const Sent sent = call->sent;
  if (status_code != 0) {
    owned.reset();
    Complete(sent, now, CodeName(status_code), nullptr);
    return;
  }
  v1::ClassifyResponse response;
  const bool parsed = ParseResponse(&call->response, /*stream=*/false, &response);
  owned.reset();
  if (!parsed) {
    Complete(sent, now, "UNPARSABLE_RESPONSE", nullptr);
    return;
  }
  Complete(sent, now, "", &response);
}

void Runner::Complete(const Sent& sent, absl::Time now, const std::string& error,
                      const v1::ClassifyResponse* response) {
  // Before the request counts as finished: once Run() returns, every call
  // has returned.
  if (response != nullptr && options_.on_response) options_.on_response(*response);
  {
    absl::MutexLock lock(&mu_);
    --outstanding_;
    const bool ok = error.empty();
    if (ok) {
      consecutive_unavailable_ = 0;
    } else if (error == "UNAVAILABLE" && options_.max_consecutive_unavailable > 0 &&
               ++consecutive_unavailable_ >= options_.max_consecutive_unavailable && !stop_) {
      stop_ = true;
      result_.aborted = absl::StrCat(consecutive_unavailable_,
                                     " requests in a row failed UNAVAILABLE: server unreachable");
    }
    if (ok) {
      const int64_t latency_us = absl::ToInt64Microseconds(now - sent.intended);
      interval_latency_us_.Record(latency_us);
      ++interval_ok_;
      if (sent.measured) {
        ++result_.ok;
        result_.latency_us.Record(latency_us);
        if (response != nullptr) {
          result_.batch_size_sum += response->batch_size();
          result_.queue_us_sum += static_cast<int64_t>(response->timings().queue_us());
          result_.compute_us_sum += static_cast<int64_t>(response->timings().compute_us());
          result_.server_total_us_sum += static_cast<int64_t>(response->timings().total_us());
          result_.server_total_us.Record(static_cast<int64_t>(response->timings().total_us()));
          ++result_.branches[response->branch()];
        }
      }
    } else if (sent.measured) {
      ++result_.errors[error];
    }
    if (sent.measured) last_measured_event_ = std::max(last_measured_event_, now);
  }
}

void Runner::CountUnmatched() {
  absl::MutexLock lock(&mu_);
  ++result_.unmatched;
}

void Runner::StreamFailed(const std::string& target, const std::string& status) {
  absl::MutexLock lock(&mu_);
  if (stop_) return;
  stop_ = true;
  result_.aborted = absl::StrCat("ClassifyStream on ", target, " ended early: ", status);
}

void Runner::StreamClosed() {
  absl::MutexLock lock(&mu_);
  --streams_open_;
}

Progress Runner::GetProgress() {
  absl::MutexLock lock(&mu_);
  Progress progress;
  if (!started_) return progress;
  const absl::Time now = clock_->Now();
  progress.elapsed = now - start_;
  progress.warming_up = now < measure_start_;
  progress.sent = result_.sent;
  progress.ok = result_.ok;
  progress.errors = result_.error_count();
  progress.unsent = result_.unsent;
  progress.outstanding = outstanding_;
  const double seconds = absl::ToDoubleSeconds(now - last_progress_);
  progress.interval_rps = seconds > 0 ? static_cast<double>(interval_ok_) / seconds : 0.0;
  progress.interval_latency_us = interval_latency_us_;
  interval_latency_us_.Clear();
  interval_ok_ = 0;
  last_progress_ = now;
  return progress;
}

}  // namespace mmfuse::bench
