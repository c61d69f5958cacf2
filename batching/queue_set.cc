#include "batching/queue_set.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/base/internal/raw_logging.h"

namespace mmfuse::batching {
namespace {

BatcherOptions Normalized(BatcherOptions options) {
  std::vector<int>& preferred = options.preferred_batch_sizes;
  std::sort(preferred.begin(), preferred.end());
  preferred.erase(std::unique(preferred.begin(), preferred.end()),
                  preferred.end());
  return options;
}

}  // namespace

QueueSet::QueueSet(const BatcherOptions& options)
    : options_(Normalized(options)),
      no_delay_branches_(options.no_delay_branches.begin(), options.no_delay_branches.end()) {}

int LengthBucket(const std::vector<int64_t>& edges, int64_t tokens) {
  return static_cast<int>(std::lower_bound(edges.begin(), edges.end(), tokens) - edges.begin());
}

int QueueSet::BucketFor(int64_t tokens) const {
  return LengthBucket(options_.length_bucket_edges, tokens);
}

int64_t QueueSet::QueueSize(const Key& key) const {
  auto it = queues_.find(key);
  return it == queues_.end() ? 0 : it->second.size;
}

std::map<int, int64_t> QueueSet::SizeByBranch() const {
  std::map<int, int64_t> sizes;
  for (const auto& [key, queue] : queues_) sizes[key.branch] += queue.size;
  return sizes;
}

bool QueueSet::Add(const Key& key, int priority, absl::Time deadline,
                   std::unique_ptr<Task> task, absl::Time now,
                   std::optional<uint64_t> seq_from_earlier_stage) {
  ABSL_RAW_CHECK(priority >= 0 && priority < options_.priority_levels,
                 "priority out of range");
  const absl::Time earliest_deadline = deadlines_.empty()
                                           ? absl::InfiniteFuture()
                                           : deadlines_.begin()->deadline;
  auto [it, new_queue] = queues_.try_emplace(key);
  Queue& queue = it->second;
  if (new_queue) queue.levels.resize(options_.priority_levels);

  const uint64_t seq =
      seq_from_earlier_stage.has_value() ? *seq_from_earlier_stage : next_seq_++;
  const int64_t tokens = task->tokens;
  queue.levels[priority].emplace(seq, QueuedTask{std::move(task), deadline});
  ++queue.size;
  queue.tokens += tokens;
  ++size_;
  if (deadline != absl::InfiniteFuture()) {
    deadlines_.insert(DeadlineRef{deadline, seq, key, priority});
  }
  // A new queue starts a max_queue_delay timer that may beat the current
  // wake time; an existing queue's timer is its older head's, unchanged.
  return new_queue || deadline < earliest_deadline ||
         ReadyBatchSize(key, queue, now, Readiness::kWaitForReady) > 0;
}

std::vector<QueuedTask> QueueSet::TakeExpired(absl::Time now) {
  std::vector<QueuedTask> expired;
  while (!deadlines_.empty() && deadlines_.begin()->deadline <= now) {
    const DeadlineRef ref = *deadlines_.begin();
    auto queue_it = queues_.find(ref.key);
    ABSL_RAW_CHECK(queue_it != queues_.end(), "deadline index out of sync");
    Level& level = queue_it->second.levels[ref.level];
    auto task_it = level.find(ref.seq);
    ABSL_RAW_CHECK(task_it != level.end(), "deadline index out of sync");
    expired.push_back(Remove(ref.key, queue_it->second, ref.level, task_it));
    if (queue_it->second.size == 0) queues_.erase(queue_it);
  }
  return expired;
}

std::vector<QueuedTask> QueueSet::TakeBatch(absl::Time now,
                                            Readiness readiness) {
  auto best = queues_.end();
  Urgency best_urgency;
  int batch_size = 0;
  for (auto it = queues_.begin(); it != queues_.end(); ++it) {
    const int ready_size = ReadyBatchSize(it->first, it->second, now, readiness);
    if (ready_size == 0) continue;
    const Urgency urgency = MostUrgent(it->second, now).second;
    if (best == queues_.end() || urgency < best_urgency) {
      best = it;
      best_urgency = urgency;
      batch_size = ready_size;
    }
  }
  std::vector<QueuedTask> batch;
  if (best == queues_.end()) return batch;

  Queue& queue = best->second;
  int64_t batch_tokens = 0;
  while (static_cast<int>(batch.size()) < batch_size && queue.size > 0) {
    const int level = MostUrgent(queue, now).first;
    auto task_it = queue.levels[level].begin();
    const int64_t tokens = task_it->second.task->tokens;
    // Stop rather than skip ahead to a smaller task: urgency order wins.
    if (options_.max_batch_tokens > 0 && !batch.empty() &&
        batch_tokens + tokens > options_.max_batch_tokens) {
      break;
    }
    batch_tokens += tokens;
    batch.push_back(Remove(best->first, queue, level, task_it));
  }
  if (queue.size == 0) queues_.erase(best);
  return batch;
}

absl::Time QueueSet::NextWakeTime() const {
  absl::Time wake = deadlines_.empty() ? absl::InfiniteFuture()
                                       : deadlines_.begin()->deadline;
  for (const auto& [key, queue] : queues_) {
    // A no-delay queue is ready whenever it holds a task: no timer.
    if (no_delay_branches_.count(key.branch) > 0) continue;
    wake = std::min(wake, OldestEnqueued(queue) + options_.max_queue_delay);
  }
  return wake;
}

int QueueSet::EffectivePriority(int level, absl::Time enqueued,
                                absl::Time now) const {
  return now - enqueued >= options_.starvation_age ? 0 : level;
}

std::pair<int, QueueSet::Urgency> QueueSet::MostUrgent(const Queue& queue,
                                                       absl::Time now) const {
  int best_level = -1;
  Urgency best;
  for (int level = 0; level < static_cast<int>(queue.levels.size()); ++level) {
    if (queue.levels[level].empty()) continue;
    const auto& [seq, head] = *queue.levels[level].begin();
    const Urgency urgency{
        EffectivePriority(level, head.task->timings.enqueued, now), seq};
    if (best_level < 0 || urgency < best) {
      best_level = level;
      best = urgency;
    }
  }
  ABSL_RAW_CHECK(best_level >= 0, "MostUrgent on an empty queue");
  return {best_level, best};
}

absl::Time QueueSet::OldestEnqueued(const Queue& queue) {
  absl::Time oldest = absl::InfiniteFuture();
  for (const Level& level : queue.levels) {
    if (!level.empty()) {
      oldest = std::min(oldest, level.begin()->second.task->timings.enqueued);
    }
  }
  return oldest;
}

int QueueSet::ReadyBatchSize(const Key& key, const Queue& queue, absl::Time now,
                             Readiness readiness) const {
  if (queue.size == 0) return 0;
  const int max_size = options_.max_batch_size;
  if (readiness == Readiness::kDrain || queue.size >= max_size ||
      no_delay_branches_.count(key.branch) > 0 ||
      (options_.max_batch_tokens > 0 &&
       queue.tokens >= options_.max_batch_tokens) ||
      now - OldestEnqueued(queue) >= options_.max_queue_delay) {
    return max_size;
  }
  const std::vector<int>& preferred = options_.preferred_batch_sizes;
  for (auto it = preferred.rbegin(); it != preferred.rend(); ++it) {
    if (*it <= queue.size) return *it;
  }
  return 0;
}

QueuedTask QueueSet::Remove(const Key& key, Queue& queue, int level,
                            Level::iterator it) {
  QueuedTask removed = std::move(it->second);
  removed.seq = it->first;
  if (removed.deadline != absl::InfiniteFuture()) {
    deadlines_.erase(DeadlineRef{removed.deadline, it->first, key, level});
  }
  --queue.size;
  queue.tokens -= removed.task->tokens;
  --size_;
  queue.levels[level].erase(it);
  return removed;
}

}  // namespace mmfuse::batching
