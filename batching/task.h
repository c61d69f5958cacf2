// Task: one request as the batcher sees it. The batcher knows nothing of gRPC
// or tensors: the request's data travels as an opaque Payload that only the
// BatchProcessor (the model side) reads and writes.
//
// Ownership: the caller builds a Task and hands it to Batcher::Submit; the
// batcher hands it back, exactly once, through `done`.
#ifndef MMFUSE_BATCHING_TASK_H_
#define MMFUSE_BATCHING_TASK_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mmfuse::batching {

// The request's data and, after a successful batch, its result. Subclassed by
// the owner of the model (server/); the batcher only moves it around.
class Payload {
 public:
  virtual ~Payload() = default;
};

// Filled in by the batcher for the response's timings.
struct TaskTimings {
  absl::Time enqueued = absl::InfinitePast();   // accepted by Submit
  absl::Time started = absl::InfinitePast();    // its batch went to the model
  absl::Time finished = absl::InfinitePast();   // the model returned
  int batch_size = 0;                           // tasks in the batch it ran in
  // Compute time of the batches of earlier stages (Task::requeue), which
  // also lies between `enqueued` and `started`: the task's time in queues
  // is started - enqueued - earlier_stages_compute.
  absl::Duration earlier_stages_compute = absl::ZeroDuration();
};

struct Task {
  // Which homogeneous queue the task joins, together with its length bucket:
  // all tasks of a batch share the branch (the gate's choice of modality
  // subset), so the batch computes exactly the encoders it needs. >= 0.
  int branch = 0;
  // The shape of the task's inputs, as an opaque key: the server derives it
  // from the modalities the request carries and their length buckets
  // (model::BatchingKeyOf). Tasks of a batch share it too, so a batch never
  // runs an encoder for an input some of its samples lack, and pads each
  // input little. Default 0 (every task alike).
  uint64_t input_group = 0;
  // Cost proxy used for length buckets and the per-batch token bound: the
  // number of tokens the branch runs for this sample. >= 1.
  int64_t tokens = 1;
  // 0 is the most urgent level; must be < Options::priority_levels. -1 means
  // Options::default_priority.
  int priority = -1;
  // Dropped with DEADLINE_EXCEEDED, without compute, if not started by then.
  // InfiniteFuture = the batcher's default timeout applies (if any).
  absl::Time deadline = absl::InfiniteFuture();
  // Polled before the task's batch runs; true drops it with CANCELLED. May be
  // empty. Must be cheap and thread-safe (e.g. reads an atomic).
  std::function<bool()> is_cancelled;
  // The request data; owned by the task.
  std::unique_ptr<Payload> payload;
  TaskTimings timings;
  // Set by the processor, with `branch`, `input_group` and `tokens` changed,
  // to send the task on to another queue instead of answering it: a
  // pipeline of stages, such as the gate and then the expert it chose. The
  // batcher clears it and queues the task again with its deadline, priority
  // and place in arrival order; an accepted task is never refused on the
  // way (a full queue or shutdown), so it is answered exactly once, by its
  // last stage. Ignored when the processor's status for the task is an
  // error.
  bool requeue = false;

  // Runs exactly once, on any thread, with the outcome and the task itself
  // (payload holding the result when status is OK). Must not block; must not
  // call back into the batcher's Shutdown.
  std::function<void(absl::Status status, std::unique_ptr<Task> task)> done;
};

}  // namespace mmfuse::batching

#endif  // MMFUSE_BATCHING_TASK_H_
