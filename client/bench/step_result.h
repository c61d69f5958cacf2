// What one load step is (LoadSpec) and what it measured (StepResult), plus
// the live Progress of a step in flight. Plain data shared by the runner
// (which fills them) and the report (which prints them); no gRPC here.
//
// Thread-safety: plain structs, thread-compatible.
#ifndef MMFUSE_CLIENT_BENCH_STEP_RESULT_H_
#define MMFUSE_CLIENT_BENCH_STEP_RESULT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/time/time.h"
#include "client/bench/histogram.h"

namespace mmfuse::bench {

// Closed loop: a fixed number of requests in flight, the next sent when one
// finishes. Open loop: requests sent at scheduled times whatever the answers.
enum class LoadMode { kClosedLoop, kOpenLoop };

// Gaps between open-loop sends: all 1/rate, or exponential of mean 1/rate.
enum class Arrival { kConstant, kPoisson };

// Unary Classify calls, or requests multiplexed on ClassifyStream calls.
enum class RpcKind { kUnary, kStream };

const char* LoadModeName(LoadMode mode);   // "closed" / "open"
const char* ArrivalName(Arrival arrival);  // "constant" / "poisson"
const char* RpcKindName(RpcKind rpc);      // "unary" / "stream"

// The load of one step.
struct LoadSpec {
  LoadMode mode = LoadMode::kClosedLoop;
  // Closed loop: requests in flight. >= 1.
  int concurrency = 1;
  // Open loop: requests per second. > 0.
  double rate_rps = 0;
  Arrival arrival = Arrival::kConstant;
  RpcKind rpc = RpcKind::kUnary;
};

struct StepResult {
  LoadSpec load;
  // From the end of warm-up to the last measured response (or the end of
  // sending, if later).
  absl::Duration elapsed = absl::ZeroDuration();

  // Counts cover measured requests only (sent after warm-up). Invariant once
  // the step is over: sent == ok + sum(errors).
  int64_t sent = 0;
  int64_t ok = 0;
  // Failed requests by gRPC code name ("UNAVAILABLE", ...); in streams a
  // response's SampleError counts by its code.
  std::map<std::string, int64_t> errors;
  // Open loop: requests not sent because --max_outstanding were in flight at
  // their intended time (not in `sent`).
  int64_t unsent = 0;
  // Open loop: requests sent more than RunnerOptions::late_threshold after
  // their intended time (the client fell behind; latency still counts from
  // the intended time).
  int64_t late = 0;
  // Stream responses whose request_id matched no request in flight.
  int64_t unmatched = 0;

  // Latency of successful requests, in microseconds: from the intended send
  // time (open loop) or the send time (closed loop) to the response.
  LatencyHistogram latency_us;

  // From successful responses: sums for the means, and counts by branch.
  int64_t batch_size_sum = 0;
  int64_t queue_us_sum = 0;
  int64_t compute_us_sum = 0;
  int64_t server_total_us_sum = 0;
  // The server's own time per successful request (its timings.total_us):
  // under overload the client's latency also holds the time a request waits
  // in the client and the network stack, this one only the server's.
  LatencyHistogram server_total_us;
  std::map<std::string, int64_t> branches;

  // Non-empty if the step stopped early, saying why (e.g. the server became
  // unreachable).
  std::string aborted;

  int64_t error_count() const;
  // Successful responses per second of `elapsed`; 0 if none.
  double throughput_rps() const;
  double mean_batch_size() const;
  double mean_queue_us() const;
  double mean_compute_us() const;
  double mean_server_total_us() const;
};

// A step in flight, for the live progress line.
struct Progress {
  absl::Duration elapsed = absl::ZeroDuration();  // Since the step started.
  bool warming_up = false;
  int64_t sent = 0;  // Measured only, like StepResult.
  int64_t ok = 0;
  int64_t errors = 0;
  int64_t unsent = 0;
  int64_t outstanding = 0;  // In flight now, warm-up requests included.
  // Successful responses per second and their latencies since the previous
  // Progress (warm-up included, so the line is live from the start).
  double interval_rps = 0;
  LatencyHistogram interval_latency_us;
};

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_STEP_RESULT_H_
