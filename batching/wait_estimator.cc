#include "batching/wait_estimator.h"

namespace mmfuse::batching {
namespace {

// Weight of the newest batch in the moving average: recent enough to follow
// a change of load mix within tens of batches, smooth enough that one slow
// batch (a page fault, a preemption) moves it by a fifth.
constexpr double kNewestWeight = 0.2;

}  // namespace

WaitEstimator::Branch& WaitEstimator::At(int branch) {
  if (branch >= static_cast<int>(branches_.size())) branches_.resize(branch + 1);
  return branches_[branch];
}

void WaitEstimator::Queued(int branch) {
  ++At(branch).queued;
  ++queued_total_;
}

void WaitEstimator::Left(int branch) {
  --At(branch).queued;
  --queued_total_;
}

void WaitEstimator::Started(int branch, int size) { At(branch).running += size; }

void WaitEstimator::Finished(int branch, int size) { At(branch).running -= size; }

void WaitEstimator::BatchRan(int branch, int size, absl::Duration turn) {
  if (size < 1) return;
  const double per_task = absl::ToDoubleSeconds(turn) / size;
  Branch& b = At(branch);
  b.seconds_per_task = b.seconds_per_task == 0
                           ? per_task
                           : (1 - kNewestWeight) * b.seconds_per_task + kNewestWeight * per_task;
}

absl::Duration WaitEstimator::Estimate() const {
  double measured_sum = 0;
  int measured = 0;
  for (const Branch& b : branches_) {
    if (b.seconds_per_task > 0) {
      measured_sum += b.seconds_per_task;
      ++measured;
    }
  }
  if (measured == 0) return absl::ZeroDuration();
  const double fallback = measured_sum / measured;
  double seconds = 0;
  for (const Branch& b : branches_) {
    const double per_task = b.seconds_per_task > 0 ? b.seconds_per_task : fallback;
    seconds += (b.queued + 0.5 * b.running) * per_task;
  }
  return absl::Seconds(seconds / workers_);
}

absl::Duration WaitEstimator::ServicePerTask(int branch) const {
  if (branch < 0 || branch >= static_cast<int>(branches_.size())) return absl::ZeroDuration();
  return absl::Seconds(branches_[branch].seconds_per_task);
}

}  // namespace mmfuse::batching
