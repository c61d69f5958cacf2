// Runner: drives one load step against mmfuse servers and measures it.
//
// One dispatcher thread (the caller of Run()) decides when each request goes:
//   closed loop: whenever fewer than `concurrency` requests are in flight;
//   open loop:   at start + ArrivalSchedule offset, whatever is in flight (up
//                to max_outstanding; a request finding that many in flight is
//                not sent and counts as `unsent`).
// Sends use gRPC's callback API (generic stub, pre-serialized payloads), so
// sending never waits for a response; completions run on gRPC's threads.
// Latency is measured from the intended send time in the open loop (no
// coordinated omission) and from the send time in the closed loop.
//
// Requests cycle through the Workload; each gets a unique request_id
// (prefix + sequence number), appended to the pre-serialized request as one
// more length-delimited field (protobuf's last-field-wins merge), so no
// request is re-serialized on the hot path. Request i goes to channel
// i % channels (unary), or to the ClassifyStream opened on that channel
// (stream: one stream per channel, responses matched by request_id).
//
// Bounds: the step sends for warmup + duration and/or until max_requests
// measured requests; then it stops sending, closes its streams and waits for
// every request in flight (unary calls carry a `timeout` deadline; streams
// still busy `timeout` after the last send are cancelled, failing their
// pending requests DEADLINE_EXCEEDED). Stream requests have no deadline of
// their own while the step runs: under overload they wait in the stream's
// write queue (gRPC flow control), and that wait counts in their latency. Requests sent
// during warm-up are not counted. If max_consecutive_unavailable requests in
// a row fail UNAVAILABLE, or a stream ends before the step closes it, the
// step stops early and says why in StepResult::aborted.
//
// Thread-safety: thread-safe. Run() once; GetProgress() from any thread.
// The channels and the Workload must outlive the Runner.
#ifndef MMFUSE_CLIENT_BENCH_RUNNER_H_
#define MMFUSE_CLIENT_BENCH_RUNNER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/bench/channel_pool.h"
#include "client/bench/step_result.h"
#include "client/bench/workload.h"
#include "common/clock.h"
#include "mmfuse/v1/classifier.pb.h"

namespace grpc {
template <class RequestType, class ResponseType>
class TemplatedGenericStub;
class ByteBuffer;
class Slice;
}  // namespace grpc

namespace mmfuse::bench {

// The API requests go through: mmfuse.v1 (Classify, ClassifyStream) or the
// Open Inference Protocol (ModelInfer, ModelStreamInfer; the same requests,
// converted by client/bench/kserve_codec).
enum class Protocol { kMmfuse, kKserve };

struct RunnerOptions {
  // Mode, concurrency or rate, arrival process, RPC kind.
  LoadSpec load;
  // Default mmfuse.v1.
  Protocol protocol = Protocol::kMmfuse;
  // How long to send after warm-up; absl::InfiniteDuration() = no time bound.
  // > 0. Default 10 s.
  absl::Duration duration = absl::Seconds(10);
  // Most measured requests (open loop: scheduled, i.e. sent + unsent);
  // 0 = no count bound. >= 0. At least one of duration and max_requests must
  // be finite. Default 0.
  int64_t max_requests = 0;
  // Sending before measuring starts (requests then are not counted). >= 0.
  // Default 0.
  absl::Duration warmup = absl::ZeroDuration();
  // Open loop: most requests in flight. >= 1. Default 1000.
  int max_outstanding = 1000;
  // Unary deadline per request; streams still busy this long after the last
  // send are cancelled. > 0. Default 10 s.
  absl::Duration timeout = absl::Seconds(10);
  // Open loop: a send later than this after its intended time counts as
  // `late`. >= 0. Default 1 ms.
  absl::Duration late_threshold = absl::Milliseconds(1);
  // Stop the step after this many UNAVAILABLE failures in a row (the server
  // is gone); 0 = never. >= 0. Default 100.
  int max_consecutive_unavailable = 100;
  // Seeds the Poisson arrival process. Default 1.
  uint64_t seed = 1;
  // request_id = prefix + sequence number; use one prefix per step so ids
  // are unique across a run. Default "r".
  std::string request_id_prefix = "r";
  // Called with every response received (stream SampleErrors included), on a
  // gRPC thread, outside the Runner's lock, before its request counts as
  // finished (so all calls have returned when Run() does); must be
  // thread-safe. May be empty.
  std::function<void(const v1::ClassifyResponse&)> on_response;
  Clock* clock = nullptr;  // Not owned; nullptr = real clock.
};

class Runner {
 public:
  // Validates `options` (errors name the field) and serializes the
  // workload's requests. `channels` and `workload` are borrowed.
  static absl::StatusOr<std::unique_ptr<Runner>> Create(const RunnerOptions& options,
                                                        const ChannelPool* channels,
                                                        const Workload& workload);
  ~Runner();

  // Runs the step on the calling thread; returns when every request sent has
  // finished. Call once.
  StepResult Run();

  // Counts so far, and latencies since the previous call. Thread-safe.
  Progress GetProgress();

 private:
  class StreamCall;
  struct UnaryCall;
  // What a completion needs to know about its request.
  struct Sent {
    absl::Time intended;
    bool measured = false;
  };

  Runner(const RunnerOptions& options, const ChannelPool* channels, const Workload& workload);

  // Sends request `seq` (outside mu_).
  void Dispatch(int64_t seq, const Sent& sent);
  // The wire bytes of request `seq`: its workload payload plus its id.
  grpc::ByteBuffer Message(int64_t seq, std::string* id) const;
  // Parses a response of the protocol's unary or stream RPC; false if the
  // bytes do not parse.
  bool ParseResponse(grpc::ByteBuffer* buffer, bool stream, v1::ClassifyResponse* response) const;
  void OnUnaryDone(UnaryCall* call, int status_code);
  // Exactly once per dispatched request, on any thread, outside mu_.
  // `error` is empty on success, else the error's name ("UNAVAILABLE").
  // `response` may be null (no response received).
  void Complete(const Sent& sent, absl::Time now, const std::string& error,
                const v1::ClassifyResponse* response);
  void CountUnmatched();
  // A stream ended before the step closed it: stops the step.
  void StreamFailed(const std::string& target, const std::string& status);
  // A stream's OnDone is over (its last call into the Runner).
  void StreamClosed();

  bool ClosedLoopSlotFree() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Drained() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RunnerOptions options_;
  Clock* const clock_;
  const ChannelPool* const channels_;
  std::vector<std::unique_ptr<grpc::TemplatedGenericStub<grpc::ByteBuffer, grpc::ByteBuffer>>>
      stubs_;
  std::vector<grpc::Slice> payloads_;  // Serialized workload requests.
  std::string classify_method_;
  std::string stream_method_;
  std::vector<std::unique_ptr<StreamCall>> streams_;  // RpcKind::kStream only.

  absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time start_ ABSL_GUARDED_BY(mu_);
  absl::Time measure_start_ ABSL_GUARDED_BY(mu_);
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  int streams_open_ ABSL_GUARDED_BY(mu_) = 0;
  int consecutive_unavailable_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_measured_event_ ABSL_GUARDED_BY(mu_);  // Last measured send or response.
  StepResult result_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram interval_latency_us_ ABSL_GUARDED_BY(mu_);
  int64_t interval_ok_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_progress_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_RUNNER_H_
