// OrderedStreamReactor: one bidirectional streaming call where every request
// read is submitted at once (up to `max_inflight` in flight) and answered by
// exactly one response. Responses are written one at a time, in completion
// order, from a ResponseWriteQueueOf<Response>; a failed request is answered
// in band (by `answer`) and the stream goes on. The call finishes once the
// client has half-closed (or gone), every request read is answered and the
// last write is done, so no request read goes unanswered.
//
// Shutdown (OpenCalls::DrainAll): the stream stops reading, answers every
// request it has read, then ends UNAVAILABLE "server is shutting down"
// (OK if the client had half-closed). Requests the client sent that were
// not read by then get no answer and were never computed: a client resends
// them elsewhere. A stream opened after the drain began ends at once, the
// same way. Responses that never reach the client (it went away) are
// counted as undelivered.
//
// Shared by mmfuse.v1's ClassifyStream and KServe's ModelStreamInfer: the
// protocol lives only in the two functions it is given.
//
// Thread-safety: thread-safe; gRPC callbacks and completions may run on any
// thread. Lifetime: created with `new` in the service's handler; reference
// counted: gRPC holds one reference until OnDone, every request read holds
// one until its completion has returned and every reaction one while it
// runs, so the reactor deletes itself after all of them. (Completions run on the batcher's threads, outside gRPC's
// reactions: OnDone can follow the last write while a completion is still
// on its way out of MaybeFinish. Deleting in OnDone alone was a
// use-after-free that ThreadSanitizer found.)
#ifndef MMFUSE_SERVER_ORDERED_STREAM_REACTOR_H_
#define MMFUSE_SERVER_ORDERED_STREAM_REACTOR_H_

#include <atomic>
#include <functional>
#include <memory>
#include <utility>

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/grpc_call_context.h"
#include "server/open_calls.h"
#include "server/response_write_queue.h"

namespace mmfuse::server {

template <typename Request, typename Response>
class OrderedStreamReactor final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  // Starts answering `request` into `response` (both live until `done`
  // runs); `done` runs exactly once, on any thread, possibly inline, and
  // last: it may free the request and the response.
  using SubmitFn = std::function<void(const Request* request, Response* response,
                                      CallContext call, std::function<void(absl::Status)> done)>;
  // Completes the response to write for `request` once it is answered with
  // `status`: stamps the request's id and, when `status` failed, replaces
  // what `response` holds with the error.
  using AnswerFn =
      std::function<void(const Request& request, const absl::Status& status, Response* response)>;

  // `context` is the call's (it outlives the reactor); `max_inflight` >= 1;
  // `calls` (not owned, outlives the reactor) drains it at shutdown.
  OrderedStreamReactor(grpc::CallbackServerContext* context, int max_inflight, OpenCalls* calls,
                       SubmitFn submit, AnswerFn answer)
      : context_(context),
        max_inflight_(max_inflight),
        calls_(calls),
        submit_(std::move(submit)),
        answer_(std::move(answer)) {
    // Publishes the constructed reactor to its first reaction (see
    // ReactionRef) and to DrainAll before either can run on another thread.
    refs_.store(1, std::memory_order_release);
    const bool joined = calls_->Join(
        this, {[this] { return TryRef(); },
               [this] {
                 Drain();
                 Unref();
               }});
    if (!joined) {  // Shutting down already: end without reading.
      Drain();
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;  // Drained between the Join and here.
      read_pending_ = true;
      ++starting_reads_;
    }
    StartReadThenSettle();
  }

  ~OrderedStreamReactor() override { calls_->Leave(this); }

  void OnReadDone(bool ok) override {
    ReactionRef reaction(this);
    if (!ok) {
      {
        absl::MutexLock lock(&mu_);
        read_pending_ = false;
        reads_done_ = true;
        half_closed_ = !cancelled_;
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
      read_pending_ = false;
      // The drain finished the call while this read was in flight: the
      // request is neither computed nor answered (the client sees the
      // stream end UNAVAILABLE without its answer).
      if (finished_) return;
      samples_.emplace(raw, std::move(sample));
      read_more =
          samples_.size() < static_cast<size_t>(max_inflight_) && !cancelled_ && !draining_;
      read_pending_ = read_more;
      if (read_more) ++starting_reads_;
      // This read completed after OnCancel (or the drain), which left the
      // reads to it: no read follows, so they are done. (Without this the
      // call never finished, and the server's shutdown waited for it.)
      if (cancelled_ || draining_) reads_done_ = true;
    }
    // Read before submitting: a refused request completes inline, and its
    // completion must see the read already in flight.
    if (read_more) StartReadThenSettle();
    refs_.fetch_add(1, std::memory_order_relaxed);  // The completion's; see Complete.
    submit_(&raw->request, &raw->response, MakeCallContext(context_, received),
            [this, raw](absl::Status status) { Complete(raw, status); });
  }

  void OnWriteDone(bool ok) override {
    ReactionRef reaction(this);
    Response* next;
    {
      absl::MutexLock lock(&mu_);
      next = writes_.WriteDone(ok);
    }
    if (next != nullptr) this->StartWrite(next);
    MaybeFinish();
  }

  // Stops reading; the call finishes once every request read is answered.
  void Drain() {
    {
      absl::MutexLock lock(&mu_);
      draining_ = true;
      // A read in flight may never complete (the client sends nothing more):
      // the call finishes without waiting for it.
      reads_done_ = true;
    }
    MaybeFinish();
  }

  void OnCancel() override {
    ReactionRef reaction(this);
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      // A read in flight completes (not ok) by itself; a paused one never will.
      if (!read_pending_) reads_done_ = true;
    }
    MaybeFinish();
  }

  void OnDone() override {
    int64_t dropped;
    {
      absl::MutexLock lock(&mu_);
      dropped = writes_.dropped();
    }
    calls_->RecordUndelivered(dropped);
    Unref();
  }

 private:
  struct Sample {
    Request request;
    Response response;
  };

  // A reference for the length of one gRPC reaction. gRPC runs reactions
  // one after another and OnDone after all of them, through synchronisation
  // of its own that ThreadSanitizer cannot see; taking (acquire) and
  // dropping (release) this reference states that order where it can.
  class ReactionRef {
   public:
    explicit ReactionRef(OrderedStreamReactor* reactor) : reactor_(reactor) {
      reactor_->refs_.fetch_add(1, std::memory_order_acq_rel);
    }
    ~ReactionRef() { reactor_->Unref(); }
    ReactionRef(const ReactionRef&) = delete;
    ReactionRef& operator=(const ReactionRef&) = delete;

   private:
    OrderedStreamReactor* const reactor_;
  };

  // Runs exactly once per request read, on any thread.
  void Complete(Sample* sample, const absl::Status& status) {
    Response response = std::move(sample->response);
    answer_(sample->request, status, &response);
    Response* write_now;
    bool resume_read = false;
    std::unique_ptr<Sample> owned;
    {
      absl::MutexLock lock(&mu_);
      auto it = samples_.find(sample);
      owned = std::move(it->second);
      samples_.erase(it);
      write_now = writes_.Push(std::move(response));
      if (!read_pending_ && !reads_done_ && !cancelled_ && !draining_ &&
          samples_.size() < static_cast<size_t>(max_inflight_)) {
        read_pending_ = resume_read = true;
        ++starting_reads_;
      }
    }
    if (write_now != nullptr) this->StartWrite(write_now);
    if (resume_read) StartReadThenSettle();
    MaybeFinish();
    Unref();  // Last: the reactor may be gone after it.
  }

  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Starts a read decided under mu_ (counted in starting_reads_), then lets the
  // call finish: a drain or cancel that came meanwhile must not Finish
  // before StartRead, or the read would start on a finished call.
  void StartReadThenSettle() {
    this->StartRead(&incoming_);
    {
      absl::MutexLock lock(&mu_);
      --starting_reads_;
    }
    MaybeFinish();
  }

  // A reference for DrainAll, unless the last one is gone.
  bool TryRef() { return TryAddRef(refs_); }

  void MaybeFinish() {
    bool shutting_down;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || !reads_done_ || starting_reads_ > 0 || !samples_.empty() ||
          writes_.in_flight()) {
        return;
      }
      finished_ = true;
      shutting_down = draining_ && !half_closed_;
    }
    this->Finish(shutting_down
                     ? grpc::Status(grpc::StatusCode::UNAVAILABLE, kShuttingDownMessage)
                     : grpc::Status::OK);
  }

  grpc::CallbackServerContext* const context_;
  const int max_inflight_;
  OpenCalls* const calls_;
  const SubmitFn submit_;
  const AnswerFn answer_;
  Request incoming_;  // Target of the one read in flight.

  std::atomic<int> refs_{1};  // gRPC's, until OnDone; one per request in flight.
  absl::Mutex mu_;
  absl::flat_hash_map<Sample*, std::unique_ptr<Sample>> samples_ ABSL_GUARDED_BY(mu_);
  ResponseWriteQueueOf<Response> writes_ ABSL_GUARDED_BY(mu_);
  bool read_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;  // the client's WritesDone arrived
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  int starting_reads_ ABSL_GUARDED_BY(mu_) = 0;  // see StartReadThenSettle
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_ORDERED_STREAM_REACTOR_H_
