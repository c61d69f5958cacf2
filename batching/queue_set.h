// QueueSet: the batcher's waiting tasks and its scheduling policy, without
// threads or locks (batcher.cc holds the lock and runs the workers).
//
// Tasks wait in one queue per (branch, input group, length bucket). Inside a
// queue they are kept per priority level, each level FIFO, so a batch is
// homogeneous in branch, inputs present and bucket but may mix priorities: the queue hands out its most
// urgent tasks first. Urgency of a task is (effective priority, arrival
// order), where the effective priority is the task's priority, or 0 (top)
// once it has waited starvation_age (aging).
//
// A queue is ready when it holds max_batch_size tasks, or max_batch_tokens
// tokens, or its oldest task has waited max_queue_delay (all three: batch of
// up to max_batch_size within the token bound), or else when it holds at
// least one preferred batch size (batch of the largest preferred size not
// above its count, within the token bound). TakeBatch serves the ready queue
// whose most urgent task is the most urgent overall: priority first, then the
// oldest.
//
// Tasks with a finite deadline are also indexed by deadline, so expired tasks
// are found (TakeExpired) in O(log n) each wherever they wait.
//
// Thread-safety: thread-compatible (the batcher guards it with its mutex).
#ifndef MMFUSE_BATCHING_QUEUE_SET_H_
#define MMFUSE_BATCHING_QUEUE_SET_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "batching/batcher.h"
#include "batching/task.h"

namespace mmfuse::batching {

// A task as it waits, with the deadline the batcher resolved for it
// (Task::deadline or enqueued + default_timeout; InfiniteFuture = none).
struct QueuedTask {
  std::unique_ptr<Task> task;
  absl::Time deadline = absl::InfiniteFuture();
  uint64_t seq = 0;  // Arrival order, set by QueueSet::Add.
};

// The length bucket of a task with `tokens` tokens under `edges` (sorted):
// the index of the first edge >= tokens, or edges.size() (the open last
// bucket).
int LengthBucket(const std::vector<int64_t>& edges, int64_t tokens);

// Whether TakeBatch honours the readiness rules or serves any non-empty queue
// at once (shutdown drains without waiting for max_queue_delay).
enum class Readiness { kWaitForReady, kDrain };

class QueueSet {
 public:
  struct Key {
    int branch = 0;
    uint64_t input_group = 0;
    int bucket = 0;
    bool operator<(const Key& other) const {
      return std::tie(branch, input_group, bucket) <
             std::tie(other.branch, other.input_group, other.bucket);
    }
  };

  // `options` must have passed Batcher's validation; it is copied.
  explicit QueueSet(const BatcherOptions& options);

  QueueSet(const QueueSet&) = delete;
  QueueSet& operator=(const QueueSet&) = delete;

  // LengthBucket under the options' length_bucket_edges.
  int BucketFor(int64_t tokens) const;

  // Tasks waiting, all queues.
  int64_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Tasks waiting in one queue.
  int64_t QueueSize(const Key& key) const;
  // Tasks waiting by branch (summed over buckets); branches with none are
  // left out.
  std::map<int, int64_t> SizeByBranch() const;

  // Queues `task` (its timings.enqueued already set) at priority level
  // `priority` (resolved, in range) of queue `key`. The caller checked
  // QueueSize against max_queue_size. `seq` is the arrival order of a task
  // coming back from an earlier stage (QueuedTask::seq, with its original
  // timings.enqueued), so it keeps its place; unset = arriving now. Returns
  // true when a worker waiting on NextWakeTime() should look again: the
  // queue is now ready, or the next wake time moved earlier.
  bool Add(const Key& key, int priority, absl::Time deadline,
           std::unique_ptr<Task> task, absl::Time now,
           std::optional<uint64_t> seq = std::nullopt);

  // Removes and returns every task whose deadline <= now.
  std::vector<QueuedTask> TakeExpired(absl::Time now);

  // Removes and returns the most urgent ready batch (see the file comment),
  // in urgency order; empty when no queue is ready. 1 <= size <=
  // max_batch_size; the tokens stay within max_batch_tokens unless the batch
  // is a single larger task.
  std::vector<QueuedTask> TakeBatch(absl::Time now, Readiness readiness);

  // The earliest time at which, with no new task, TakeExpired or TakeBatch
  // could return something they would not return now: the earliest
  // deadline, or the earliest time a queue becomes ready by max_queue_delay.
  // InfiniteFuture when nothing waits.
  absl::Time NextWakeTime() const;

 private:
  // One priority level of a queue, FIFO: arrival sequence number -> task.
  using Level = std::map<uint64_t, QueuedTask>;

  struct Queue {
    std::vector<Level> levels;  // index = priority
    int64_t size = 0;
    int64_t tokens = 0;
  };

  // Where a task with a finite deadline waits; ordered by (deadline, seq).
  struct DeadlineRef {
    absl::Time deadline;
    uint64_t seq = 0;
    Key key;
    int level = 0;
    bool operator<(const DeadlineRef& other) const {
      if (deadline != other.deadline) return deadline < other.deadline;
      return seq < other.seq;
    }
  };

  // (effective priority, seq): smaller is more urgent.
  using Urgency = std::pair<int, uint64_t>;

  // Effective priority of a task waiting at `level` since `enqueued`.
  int EffectivePriority(int level, absl::Time enqueued, absl::Time now) const;
  // The level holding the queue's most urgent task and that task's urgency;
  // the queue must not be empty.
  std::pair<int, Urgency> MostUrgent(const Queue& queue, absl::Time now) const;
  // When the queue's oldest task arrived; the queue must not be empty.
  static absl::Time OldestEnqueued(const Queue& queue);
  // The batch size queue `key` is ready to give now; 0 = not ready.
  int ReadyBatchSize(const Key& key, const Queue& queue, absl::Time now,
                     Readiness readiness) const;
  // Removes one task from `queue`, keeping counts and the deadline index.
  QueuedTask Remove(const Key& key, Queue& queue, int level, Level::iterator it);

  const BatcherOptions options_;  // preferred_batch_sizes sorted, unique
  const std::set<int> no_delay_branches_;
  std::map<Key, Queue> queues_;   // only non-empty queues
  std::set<DeadlineRef> deadlines_;
  int64_t size_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace mmfuse::batching

#endif  // MMFUSE_BATCHING_QUEUE_SET_H_
