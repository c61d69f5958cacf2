// WaitEstimator: how long a task joining the queues now would wait before its
// batch starts, from the work queued ahead of it and the rate at which the
// workers have been getting through it. The batcher sheds a task whose
// estimated wait exceeds its deadline or max_queue_time at Submit, instead
// of queueing it only to let it expire there.
//
// Estimate = sum over branches of (tasks queued in the branch + half the
// tasks in batches running now, the expected rest of a batch in progress) x
// measured service time per task of the branch, / workers. Service time per task is a
// moving average of a worker's turn on a batch (compute and answering) /
// batch size, per branch (branches differ in cost
// several-fold); a branch not measured yet counts at the mean of those that
// are, and before any batch has run the estimate is zero. It ignores
// priorities (an urgent task may overtake part of the queue: the estimate is
// an upper bound for it).
//
// Thread-safety: thread-compatible (the batcher guards it with its mutex).
#ifndef MMFUSE_BATCHING_WAIT_ESTIMATOR_H_
#define MMFUSE_BATCHING_WAIT_ESTIMATOR_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace mmfuse::batching {

class WaitEstimator {
 public:
  // `workers` >= 1.
  explicit WaitEstimator(int workers) : workers_(workers) {}

  // A task of `branch` (>= 0) joined the queues / left them (its batch was
  // taken, or it expired).
  void Queued(int branch);
  void Left(int branch);
  // A batch of `size` tasks of `branch` went to a worker / `size` of them
  // finished (ran, or were dropped before compute).
  void Started(int branch, int size);
  void Finished(int branch, int size);
  // A worker's turn on a batch of `size` tasks of `branch` took `turn`.
  void BatchRan(int branch, int size, absl::Duration turn);

  // The wait of a task joining now (see the file comment).
  absl::Duration Estimate() const;
  // Moving average of service time per task of `branch`; zero if not
  // measured.
  absl::Duration ServicePerTask(int branch) const;
  // Tasks queued now, all branches.
  int64_t queued() const { return queued_total_; }

 private:
  struct Branch {
    int64_t queued = 0;
    int64_t running = 0;
    double seconds_per_task = 0;  // 0 = not measured yet
  };
  Branch& At(int branch);

  const int workers_;
  std::vector<Branch> branches_;
  int64_t queued_total_ = 0;
};

}  // namespace mmfuse::batching

#endif  // MMFUSE_BATCHING_WAIT_ESTIMATOR_H_
