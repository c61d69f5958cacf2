#include "batching/batcher.h"

#include <algorithm>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/internal/raw_logging.h"
#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "batching/queue_set.h"
#include "batching/wait_estimator.h"

namespace mmfuse::batching {
namespace {

absl::Status ValidateOptions(const BatcherOptions& o) {
  if (o.max_batch_size < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch_size=", o.max_batch_size, " must be >= 1"));
  }
  if (o.max_batch_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_batch_tokens=", o.max_batch_tokens, " must be >= 0"));
  }
  if (o.max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_delay=", absl::FormatDuration(o.max_queue_delay),
                     " must be >= 0"));
  }
  for (int size : o.preferred_batch_sizes) {
    if (size < 1 || size > o.max_batch_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "preferred_batch_sizes contains ", size, "; each must be in [1, ",
          "max_batch_size=", o.max_batch_size, "]"));
    }
  }
  if (o.num_workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_workers=", o.num_workers, " must be >= 1"));
  }
  if (o.priority_levels < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("priority_levels=", o.priority_levels, " must be >= 1"));
  }
  if (o.default_priority < 0 || o.default_priority >= o.priority_levels) {
    return absl::InvalidArgumentError(absl::StrCat(
        "default_priority=", o.default_priority, " must be in [0, ",
        "priority_levels=", o.priority_levels, ")"));
  }
  if (o.max_queue_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_size=", o.max_queue_size, " must be >= 1"));
  }
  if (o.max_queue_time <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_queue_time=", absl::FormatDuration(o.max_queue_time),
                     " must be > 0 (InfiniteDuration = none)"));
  }
  if (o.default_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("default_timeout=", absl::FormatDuration(o.default_timeout),
                     " must be > 0 (InfiniteDuration = none)"));
  }
  for (size_t i = 1; i < o.length_bucket_edges.size(); ++i) {
    if (o.length_bucket_edges[i] <= o.length_bucket_edges[i - 1]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "length_bucket_edges must be strictly increasing; edge ", i, "=",
          o.length_bucket_edges[i], " <= edge ", i - 1, "=",
          o.length_bucket_edges[i - 1]));
    }
  }
  for (int branch : o.no_delay_branches) {
    if (branch < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no_delay_branches contains ", branch, "; each must be >= 0"));
    }
  }
  if (o.starvation_age < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("starvation_age=", absl::FormatDuration(o.starvation_age),
                     " must be >= 0"));
  }
  return absl::OkStatus();
}

// Hands `task` back through its `done`. `done` is moved out first: the
// callee owns the task and may destroy it (and with it the std::function)
// while the call is still running.
void Answer(std::unique_ptr<Task> task, absl::Status status) {
  auto done = std::move(task->done);
  done(std::move(status), std::move(task));
}

// Marks a shed refusal (IsShed) apart from a full queue's.
constexpr char kShedPayload[] = "type.mmfuse/batching.Shed";

absl::Status ShedStatus(std::string message) {
  absl::Status status = absl::ResourceExhaustedError(std::move(message));
  status.SetPayload(kShedPayload, absl::Cord("estimated wait"));
  return status;
}

absl::Status ExpiredStatus(const Task& task, absl::Time now) {
  return absl::DeadlineExceededError(absl::StrCat(
      "deadline expired after ",
      absl::FormatDuration(now - task.timings.enqueued),
      " in the batcher queue, before compute"));
}

}  // namespace

bool IsShed(const absl::Status& status) { return status.GetPayload(kShedPayload).has_value(); }

// Workers loop: under mu_, take expired tasks and the most urgent ready
// batch from the QueueSet (or wait on the clock until the next deadline or
// max_queue_delay, or until Submit/Shutdown signals a change); outside mu_,
// answer the expired tasks, drop cancelled ones, run the batch and answer
// it. Nothing calls out (done, is_cancelled, the processor) under mu_.
class Batcher::Impl {
 public:
  Impl(const BatcherOptions& options, BatchProcessor* processor)
      : options_(options),
        processor_(processor),
        clock_(options.clock != nullptr ? options.clock : Clock::Real()),
        queues_(options),
        wait_(options.num_workers) {}

  ~Impl() { Shutdown(); }

  void Start() {
    absl::MutexLock lock(&shutdown_mu_);
    for (int i = 0; i < options_.num_workers; ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
  }

  void Submit(std::unique_ptr<Task> task) {
    ABSL_RAW_CHECK(task != nullptr, "Batcher::Submit: task is null");
    ABSL_RAW_CHECK(task->done != nullptr, "Batcher::Submit: task.done is empty");
    if (task->priority == -1) task->priority = options_.default_priority;
    absl::Status invalid = ValidateTask(*task);
    if (!invalid.ok()) {
      Answer(std::move(task), std::move(invalid));
      return;
    }
    absl::Status rejected;
    {
      absl::MutexLock lock(&mu_);
      const QueueSet::Key key{task->branch, task->input_group, queues_.BucketFor(task->tokens)};
      const absl::Time now = clock_->Now();
      task->timings.enqueued = now;
      const absl::Time deadline = EffectiveDeadline(task->deadline, now);
      if (shutting_down_) {
        rejected = absl::UnavailableError("server is shutting down");
      } else if (deadline <= now) {
        // Answered at once rather than queued only to be swept.
        ++stats_.expired;
        rejected = absl::DeadlineExceededError(
            "task deadline passed before it could be queued");
      } else if (queues_.QueueSize(key) >= options_.max_queue_size) {
        ++stats_.rejected_full;
        rejected = absl::ResourceExhaustedError(absl::StrCat(
            "queue for branch ", key.branch, " bucket ", key.bucket,
            " is full (max_queue_size=", options_.max_queue_size, ")"));
      } else if (absl::Status shed = ShedForWait(deadline, now); !shed.ok()) {
        ++stats_.shed;
        rejected = std::move(shed);
      } else {
        const int priority = task->priority;
        wait_.Queued(task->branch);
        if (queues_.Add(key, priority, deadline, std::move(task), now)) {
          ++wake_epoch_;
        }
        return;
      }
    }
    Answer(std::move(task), std::move(rejected));
  }

  absl::Status CheckShed(absl::Time task_deadline) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    absl::Status shed = ShedForWait(EffectiveDeadline(task_deadline, now), now);
    if (!shed.ok()) ++stats_.shed;
    return shed;
  }

  void Shutdown() {
    absl::MutexLock shutdown_lock(&shutdown_mu_);
    if (joined_) return;
    {
      absl::MutexLock lock(&mu_);
      shutting_down_ = true;
      ++wake_epoch_;
    }
    for (std::thread& worker : workers_) worker.join();
    workers_.clear();
    joined_ = true;
  }

  BatcherStats Stats() const {
    absl::MutexLock lock(&mu_);
    BatcherStats stats = stats_;
    stats.queued = queues_.size();
    stats.queued_by_branch = queues_.SizeByBranch();
    stats.max_queue_size = options_.max_queue_size;
    return stats;
  }

 private:
  // Where a task of a running batch waited: what it keeps if requeued.
  struct Place {
    absl::Time deadline;
    uint64_t seq = 0;
  };

  // What a worker takes out of the queues in one turn.
  struct Work {
    std::vector<QueuedTask> expired;
    std::vector<QueuedTask> batch;
    bool exit = false;
  };

  // A task's deadline once default_timeout applies.
  absl::Time EffectiveDeadline(absl::Time deadline, absl::Time now) const {
    if (options_.default_timeout != absl::InfiniteDuration()) {
      const absl::Time limit = now + options_.default_timeout;
      if (deadline == absl::InfiniteFuture() || !options_.allow_timeout_override) {
        deadline = std::min(deadline, limit);
      }
    }
    return deadline;
  }

  // OK, or the refusal of a task due by `deadline` that the queued work
  // would keep waiting longer than it or max_queue_time.
  absl::Status ShedForWait(absl::Time deadline, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (deadline == absl::InfiniteFuture() &&
        options_.max_queue_time == absl::InfiniteDuration()) {
      return absl::OkStatus();
    }
    const absl::Duration wait = wait_.Estimate();
    auto describe = [&] {
      return absl::StrCat("estimated queue wait ", absl::FormatDuration(wait), " (",
                          wait_.queued(), " tasks queued for ", options_.num_workers,
                          " workers)");
    };
    if (wait > options_.max_queue_time) {
      return ShedStatus(absl::StrCat(describe(), " exceeds max_queue_time=",
                                     absl::FormatDuration(options_.max_queue_time)));
    }
    if (now + wait > deadline) {
      return ShedStatus(absl::StrCat(describe(), " exceeds the ",
                                     absl::FormatDuration(deadline - now),
                                     " left before the request's deadline"));
    }
    return absl::OkStatus();
  }

  absl::Status ValidateTask(const Task& task) const {
    if (task.priority < 0 || task.priority >= options_.priority_levels) {
      return absl::InvalidArgumentError(absl::StrCat(
          "task.priority=", task.priority, " must be in [0, priority_levels=",
          options_.priority_levels, ") or -1 for the default"));
    }
    if (task.tokens < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("task.tokens=", task.tokens, " must be >= 1"));
    }
    if (task.branch < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("task.branch=", task.branch, " must be >= 0"));
    }
    return absl::OkStatus();
  }

  void WorkerLoop() {
    while (true) {
      Work work = NextWork();
      if (work.exit) return;
      RunWork(std::move(work));
    }
  }

  Work NextWork() {
    absl::MutexLock lock(&mu_);
    while (true) {
      const absl::Time now = clock_->Now();
      Work work;
      work.expired = queues_.TakeExpired(now);
      stats_.expired += static_cast<int64_t>(work.expired.size());
      work.batch = queues_.TakeBatch(
          now, shutting_down_ ? Readiness::kDrain : Readiness::kWaitForReady);
      for (const QueuedTask& left : work.expired) wait_.Left(left.task->branch);
      for (const QueuedTask& left : work.batch) wait_.Left(left.task->branch);
      if (!work.batch.empty()) {
        wait_.Started(work.batch.front().task->branch, static_cast<int>(work.batch.size()));
      }
      stats_.running += static_cast<int64_t>(work.batch.size());
      if (!work.expired.empty() || !work.batch.empty()) return work;
      if (shutting_down_ && queues_.empty()) {
        work.exit = true;
        return work;
      }
      const uint64_t seen_epoch = wake_epoch_;
      auto changed = [this, seen_epoch]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return wake_epoch_ != seen_epoch;
      };
      clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed),
                                queues_.NextWakeTime());
    }
  }

  void RunWork(Work work) {
    for (QueuedTask& expired : work.expired) {
      const absl::Status status = ExpiredStatus(*expired.task, clock_->Now());
      Answer(std::move(expired.task), status);
    }
    if (work.batch.empty()) return;
    const int branch = work.batch.front().task->branch;  // the batch's, one for all

    // Last look before compute: time moved since the batch was taken, and
    // cancellation is only polled here (is_cancelled is a callback, never
    // run under mu_). A dropped task leaves the batch one smaller.
    std::vector<std::unique_ptr<Task>> batch;
    std::vector<Place> places;  // batch[i]'s, for a task the processor requeues
    std::vector<std::pair<std::unique_ptr<Task>, absl::Status>> dropped;
    int64_t expired = 0;
    int64_t cancelled = 0;
    const absl::Time now = clock_->Now();
    for (QueuedTask& queued : work.batch) {
      Task& task = *queued.task;
      if (queued.deadline <= now) {
        ++expired;
        dropped.emplace_back(std::move(queued.task), ExpiredStatus(task, now));
      } else if (task.is_cancelled && task.is_cancelled()) {
        ++cancelled;
        dropped.emplace_back(
            std::move(queued.task),
            absl::CancelledError("task cancelled before its batch started"));
      } else {
        places.push_back(Place{queued.deadline, queued.seq});
        batch.push_back(std::move(queued.task));
      }
    }
    if (!dropped.empty()) {
      {
        absl::MutexLock lock(&mu_);
        stats_.running -= expired + cancelled;
        stats_.expired += expired;
        stats_.cancelled += cancelled;
        wait_.Finished(branch, static_cast<int>(expired + cancelled));
      }
      for (auto& [task, status] : dropped) {
        Answer(std::move(task), std::move(status));
      }
    }
    if (batch.empty()) return;

    std::vector<Task*> tasks;
    tasks.reserve(batch.size());
    const absl::Time started = clock_->Now();
    for (const std::unique_ptr<Task>& task : batch) {
      task->timings.started = started;
      task->timings.batch_size = static_cast<int>(batch.size());
      tasks.push_back(task.get());
    }
    std::vector<absl::Status> statuses = Process(tasks);
    const absl::Time finished = clock_->Now();
    for (const std::unique_ptr<Task>& task : batch) {
      task->timings.finished = finished;
    }
    {
      absl::MutexLock lock(&mu_);
      stats_.running -= static_cast<int64_t>(batch.size());
      ++stats_.batches;
      for (size_t i = 0; i < batch.size(); ++i) {
        if (statuses[i].ok() && batch[i]->requeue) {
          statuses[i] = Requeue(batch[i], places[i], finished);
        }
        if (batch[i] != nullptr) ++stats_.completed;
      }
    }
    const int size = static_cast<int>(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i] != nullptr) Answer(std::move(batch[i]), std::move(statuses[i]));
    }
    // The worker's whole turn, answers included (the completions build the
    // responses and hand them to gRPC on this thread): that, not the model's
    // time alone, is the rate at which queued work drains.
    const absl::Duration turn = clock_->Now() - started;
    absl::MutexLock lock(&mu_);
    wait_.BatchRan(branch, size, turn);
    wait_.Finished(branch, size);
  }

  // Queues `task`, which its processor sent on to a later stage, again at
  // `place` (taking it from `task`; a full queue or shutdown do not refuse
  // it: it was accepted). An error, leaving `task`, if the processor left
  // it invalid.
  absl::Status Requeue(std::unique_ptr<Task>& task, const Place& place, absl::Time finished)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    task->requeue = false;
    if (absl::Status invalid = ValidateTask(*task); !invalid.ok()) {
      return absl::InternalError(
          absl::StrCat("BatchProcessor requeued an invalid task: ", invalid.message()));
    }
    task->timings.earlier_stages_compute += finished - task->timings.started;
    const QueueSet::Key key{task->branch, task->input_group, queues_.BucketFor(task->tokens)};
    const int priority = task->priority;
    wait_.Queued(task->branch);
    ++stats_.requeued;
    if (queues_.Add(key, priority, place.deadline, std::move(task), clock_->Now(), place.seq)) {
      ++wake_epoch_;
    }
    return absl::OkStatus();
  }

  // Runs the processor; always returns one status per task. A wrong count or
  // an exception fails the whole batch with INTERNAL and the worker goes on.
  std::vector<absl::Status> Process(const std::vector<Task*>& tasks) {
    std::vector<absl::Status> statuses;
    try {
      statuses = processor_->ProcessBatch(tasks);
    } catch (const std::exception& e) {
      return std::vector<absl::Status>(
          tasks.size(),
          absl::InternalError(absl::StrCat("BatchProcessor threw: ", e.what())));
    } catch (...) {
      return std::vector<absl::Status>(
          tasks.size(),
          absl::InternalError("BatchProcessor threw a non-std exception"));
    }
    if (statuses.size() != tasks.size()) {
      return std::vector<absl::Status>(
          tasks.size(),
          absl::InternalError(absl::StrFormat(
              "BatchProcessor returned %d statuses for a batch of %d tasks",
              statuses.size(), tasks.size())));
    }
    return statuses;
  }

  const BatcherOptions options_;
  BatchProcessor* const processor_;
  Clock* const clock_;

  mutable absl::Mutex mu_;
  QueueSet queues_ ABSL_GUARDED_BY(mu_);
  BatcherStats stats_ ABSL_GUARDED_BY(mu_);  // `queued*`, max_queue_size: by Stats()
  WaitEstimator wait_ ABSL_GUARDED_BY(mu_);
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  // Bumped when an idle worker should look again before its wake time: a
  // queue became ready, the next wake time moved earlier, or shutdown.
  uint64_t wake_epoch_ ABSL_GUARDED_BY(mu_) = 0;

  // Serialises Shutdown (it blocks on joins) and guards the thread handles.
  absl::Mutex shutdown_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(shutdown_mu_);
  bool joined_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

absl::StatusOr<std::unique_ptr<Batcher>> Batcher::Create(
    const BatcherOptions& options, BatchProcessor* processor) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  if (processor == nullptr) {
    return absl::InvalidArgumentError("processor must not be null");
  }
  auto impl = std::make_unique<Impl>(options, processor);
  impl->Start();
  return std::unique_ptr<Batcher>(new Batcher(std::move(impl)));
}

Batcher::Batcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Batcher::~Batcher() { impl_->Shutdown(); }

void Batcher::Submit(std::unique_ptr<Task> task) {
  impl_->Submit(std::move(task));
}

absl::Status Batcher::CheckShed(absl::Time deadline) { return impl_->CheckShed(deadline); }

void Batcher::Shutdown() { impl_->Shutdown(); }

BatcherStats Batcher::Stats() const { return impl_->Stats(); }

}  // namespace mmfuse::batching
