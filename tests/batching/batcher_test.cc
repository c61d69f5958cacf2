#include "batching/batcher.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_processor.h"

namespace mmfuse::batching {
namespace {

using ::mmfuse::testing::FakeClock;
using ::mmfuse::testing::FakePayload;
using ::mmfuse::testing::FakeProcessor;
using ::mmfuse::testing::FakeResultFor;
using ::mmfuse::testing::RecordedBatch;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Branch used by OccupyWorker; no test submits real work to it.
constexpr int kBlockerBranch = 99;
// Id of the blocker task, far from the ids tests use.
constexpr int64_t kBlockerId = 1'000'000;

// What a task's `done` delivered.
struct Outcome {
  absl::Status status;
  std::unique_ptr<Task> task;
  int calls = 0;
};

// Records every task's outcome by FakePayload id.
class Outcomes {
 public:
  std::function<void(absl::Status, std::unique_ptr<Task>)> Callback(int64_t id) {
    return [this, id](absl::Status status, std::unique_ptr<Task> task) {
      absl::MutexLock lock(&mu_);
      Outcome& outcome = outcomes_[id];
      outcome.status = std::move(status);
      outcome.task = std::move(task);
      ++outcome.calls;
      ++total_calls_;
    };
  }

  // Blocks until the task with `id` was answered; returns its status.
  absl::Status Await(int64_t id) {
    absl::MutexLock lock(&mu_);
    auto answered = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return outcomes_.count(id) > 0;
    };
    mu_.Await(absl::Condition(&answered));
    return outcomes_[id].status;
  }

  // Blocks until `n` answers arrived in all.
  void AwaitTotal(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return total_calls_ >= n;
    };
    mu_.Await(absl::Condition(&enough));
  }

  bool Answered(int64_t id) {
    absl::MutexLock lock(&mu_);
    return outcomes_.count(id) > 0;
  }

  int Calls(int64_t id) {
    absl::MutexLock lock(&mu_);
    auto it = outcomes_.find(id);
    return it == outcomes_.end() ? 0 : it->second.calls;
  }

  // The payload's result; the task must have been answered.
  int64_t Result(int64_t id) {
    absl::MutexLock lock(&mu_);
    return static_cast<FakePayload*>(outcomes_.at(id).task->payload.get())
        ->result;
  }

  TaskTimings Timings(int64_t id) {
    absl::MutexLock lock(&mu_);
    return outcomes_.at(id).task->timings;
  }

 private:
  absl::Mutex mu_;
  std::map<int64_t, Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
  int total_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

// Test-side description of a task: Spec(id).Branch(1).Tokens(4).
struct Spec {
  explicit Spec(int64_t id) : id(id) {}
  Spec& Branch(int value) { branch = value; return *this; }
  Spec& InputGroup(uint64_t value) { input_group = value; return *this; }
  Spec& Tokens(int64_t value) { tokens = value; return *this; }
  Spec& Priority(int value) { priority = value; return *this; }
  Spec& Deadline(absl::Time value) { deadline = value; return *this; }
  Spec& IsCancelled(std::function<bool()> value) {
    is_cancelled = std::move(value);
    return *this;
  }

  int64_t id;
  int branch = 0;
  uint64_t input_group = 0;
  int64_t tokens = 1;
  int priority = -1;
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> is_cancelled;
};

class BatcherTest : public ::testing::Test {
 protected:
  // One worker, batches of up to 4, 2 ms max delay, on the fake clock.
  BatcherOptions BaseOptions() {
    BatcherOptions options;
    options.max_batch_size = 4;
    options.max_queue_delay = absl::Milliseconds(2);
    options.num_workers = 1;
    options.clock = &clock_;
    return options;
  }

  void Start(const BatcherOptions& options) {
    options_ = options;
    absl::StatusOr<std::unique_ptr<Batcher>> batcher =
        Batcher::Create(options, &processor_);
    ASSERT_TRUE(batcher.ok()) << batcher.status();
    batcher_ = *std::move(batcher);
  }

  void TearDown() override {
    processor_.ReleaseHeld();
    batcher_.reset();
  }

  std::unique_ptr<Task> MakeTask(const Spec& spec) {
    auto task = std::make_unique<Task>();
    task->branch = spec.branch;
    task->input_group = spec.input_group;
    task->tokens = spec.tokens;
    task->priority = spec.priority;
    task->deadline = spec.deadline;
    task->is_cancelled = spec.is_cancelled;
    task->payload = std::make_unique<FakePayload>(spec.id);
    task->done = outcomes_.Callback(spec.id);
    return task;
  }

  void Submit(const Spec& spec) { batcher_->Submit(MakeTask(spec)); }

  // Submits tasks with ids [first, first + n) to `branch`.
  void SubmitRange(int64_t first, int n, int branch = 0, int priority = -1) {
    for (int64_t id = first; id < first + n; ++id) {
      Submit(Spec(id).Branch(branch).Priority(priority));
    }
  }

  // Parks the single worker inside the processor on a one-task batch of the
  // blocker branch (made ready by max_queue_delay, before the test's own
  // tasks arrive), so that later submissions only queue. ReleaseWorker()
  // lets it go.
  void OccupyWorker() {
    processor_.HoldBatches();
    Submit(Spec(kBlockerId).Branch(kBlockerBranch));
    clock_.WaitForWaiters(1);
    clock_.Advance(options_.max_queue_delay);
    processor_.WaitForHeld(1);
  }

  // Releases the worker and consumes the blocker batch.
  void ReleaseWorker() {
    processor_.ReleaseHeld();
    RecordedBatch blocker = processor_.NextBatch();
    ASSERT_EQ(blocker.branches.front(), kBlockerBranch);
  }

  FakeClock clock_;
  FakeProcessor processor_;
  Outcomes outcomes_;
  BatcherOptions options_;
  std::unique_ptr<Batcher> batcher_;  // last: destroyed first
};

std::vector<int64_t> Ids(const RecordedBatch& batch) { return batch.ids; }

TEST_F(BatcherTest, RunsFullBatchWithoutWaitingForDelay) {
  Start(BaseOptions());
  SubmitRange(0, 4);
  EXPECT_THAT(processor_.NextBatchSizes(), ElementsAre(4));
  for (int64_t id = 0; id < 4; ++id) {
    ASSERT_TRUE(outcomes_.Await(id).ok()) << outcomes_.Await(id);
    EXPECT_EQ(outcomes_.Result(id), FakeResultFor(id));
  }
}

TEST_F(BatcherTest, FlushesPartialBatchAfterMaxDelay) {
  Start(BaseOptions());
  SubmitRange(0, 3);
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(1));
  clock_.WaitForWaiters(1);
  // Time stands still below max_queue_delay: no batch can have formed.
  EXPECT_EQ(processor_.NumBatches(), 0);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_THAT(processor_.NextBatchSizes(), ElementsAre(3));
  for (int64_t id = 0; id < 3; ++id) EXPECT_TRUE(outcomes_.Await(id).ok());
}

TEST_F(BatcherTest, TakesLargestPreferredBatchSize) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 8;
  options.preferred_batch_sizes = {4, 2};
  Start(options);
  OccupyWorker();
  SubmitRange(0, 5);
  ReleaseWorker();
  EXPECT_THAT(Ids(processor_.NextBatch()), ElementsAre(0, 1, 2, 3));
  // One left, below every preferred size: it waits for max_queue_delay.
  clock_.WaitForWaiters(1);
  EXPECT_EQ(processor_.NumBatches(), 2);
  clock_.Advance(absl::Milliseconds(2));
  EXPECT_THAT(Ids(processor_.NextBatch()), ElementsAre(4));
}

TEST_F(BatcherTest, BoundsBatchByTokens) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 8;
  options.max_batch_tokens = 10;
  Start(options);
  OccupyWorker();
  for (int64_t id = 0; id < 3; ++id) {
    Submit(Spec(id).Branch(0).Tokens(4));
  }
  Submit(Spec(10).Branch(1).Tokens(25));  // alone above the bound
  ReleaseWorker();
  RecordedBatch first = processor_.NextBatch();
  EXPECT_THAT(first.ids, ElementsAre(0, 1));  // 8 tokens; a third makes 12
  RecordedBatch oversized = processor_.NextBatch();
  EXPECT_THAT(oversized.ids, ElementsAre(10));
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(2));
  EXPECT_THAT(Ids(processor_.NextBatch()), ElementsAre(2));
  for (int64_t id : {0, 1, 2, 10}) EXPECT_TRUE(outcomes_.Await(id).ok());
}

TEST_F(BatcherTest, RunsMoreUrgentPriorityFirst) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  options.priority_levels = 3;
  Start(options);
  OccupyWorker();
  SubmitRange(0, 2, /*branch=*/1, /*priority=*/2);
  SubmitRange(10, 2, /*branch=*/2, /*priority=*/0);
  SubmitRange(20, 2, /*branch=*/3, /*priority=*/1);
  ReleaseWorker();
  std::vector<RecordedBatch> batches = processor_.NextBatches(3);
  EXPECT_THAT(batches[0].ids, ElementsAre(10, 11));
  EXPECT_THAT(batches[1].ids, ElementsAre(20, 21));
  EXPECT_THAT(batches[2].ids, ElementsAre(0, 1));
}

TEST_F(BatcherTest, BreaksPriorityTiesByOldestTask) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  Start(options);
  OccupyWorker();
  SubmitRange(0, 1, /*branch=*/1);
  SubmitRange(10, 2, /*branch=*/2);
  SubmitRange(1, 1, /*branch=*/1);
  ReleaseWorker();
  std::vector<RecordedBatch> batches = processor_.NextBatches(2);
  EXPECT_THAT(batches[0].ids, ElementsAre(0, 1));
  EXPECT_THAT(batches[1].ids, ElementsAre(10, 11));
}

TEST_F(BatcherTest, TakesMostUrgentTasksOfAQueueFirst) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  options.priority_levels = 3;
  Start(options);
  OccupyWorker();
  Submit(Spec(0).Priority(2));
  Submit(Spec(1).Priority(2));
  Submit(Spec(2).Priority(0));
  Submit(Spec(3).Priority(1));
  ReleaseWorker();
  std::vector<RecordedBatch> batches = processor_.NextBatches(2);
  EXPECT_THAT(batches[0].ids, ElementsAre(2, 3));
  EXPECT_THAT(batches[0].priorities, ElementsAre(0, 1));
  EXPECT_THAT(batches[1].ids, ElementsAre(0, 1));
}

TEST_F(BatcherTest, AgedLowPriorityTaskIsNotStarved) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  options.priority_levels = 2;
  options.starvation_age = absl::Milliseconds(10);
  Start(options);
  OccupyWorker();
  SubmitRange(0, 2, /*branch=*/1, /*priority=*/1);
  clock_.Advance(absl::Milliseconds(10));  // branch 1 now counts as top
  SubmitRange(10, 2, /*branch=*/2, /*priority=*/0);
  SubmitRange(20, 2, /*branch=*/3, /*priority=*/0);
  ReleaseWorker();
  std::vector<RecordedBatch> batches = processor_.NextBatches(3);
  EXPECT_THAT(batches[0].ids, ElementsAre(0, 1));
  EXPECT_THAT(batches[1].ids, ElementsAre(10, 11));
  EXPECT_THAT(batches[2].ids, ElementsAre(20, 21));
}

TEST_F(BatcherTest, YoungLowPriorityTaskWaitsBehindUrgentOnes) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  options.priority_levels = 2;
  options.starvation_age = absl::Milliseconds(10);
  Start(options);
  OccupyWorker();
  SubmitRange(0, 2, /*branch=*/1, /*priority=*/1);
  clock_.Advance(absl::Milliseconds(9));  // not aged yet
  SubmitRange(10, 2, /*branch=*/2, /*priority=*/0);
  ReleaseWorker();
  std::vector<RecordedBatch> batches = processor_.NextBatches(2);
  EXPECT_THAT(batches[0].ids, ElementsAre(10, 11));
  EXPECT_THAT(batches[1].ids, ElementsAre(0, 1));
}

TEST_F(BatcherTest, KeepsBatchesHomogeneousInBranchAndBucket) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 8;
  options.max_queue_delay = absl::Hours(1);
  options.length_bucket_edges = {8, 16};
  options.num_workers = 2;
  Start(options);
  int64_t id = 0;
  for (int branch : {0, 1}) {
    for (int64_t tokens : {1, 8, 9, 16, 17, 100}) {
      for (int copy = 0; copy < 2; ++copy) {
        Submit(Spec(id++).Branch(branch).Tokens(tokens));
      }
    }
  }
  batcher_->Shutdown();  // drains every queue, one batch each
  auto bucket = [](int64_t tokens) { return tokens <= 8 ? 0 : tokens <= 16 ? 1 : 2; };
  std::vector<RecordedBatch> batches = processor_.Batches();
  ASSERT_EQ(batches.size(), 6u);
  for (const RecordedBatch& batch : batches) {
    ASSERT_EQ(batch.size(), 4);
    for (int i = 1; i < batch.size(); ++i) {
      EXPECT_EQ(batch.branches[i], batch.branches[0]);
      EXPECT_EQ(bucket(batch.tokens[i]), bucket(batch.tokens[0]));
    }
  }
  for (int64_t i = 0; i < id; ++i) EXPECT_TRUE(outcomes_.Await(i).ok());
}

// Samples that carry different inputs (here: group 1 = audio only, 3 =
// audio and video) never share a batch, even in one branch and bucket, so
// no batch pads an input for the samples that lack it.
TEST_F(BatcherTest, KeepsBatchesHomogeneousInTheInputsPresent) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 8;
  options.max_queue_delay = absl::Hours(1);
  Start(options);
  for (int64_t id = 0; id < 12; ++id) Submit(Spec(id).InputGroup(id % 3 == 0 ? 1 : 3));
  batcher_->Shutdown();  // drains every queue
  std::vector<RecordedBatch> batches = processor_.Batches();
  ASSERT_EQ(batches.size(), 2u);
  std::vector<int> sizes;
  for (const RecordedBatch& batch : batches) {
    sizes.push_back(batch.size());
    for (int i = 1; i < batch.size(); ++i) EXPECT_EQ(batch.input_groups[i], batch.input_groups[0]);
  }
  EXPECT_THAT(sizes, ::testing::UnorderedElementsAre(4, 8));
  for (int64_t i = 0; i < 12; ++i) EXPECT_TRUE(outcomes_.Await(i).ok());
}

TEST_F(BatcherTest, RejectsAtOnceWhenQueueIsFull) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 8;
  options.max_queue_size = 2;
  options.length_bucket_edges = {8};
  Start(options);
  Submit(Spec(0).Branch(1).Tokens(20));
  Submit(Spec(1).Branch(1).Tokens(30));
  Submit(Spec(2).Branch(1).Tokens(40));
  // Answered on this thread, before Submit returned.
  ASSERT_TRUE(outcomes_.Answered(2));
  absl::Status status = outcomes_.Await(2);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("branch 1 bucket 1"), HasSubstr("max_queue_size=2")));
  // Other queues still take tasks.
  Submit(Spec(3).Branch(1).Tokens(1));
  Submit(Spec(4).Branch(0).Tokens(20));
  EXPECT_FALSE(outcomes_.Answered(3));
  EXPECT_FALSE(outcomes_.Answered(4));
  BatcherStats stats = batcher_->Stats();
  EXPECT_EQ(stats.rejected_full, 1);
  EXPECT_EQ(stats.queued, 4);
  EXPECT_EQ(processor_.TimesProcessed(2), 0);
}

TEST_F(BatcherTest, ShedsTasksWhoseEstimatedWaitExceedsMaxQueueTime) {
  BatcherOptions options = BaseOptions();
  options.max_queue_time = absl::Milliseconds(10);
  Start(options);
  // 2 ms of compute per task, measured.
  processor_.HoldBatches();
  SubmitRange(0, 4);
  processor_.WaitForHeld(1);
  clock_.Advance(absl::Milliseconds(8));
  processor_.ReleaseHeld();
  processor_.NextBatch();
  outcomes_.AwaitTotal(4);

  OccupyWorker();
  // The worker's batch in progress counts half (1 ms: its branch is not
  // measured, so at the measured mean), and each queued task adds 2 ms: the
  // tasks joining at 1, 3, ... 9 ms are accepted, the one at 11 ms is not.
  SubmitRange(10, 6);
  for (int64_t id = 10; id < 15; ++id) EXPECT_FALSE(outcomes_.Answered(id)) << id;
  ASSERT_TRUE(outcomes_.Answered(15));
  const absl::Status shed = outcomes_.Await(15);
  EXPECT_EQ(shed.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsShed(shed));
  EXPECT_THAT(shed.message(), AllOf(HasSubstr("estimated queue wait 11ms"),
                                    HasSubstr("5 tasks queued for 1 workers"),
                                    HasSubstr("exceeds max_queue_time=10ms")));
  EXPECT_EQ(batcher_->Stats().shed, 1);
  EXPECT_EQ(processor_.TimesProcessed(15), 0);
  // Asked ahead, the same answer (and count); a task with room is not shed.
  const absl::Status ahead = batcher_->CheckShed(absl::InfiniteFuture());
  EXPECT_TRUE(IsShed(ahead));
  EXPECT_THAT(ahead.message(), HasSubstr("estimated queue wait 11ms"));
  EXPECT_EQ(batcher_->Stats().shed, 2);
  // Accepted ones are all computed (Shutdown runs what is queued).
  ReleaseWorker();
  batcher_->Shutdown();
  for (int64_t id = 10; id < 15; ++id) EXPECT_TRUE(outcomes_.Await(id).ok()) << id;
}

TEST_F(BatcherTest, ShedsATaskWhoseDeadlineComesBeforeItsEstimatedTurn) {
  BatcherOptions options = BaseOptions();  // no max_queue_time
  Start(options);
  processor_.HoldBatches();
  SubmitRange(0, 4);
  processor_.WaitForHeld(1);
  clock_.Advance(absl::Milliseconds(8));  // 2 ms per task
  processor_.ReleaseHeld();
  processor_.NextBatch();
  outcomes_.AwaitTotal(4);

  OccupyWorker();
  SubmitRange(10, 3);  // 6 ms of work queued, 1 ms left of the running batch
  // Tasks without a deadline are never shed (the queue bound still holds).
  Submit(Spec(20));
  EXPECT_FALSE(outcomes_.Answered(20));
  // 9 ms ahead now: a task due in 5 ms is refused at once, with the
  // estimate and its deadline; one due in 20 ms is accepted.
  Submit(Spec(21).Deadline(clock_.Now() + absl::Milliseconds(5)));
  ASSERT_TRUE(outcomes_.Answered(21));
  const absl::Status shed = outcomes_.Await(21);
  EXPECT_EQ(shed.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(IsShed(shed));
  EXPECT_THAT(shed.message(), AllOf(HasSubstr("estimated queue wait 9ms"),
                                    HasSubstr("exceeds the 5ms left before the request's deadline")));
  EXPECT_TRUE(batcher_->CheckShed(clock_.Now() + absl::Milliseconds(20)).ok());
  Submit(Spec(22).Deadline(clock_.Now() + absl::Milliseconds(20)));
  EXPECT_FALSE(outcomes_.Answered(22));
  ReleaseWorker();
  batcher_->Shutdown();
  EXPECT_TRUE(outcomes_.Await(22).ok());
  EXPECT_EQ(batcher_->Stats().shed, 1);
}

TEST_F(BatcherTest, NothingIsShedBeforeAnyBatchWasMeasured) {
  BatcherOptions options = BaseOptions();
  options.max_queue_time = absl::Microseconds(1);
  options.max_queue_size = 3;
  Start(options);
  OccupyWorker();  // its batch has not finished: nothing measured yet
  SubmitRange(0, 4);
  for (int64_t id = 0; id < 3; ++id) EXPECT_FALSE(outcomes_.Answered(id)) << id;
  // The fourth meets a full queue: refused, but not shed.
  const absl::Status full = outcomes_.Await(3);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsShed(full));
  EXPECT_EQ(batcher_->Stats().shed, 0);
  ReleaseWorker();
}

TEST_F(BatcherTest, AnswersExpiredTaskAtItsDeadlineWithoutComputing) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Milliseconds(5);
  Start(options);
  Submit(Spec(0).Deadline(clock_.Now() + absl::Milliseconds(1)));
  Submit(Spec(1));
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(1));
  absl::Status status = outcomes_.Await(0);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  // Answered at its deadline, not when its queue's batch formed.
  EXPECT_EQ(processor_.NumBatches(), 0);
  EXPECT_FALSE(outcomes_.Answered(1));
  clock_.Advance(absl::Milliseconds(4));
  EXPECT_THAT(Ids(processor_.NextBatch()), ElementsAre(1));
  EXPECT_TRUE(outcomes_.Await(1).ok());
  EXPECT_EQ(processor_.TimesProcessed(0), 0);
  EXPECT_EQ(batcher_->Stats().expired, 1);
}

TEST_F(BatcherTest, AppliesDefaultTimeoutToTasksWithoutDeadline) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Milliseconds(10);
  options.default_timeout = absl::Milliseconds(3);
  Start(options);
  Submit(Spec(0));
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(3));
  EXPECT_EQ(outcomes_.Await(0).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(processor_.TimesProcessed(0), 0);
}

TEST_F(BatcherTest, DefaultTimeoutCapsLongerDeadlinesUnlessOverrideIsAllowed) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Milliseconds(10);
  options.default_timeout = absl::Milliseconds(3);
  options.allow_timeout_override = false;
  Start(options);
  Submit(Spec(0).Deadline(clock_.Now() + absl::Seconds(60)));
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(3));
  EXPECT_EQ(outcomes_.Await(0).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(processor_.TimesProcessed(0), 0);
}

TEST_F(BatcherTest, TaskDeadlineOverridesDefaultTimeoutWhenAllowed) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Milliseconds(10);
  options.default_timeout = absl::Milliseconds(3);
  Start(options);
  Submit(Spec(0).Deadline(clock_.Now() + absl::Seconds(60)));
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(10));  // Past the default timeout: max delay runs it.
  EXPECT_TRUE(outcomes_.Await(0).ok());
  EXPECT_EQ(processor_.TimesProcessed(0), 1);
}

TEST_F(BatcherTest, AnswersTaskExpiredOnArrivalAtOnce) {
  Start(BaseOptions());
  Submit(Spec(0).Deadline(clock_.Now()));
  ASSERT_TRUE(outcomes_.Answered(0));
  EXPECT_EQ(outcomes_.Await(0).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(batcher_->Stats().queued, 0);
}

TEST_F(BatcherTest, DropsTaskCancelledWhileQueued) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  Start(options);
  OccupyWorker();
  std::atomic<bool> cancelled{false};
  Submit(Spec(0).IsCancelled([&cancelled] { return cancelled.load(); }));
  Submit(Spec(1).IsCancelled([] { return false; }));
  cancelled = true;
  ReleaseWorker();
  EXPECT_EQ(outcomes_.Await(0).code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(Ids(processor_.NextBatch()), ElementsAre(1));
  EXPECT_TRUE(outcomes_.Await(1).ok());
  EXPECT_EQ(processor_.TimesProcessed(0), 0);
  EXPECT_EQ(batcher_->Stats().cancelled, 1);
}

TEST_F(BatcherTest, RejectsInvalidTasksAtOnce) {
  BatcherOptions options = BaseOptions();
  options.priority_levels = 3;
  Start(options);
  Submit(Spec(0).Priority(3));
  Submit(Spec(1).Priority(-2));
  Submit(Spec(2).Tokens(0));
  Submit(Spec(3).Branch(-1));
  for (int64_t id = 0; id < 4; ++id) {
    ASSERT_TRUE(outcomes_.Answered(id)) << id;
    EXPECT_EQ(outcomes_.Await(id).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_THAT(outcomes_.Await(0).message(),
              AllOf(HasSubstr("priority=3"), HasSubstr("priority_levels=3")));
  EXPECT_THAT(outcomes_.Await(1).message(), HasSubstr("priority=-2"));
  EXPECT_THAT(outcomes_.Await(2).message(), HasSubstr("tokens=0"));
  EXPECT_THAT(outcomes_.Await(3).message(), HasSubstr("branch=-1"));
  EXPECT_EQ(batcher_->Stats().queued, 0);
}

TEST_F(BatcherTest, ProcessorFailureOfOneTaskSparesItsNeighbours) {
  Start(BaseOptions());
  processor_.FailTask(2, absl::InvalidArgumentError("bad sample"));
  SubmitRange(0, 4);
  EXPECT_THAT(processor_.NextBatchSizes(), ElementsAre(4));
  EXPECT_EQ(outcomes_.Await(2).code(), absl::StatusCode::kInvalidArgument);
  for (int64_t id : {0, 1, 3}) {
    ASSERT_TRUE(outcomes_.Await(id).ok()) << outcomes_.Await(id);
    EXPECT_EQ(outcomes_.Result(id), FakeResultFor(id));
  }
}

TEST_F(BatcherTest, WrongStatusCountFailsBatchWithInternal) {
  Start(BaseOptions());
  processor_.SetBehavior(FakeProcessor::Behavior::kWrongStatusCount);
  SubmitRange(0, 4);
  for (int64_t id = 0; id < 4; ++id) {
    EXPECT_EQ(outcomes_.Await(id).code(), absl::StatusCode::kInternal);
  }
}

TEST_F(BatcherTest, ProcessorExceptionFailsBatchAndWorkerGoesOn) {
  Start(BaseOptions());
  processor_.SetBehavior(FakeProcessor::Behavior::kThrow);
  SubmitRange(0, 4);
  for (int64_t id = 0; id < 4; ++id) {
    absl::Status status = outcomes_.Await(id);
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
    EXPECT_THAT(status.message(), HasSubstr("told to throw"));
  }
  processor_.SetBehavior(FakeProcessor::Behavior::kNormal);
  SubmitRange(10, 4);
  for (int64_t id = 10; id < 14; ++id) EXPECT_TRUE(outcomes_.Await(id).ok());
}

TEST_F(BatcherTest, ShutdownDrainsQueuedTasksAndRefusesNewOnes) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 8;
  options.max_queue_delay = absl::Hours(1);
  Start(options);
  for (int64_t id = 0; id < 10; ++id) {
    Submit(Spec(id).Branch(static_cast<int>(id % 3)));
  }
  batcher_->Shutdown();  // no clock advance: drain does not wait for delay
  for (int64_t id = 0; id < 10; ++id) {
    ASSERT_TRUE(outcomes_.Answered(id)) << id;
    EXPECT_TRUE(outcomes_.Await(id).ok());
    EXPECT_EQ(outcomes_.Result(id), FakeResultFor(id));
  }
  Submit(Spec(100));
  ASSERT_TRUE(outcomes_.Answered(100));
  absl::Status refused = outcomes_.Await(100);
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("shutting down"));
  batcher_->Shutdown();  // idempotent
  BatcherStats stats = batcher_->Stats();
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.completed, 10);
}

TEST_F(BatcherTest, ShutdownDropsExpiredTasksInsteadOfRunningThem) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Hours(1);
  Start(options);
  OccupyWorker();
  Submit(Spec(0).Deadline(clock_.Now() + absl::Milliseconds(1)));
  Submit(Spec(1));
  clock_.Advance(absl::Milliseconds(1));
  processor_.ReleaseHeld();
  batcher_->Shutdown();
  EXPECT_EQ(outcomes_.Await(0).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(outcomes_.Await(1).ok());
  EXPECT_EQ(processor_.TimesProcessed(0), 0);
}

TEST_F(BatcherTest, FillsTimings) {
  Start(BaseOptions());
  const absl::Time t0 = clock_.Now();
  SubmitRange(0, 3);
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(2));
  ASSERT_TRUE(outcomes_.Await(0).ok());
  TaskTimings timings = outcomes_.Timings(0);
  EXPECT_EQ(timings.enqueued, t0);
  EXPECT_EQ(timings.started, t0 + absl::Milliseconds(2));
  EXPECT_EQ(timings.finished, t0 + absl::Milliseconds(2));
  EXPECT_EQ(timings.batch_size, 3);
}

TEST_F(BatcherTest, StatsCountQueuedRunningAndCompleted) {
  Start(BaseOptions());
  OccupyWorker();
  SubmitRange(0, 2);
  BatcherStats busy = batcher_->Stats();
  EXPECT_EQ(busy.running, 1);  // the blocker
  EXPECT_EQ(busy.queued, 2);
  EXPECT_EQ(busy.batches, 0);
  processor_.ReleaseHeld();
  batcher_->Shutdown();
  BatcherStats done = batcher_->Stats();
  EXPECT_EQ(done.running, 0);
  EXPECT_EQ(done.queued, 0);
  EXPECT_EQ(done.batches, 2);
  EXPECT_EQ(done.completed, 3);
}

TEST_F(BatcherTest, StatsCountQueuedTasksByBranch) {
  BatcherOptions options = BaseOptions();
  options.max_queue_size = 7;
  options.length_bucket_edges = {8};
  Start(options);
  OccupyWorker();
  Submit(Spec(0).Branch(0).Tokens(1));
  Submit(Spec(1).Branch(0).Tokens(20));  // same branch, another bucket
  SubmitRange(2, 3, /*branch=*/2);
  BatcherStats busy = batcher_->Stats();
  EXPECT_EQ(busy.queued, 5);
  EXPECT_THAT(busy.queued_by_branch,
              ElementsAre(std::pair<const int, int64_t>(0, 2), std::pair<const int, int64_t>(2, 3)));
  EXPECT_EQ(busy.max_queue_size, 7);
  processor_.ReleaseHeld();
  batcher_->Shutdown();
  BatcherStats done = batcher_->Stats();
  EXPECT_EQ(done.queued, 0);
  EXPECT_TRUE(done.queued_by_branch.empty());
}

// Two stages, as the server runs the gate and then the chosen expert:
// branch kStage1 (no delay) hands every task on to branch kStage2.
constexpr int kStage1 = 5;
constexpr int kStage2 = 1;

TEST_F(BatcherTest, RequeuedTasksRunTheirNextStageAndAreAnsweredOnce) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Hours(1);
  options.no_delay_branches = {kStage1};
  Start(options);
  processor_.RequeueBranch(kStage1, kStage2);
  OccupyWorker();
  const absl::Time arrived = clock_.Now();
  SubmitRange(0, 3, kStage1);
  // The first stage runs as soon as the worker is free, however long ago
  // the tasks came; the second waits for company from their arrival, not
  // from the requeue: 40 + 20 minutes of the hour's delay.
  clock_.Advance(absl::Minutes(40));
  ReleaseWorker();
  RecordedBatch first = processor_.NextBatch();
  EXPECT_THAT(first.ids, ElementsAre(0, 1, 2));
  EXPECT_THAT(first.branches, ElementsAre(kStage1, kStage1, kStage1));
  clock_.WaitForWaiters(1);
  EXPECT_FALSE(outcomes_.Answered(0));
  clock_.Advance(absl::Minutes(20));
  RecordedBatch second = processor_.NextBatch();
  EXPECT_THAT(second.ids, ElementsAre(0, 1, 2));
  EXPECT_THAT(second.branches, ElementsAre(kStage2, kStage2, kStage2));
  for (int64_t id = 0; id < 3; ++id) {
    ASSERT_TRUE(outcomes_.Await(id).ok()) << outcomes_.Await(id);
    EXPECT_EQ(outcomes_.Calls(id), 1);
    EXPECT_EQ(outcomes_.Result(id), FakeResultFor(id));
    EXPECT_EQ(processor_.TimesProcessed(id), 2);
    const TaskTimings timings = outcomes_.Timings(id);
    EXPECT_EQ(timings.enqueued, arrived);
    EXPECT_EQ(timings.started, arrived + absl::Hours(1));
    EXPECT_EQ(timings.earlier_stages_compute, absl::ZeroDuration());  // fake clock
  }
  batcher_->Shutdown();
  const BatcherStats stats = batcher_->Stats();
  EXPECT_EQ(stats.requeued, 3);
  EXPECT_EQ(stats.completed, 4);  // the blocker and the three, once each
  EXPECT_EQ(stats.batches, 3);
}

TEST_F(BatcherTest, RequeuedTaskKeepsItsPlaceAheadOfLaterArrivals) {
  BatcherOptions options = BaseOptions();
  options.max_batch_size = 2;
  options.no_delay_branches = {kStage1};
  Start(options);
  processor_.RequeueBranch(kStage1, kStage2);
  OccupyWorker();
  Submit(Spec(0).Branch(kStage1));
  Submit(Spec(1).Branch(kStage2));
  processor_.ReleaseHeld();
  // Stage one of task 0, then one batch of the second stage, task 0 (which
  // arrived first) ahead of task 1.
  std::vector<RecordedBatch> batches = processor_.NextBatches(3);
  EXPECT_EQ(batches[0].branches.front(), kBlockerBranch);
  EXPECT_THAT(batches[1].ids, ElementsAre(0));
  EXPECT_THAT(batches[2].ids, ElementsAre(0, 1));
}

TEST_F(BatcherTest, RequeuedTaskKeepsItsDeadline) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Hours(1);
  options.no_delay_branches = {kStage1};
  Start(options);
  processor_.RequeueBranch(kStage1, kStage2);
  Submit(Spec(0).Branch(kStage1).Deadline(clock_.Now() + absl::Milliseconds(5)));
  processor_.NextBatch();  // stage one
  clock_.WaitForWaiters(1);
  clock_.Advance(absl::Milliseconds(5));
  EXPECT_EQ(outcomes_.Await(0).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(processor_.TimesProcessed(0), 1);
}

TEST_F(BatcherTest, AnAcceptedTaskIsRequeuedIntoAFullQueueAndDuringShutdown) {
  BatcherOptions options = BaseOptions();
  options.max_queue_delay = absl::Hours(1);
  options.max_queue_size = 1;
  options.no_delay_branches = {kStage1};
  Start(options);
  processor_.RequeueBranch(kStage1, kStage2);
  OccupyWorker();
  Submit(Spec(0).Branch(kStage2));  // fills the second stage's queue
  Submit(Spec(1).Branch(kStage1));
  Submit(Spec(2).Branch(kStage1));  // first stage's queue full: refused
  EXPECT_EQ(outcomes_.Await(2).code(), absl::StatusCode::kResourceExhausted);
  processor_.ReleaseHeld();
  batcher_->Shutdown();  // requeues while shutting down, then drains
  for (int64_t id : {0, 1}) {
    ASSERT_TRUE(outcomes_.Await(id).ok()) << id << ": " << outcomes_.Await(id);
    EXPECT_EQ(outcomes_.Result(id), FakeResultFor(id));
  }
  EXPECT_EQ(processor_.TimesProcessed(1), 2);
}

TEST(BatcherCreateTest, RejectsBadOptionsNamingTheField) {
  FakeProcessor processor;
  struct Case {
    std::function<void(BatcherOptions&)> mutate;
    const char* field;
  };
  const std::vector<Case> cases = {
      {[](BatcherOptions& o) { o.max_batch_size = 0; }, "max_batch_size=0"},
      {[](BatcherOptions& o) { o.max_batch_tokens = -1; }, "max_batch_tokens"},
      {[](BatcherOptions& o) { o.preferred_batch_sizes = {33}; },
       "preferred_batch_sizes"},
      {[](BatcherOptions& o) { o.num_workers = 0; }, "num_workers=0"},
      {[](BatcherOptions& o) { o.default_priority = 1; }, "default_priority=1"},
      {[](BatcherOptions& o) { o.max_queue_size = 0; }, "max_queue_size=0"},
      {[](BatcherOptions& o) { o.default_timeout = absl::ZeroDuration(); },
       "default_timeout"},
      {[](BatcherOptions& o) { o.length_bucket_edges = {8, 8}; },
       "length_bucket_edges"},
      {[](BatcherOptions& o) { o.max_queue_delay = -absl::Seconds(1); },
       "max_queue_delay"},
      {[](BatcherOptions& o) { o.max_queue_time = absl::ZeroDuration(); },
       "max_queue_time"},
      {[](BatcherOptions& o) { o.no_delay_branches = {-1}; }, "no_delay_branches"},
  };
  for (const Case& c : cases) {
    BatcherOptions options;
    c.mutate(options);
    absl::StatusOr<std::unique_ptr<Batcher>> batcher =
        Batcher::Create(options, &processor);
    ASSERT_FALSE(batcher.ok()) << c.field;
    EXPECT_EQ(batcher.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(batcher.status().message(), HasSubstr(c.field));
  }
  absl::StatusOr<std::unique_ptr<Batcher>> no_processor =
      Batcher::Create(BatcherOptions(), nullptr);
  EXPECT_EQ(no_processor.status().code(), absl::StatusCode::kInvalidArgument);
}

// Real clock, many producers, random deadlines, cancellations, branches and
// sizes: every task is answered exactly once, with its own result if it ran,
// and expired, cancelled or shed tasks never reach the processor.
TEST(BatcherStressTest, EveryTaskAnsweredExactlyOnceWithItsOwnResult) {
  constexpr int kProducers = 8;
  constexpr int kTasksPerProducer = 10'000;
  constexpr int kTotal = kProducers * kTasksPerProducer;
  constexpr uint32_t kSeed = 20240611;
  SCOPED_TRACE(::testing::Message() << "seed=" << kSeed);

  struct Record {
    std::atomic<int> calls{0};
    std::atomic<int> code{-1};
    std::atomic<int64_t> result{0};
    std::atomic<bool> cancel{false};
    std::atomic<bool> shed{false};
    bool cancelled_before_submit = false;
    bool expired_before_submit = false;
  };
  std::vector<Record> records(kTotal);

  FakeProcessor processor;
  BatcherOptions options;
  options.max_batch_size = 32;
  options.max_batch_tokens = 1024;
  options.preferred_batch_sizes = {8, 16};
  options.max_queue_delay = absl::Microseconds(200);
  options.priority_levels = 3;
  options.length_bucket_edges = {16, 48};
  options.starvation_age = absl::Milliseconds(5);
  options.max_queue_size = kTotal;
  options.num_workers = 2;
  absl::StatusOr<std::unique_ptr<Batcher>> created =
      Batcher::Create(options, &processor);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Batcher> batcher = *std::move(created);

  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(kSeed + p);
      std::uniform_int_distribution<int> percent(0, 99);
      std::uniform_int_distribution<int> branch(0, 3);
      std::uniform_int_distribution<int> tokens(1, 64);
      std::uniform_int_distribution<int> priority(-1, 2);
      std::uniform_int_distribution<int> soon_us(0, 500);
      for (int i = 0; i < kTasksPerProducer; ++i) {
        const int64_t id = static_cast<int64_t>(p) * kTasksPerProducer + i;
        Record& record = records[id];
        auto task = std::make_unique<Task>();
        task->branch = branch(rng);
        task->tokens = tokens(rng);
        task->priority = priority(rng);
        const int deadline_kind = percent(rng);
        const absl::Time now = absl::Now();
        if (deadline_kind < 15) {
          task->deadline = now - absl::Milliseconds(1);
          record.expired_before_submit = true;
        } else if (deadline_kind < 40) {
          task->deadline = now + absl::Microseconds(soon_us(rng));
        } else if (deadline_kind < 70) {
          task->deadline = now + absl::Minutes(10);
        }
        const int cancel_kind = percent(rng);
        if (cancel_kind < 10) {
          record.cancel = true;
          record.cancelled_before_submit = true;
        }
        task->is_cancelled = [&record] { return record.cancel.load(); };
        task->payload = std::make_unique<FakePayload>(id);
        task->done = [&record](absl::Status status, std::unique_ptr<Task> t) {
          record.result = static_cast<FakePayload*>(t->payload.get())->result;
          record.code = static_cast<int>(status.code());
          record.shed = IsShed(status);
          record.calls.fetch_add(1);
        };
        batcher->Submit(std::move(task));
        if (cancel_kind >= 10 && cancel_kind < 20) record.cancel = true;
      }
    });
  }
  for (std::thread& producer : producers) producer.join();
  batcher->Shutdown();

  int ok = 0;
  for (int64_t id = 0; id < kTotal; ++id) {
    const Record& record = records[id];
    SCOPED_TRACE(::testing::Message() << "task " << id);
    ASSERT_EQ(record.calls.load(), 1);
    const auto code = static_cast<absl::StatusCode>(record.code.load());
    const int processed = processor.TimesProcessed(id);
    switch (code) {
      case absl::StatusCode::kOk:
        ++ok;
        ASSERT_EQ(processed, 1);
        ASSERT_EQ(record.result.load(), FakeResultFor(id));
        ASSERT_FALSE(record.cancelled_before_submit);
        ASSERT_FALSE(record.expired_before_submit);
        break;
      case absl::StatusCode::kDeadlineExceeded:
        ASSERT_EQ(processed, 0);
        break;
      case absl::StatusCode::kCancelled:
        ASSERT_EQ(processed, 0);
        ASSERT_FALSE(record.expired_before_submit);
        break;
      case absl::StatusCode::kResourceExhausted:
        // Shed at Submit: its deadline came before its estimated turn (the
        // queue bound is kTotal, never reached).
        ASSERT_EQ(processed, 0);
        ASSERT_TRUE(record.shed.load());
        break;
      default:
        FAIL() << "unexpected code " << absl::StatusCodeToString(code);
    }
    if (record.expired_before_submit) {
      ASSERT_EQ(code, absl::StatusCode::kDeadlineExceeded);
    }
    if (record.cancelled_before_submit) {
      ASSERT_NE(code, absl::StatusCode::kOk);
    }
  }
  EXPECT_GT(ok, kTotal / 4);

  for (const RecordedBatch& batch : processor.Batches()) {
    ASSERT_GE(batch.size(), 1);
    ASSERT_LE(batch.size(), options.max_batch_size);
    int64_t tokens = 0;
    for (int i = 0; i < batch.size(); ++i) {
      tokens += batch.tokens[i];
      ASSERT_EQ(batch.branches[i], batch.branches[0]);
      auto bucket = [](int64_t t) { return t <= 16 ? 0 : t <= 48 ? 1 : 2; };
      ASSERT_EQ(bucket(batch.tokens[i]), bucket(batch.tokens[0]));
    }
    ASSERT_LE(tokens, options.max_batch_tokens);
  }

  BatcherStats stats = batcher->Stats();
  ::testing::Test::RecordProperty("completed", static_cast<int>(stats.completed));
  ::testing::Test::RecordProperty("batches", static_cast<int>(stats.batches));
  ::testing::Test::RecordProperty("expired", static_cast<int>(stats.expired));
  ::testing::Test::RecordProperty("cancelled", static_cast<int>(stats.cancelled));
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.completed, ok);
  ::testing::Test::RecordProperty("shed", static_cast<int>(stats.shed));
  EXPECT_EQ(stats.completed + stats.expired + stats.cancelled + stats.shed, kTotal);
  EXPECT_EQ(stats.rejected_full, 0);
}

}  // namespace
}  // namespace mmfuse::batching
