// RunClosedLoop: measures a ServedModel in process under a closed-loop load:
// `concurrency` callers each send a request, wait for its answer and send
// the next, cycling through a fixed set of requests. The model runs exactly
// as the server runs it (the same validation, batcher, gate stage and
// processor); only gRPC is left out, so the figures are the serving
// stack's ceiling on this machine for one batching setting.
//
// Thread-safety: RunClosedLoop is thread-compatible (one run at a time per
// ServedModel); it starts and joins its own caller threads.
#ifndef MMFUSE_TUNING_CLOSED_LOOP_H_
#define MMFUSE_TUNING_CLOSED_LOOP_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "mmfuse/v1/classifier.pb.h"
#include "server/served_model.h"

namespace mmfuse::tuning {

struct ClosedLoopOptions {
  // Requests in flight, one per caller thread. In [1, 1024]. Default 4.
  int concurrency = 4;
  // Load before the measured window (answers not counted): fills the
  // queues and warms caches. >= 0. Default 300 ms.
  absl::Duration warmup = absl::Milliseconds(300);
  // The measured window: at least this long. > 0. Default 2 s.
  absl::Duration duration = absl::Seconds(2);
  // ...and until this many answers arrived in it, so a slow machine (a
  // sanitizer build, a busy core) still yields figures rather than an empty
  // window. Failed requests end the wait (their trial is void anyway).
  // >= 1. Default 20.
  int min_answers = 20;
};

struct ClosedLoopResult {
  int64_t answered = 0;      // OK answers received in the window
  absl::Duration window;     // its length: duration, or longer for min_answers
  int64_t failed = 0;        // answers with an error, whole run
  absl::Status first_error;  // the first of those; OK if none
  double throughput = 0;     // answered per second of the window
  // Latency from Classify to its answer, over the window's answers.
  absl::Duration p50;
  absl::Duration p99;
  double mean_batch = 0;  // mean ClassifyResponse.batch_size of the answers
};

// Errors only for bad options or an empty `requests`; a request the model
// refuses is counted in `failed`, not an error of the run.
absl::StatusOr<ClosedLoopResult> RunClosedLoop(server::ServedModel& served,
                                               const std::vector<v1::ClassifyRequest>& requests,
                                               const ClosedLoopOptions& options);

}  // namespace mmfuse::tuning

#endif  // MMFUSE_TUNING_CLOSED_LOOP_H_
