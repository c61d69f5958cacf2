// Batcher: the dynamic batcher and its worker pool.
//
// Tasks queue per (branch, length bucket); each worker repeatedly takes the
// most urgent ready batch and runs it on the BatchProcessor. A queue is ready
// when it holds a preferred batch size (or max_batch_size, or max_batch_tokens
// worth), or when its oldest task has waited max_queue_delay. Among ready
// queues, higher priority first, then the oldest head; an aging rule keeps a
// low priority queue from starving.
//
// Overload: a task whose estimated queue wait (batching/wait_estimator.h)
// exceeds the time left to its deadline, or max_queue_time, is refused at
// Submit with RESOURCE_EXHAUSTED naming the estimate and the limit (IsShed
// tells these from a full queue), so accepted tasks wait about as long as
// the limit however far the load exceeds what the workers can do.
//
// Contract: every task given to Submit has its `done` run exactly once: at
// once with RESOURCE_EXHAUSTED (queue full, or shed), INVALID_ARGUMENT (bad
// priority or tokens) or UNAVAILABLE (shutting down); with DEADLINE_EXCEEDED or CANCELLED
// if it expires or is cancelled before its batch starts (never computed); else
// with the processor's status for it. A task the processor sends on to a
// later stage (Task::requeue) is queued again, never refused, and answered
// by its last stage.
//
// Thread-safety: thread-safe. Submit never blocks on compute.
#ifndef MMFUSE_BATCHING_BATCHER_H_
#define MMFUSE_BATCHING_BATCHER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "batching/batch_processor.h"
#include "batching/task.h"
#include "common/clock.h"

namespace mmfuse::batching {

struct BatcherOptions {
  // Most tasks in one batch. >= 1. Default 32.
  int max_batch_size = 32;
  // Most tokens (sum of Task::tokens) in one batch; 0 = no token bound. A task
  // larger than the bound alone still runs, in a batch of one. Default 0.
  int64_t max_batch_tokens = 0;
  // Longest the oldest task of a queue waits for company before a partial
  // batch runs. >= 0. Default 500 us.
  absl::Duration max_queue_delay = absl::Microseconds(500);
  // Batch sizes a queue waits for (each in [1, max_batch_size]), like Triton's
  // preferred_batch_size; empty = only max_batch_size. Default empty.
  std::vector<int> preferred_batch_sizes;
  // Worker threads, each running one batch at a time. >= 1. Default 2.
  int num_workers = 2;
  // Priority levels: Task::priority in [0, priority_levels), 0 most urgent.
  // >= 1. Default 1.
  int priority_levels = 1;
  // Priority of tasks that give none (-1). In [0, priority_levels). Default 0.
  int default_priority = 0;
  // Most tasks waiting in one queue; Submit answers RESOURCE_EXHAUSTED beyond.
  // >= 1. Default 1024.
  int max_queue_size = 1024;
  // Timeout applied to tasks with no deadline; InfiniteDuration = none.
  // Default none.
  absl::Duration default_timeout = absl::InfiniteDuration();
  // Longest estimated queue wait a task is accepted with; beyond it Submit
  // sheds the task (see the class comment). > 0; InfiniteDuration = only the
  // task's deadline limits it. Default none.
  absl::Duration max_queue_time = absl::InfiniteDuration();
  // Whether a task's own deadline may extend past default_timeout (like
  // Triton's allow_timeout_override). false = a task waits at most
  // default_timeout whatever its deadline. Default true.
  bool allow_timeout_override = true;
  // Upper edges of the length buckets over Task::tokens, strictly increasing;
  // a task joins the first bucket whose edge >= tokens (the last bucket is
  // open). Empty = one bucket. Default empty.
  std::vector<int64_t> length_bucket_edges;
  // Branches whose queues never wait for company: a batch runs as soon as a
  // worker is free, whatever max_queue_delay says. For a cheap first stage
  // (the gate) that hands its tasks on (Task::requeue): their later queue
  // counts max_queue_delay from their arrival, so a task waits for company
  // once, not once per stage. Default none.
  std::vector<int> no_delay_branches;
  // A task waiting longer than this is treated as top priority, so no queue
  // starves. Default 100 ms.
  absl::Duration starvation_age = absl::Milliseconds(100);
  // Not owned; must outlive the batcher. nullptr = Clock::Real().
  Clock* clock = nullptr;
};

// A point-in-time view for metrics and tests.
struct BatcherStats {
  int64_t queued = 0;            // tasks waiting now, all queues
  int64_t running = 0;           // tasks in batches on workers now
  int64_t batches = 0;           // batches run so far
  int64_t completed = 0;         // tasks answered by the processor so far
  int64_t requeued = 0;          // tasks sent on to a later stage (Task::requeue)
  int64_t rejected_full = 0;     // RESOURCE_EXHAUSTED at Submit: queue full
  int64_t shed = 0;              // RESOURCE_EXHAUSTED at Submit: estimated wait too long
  int64_t expired = 0;           // DEADLINE_EXCEEDED before compute
  int64_t cancelled = 0;         // CANCELLED before compute
  // Tasks waiting now by Task::branch (all length buckets); only branches
  // with waiting tasks appear. Sums to `queued`.
  std::map<int, int64_t> queued_by_branch;
  int64_t max_queue_size = 0;    // Options::max_queue_size (per queue)
};

// Whether `status` is a Submit refusal for an estimated wait beyond the
// task's deadline or max_queue_time (RESOURCE_EXHAUSTED, like a full queue).
bool IsShed(const absl::Status& status);

class Batcher {
 public:
  // Validates `options` (errors name the field and its limit) and starts the
  // workers. `processor` is not owned and must outlive the batcher.
  static absl::StatusOr<std::unique_ptr<Batcher>> Create(
      const BatcherOptions& options, BatchProcessor* processor);

  // Shuts down (as Shutdown) if not done yet.
  ~Batcher();

  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // Always takes `task`; its `done` runs exactly once (see the class comment):
  // on the caller's thread if rejected, else later on a worker.
  void Submit(std::unique_ptr<Task> task);

  // The shed refusal Submit would give now to a task due by `deadline`
  // (InfiniteFuture = none), counted as shed; OK otherwise (the task may
  // still be refused by Submit, which decides). Lets a caller refuse before
  // doing work of its own for the task, such as running a gate.
  absl::Status CheckShed(absl::Time deadline);

  // Refuses new tasks (UNAVAILABLE), runs every queued task to completion (no
  // max_queue_delay wait), then joins the workers. Idempotent; blocks.
  void Shutdown();

  BatcherStats Stats() const;

 private:
  class Impl;
  explicit Batcher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmfuse::batching

#endif  // MMFUSE_BATCHING_BATCHER_H_
