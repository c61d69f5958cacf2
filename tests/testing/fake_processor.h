// FakeProcessor: a BatchProcessor for batcher tests. It computes nothing: it
// records every batch it is given, writes FakeResultFor(id) into each task's
// FakePayload (so a test can check each task got its own answer), and can
// hold batches until the test releases them (to queue tasks while workers are
// busy), fail chosen tasks, send tasks on to a second stage, throw, or return
// the wrong number of statuses.
//
//   FakeProcessor processor;
//   processor.HoldBatches();           // batches park in ProcessBatch
//   ...submit...; processor.WaitForHeld(1);
//   processor.ReleaseHeld();           // and stop holding
//   EXPECT_THAT(processor.NextBatchSizes(), ElementsAre(3));
//
// Thread-safety: thread-safe.
#ifndef MMFUSE_TESTS_TESTING_FAKE_PROCESSOR_H_
#define MMFUSE_TESTS_TESTING_FAKE_PROCESSOR_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "batching/batch_processor.h"
#include "batching/task.h"

namespace mmfuse::testing {

// The payload FakeProcessor reads and writes.
class FakePayload : public batching::Payload {
 public:
  explicit FakePayload(int64_t id) : id(id) {}
  int64_t id;
  int64_t result = 0;  // FakeResultFor(id) after a successful batch
};

// The result FakeProcessor computes for the task with `id`.
inline int64_t FakeResultFor(int64_t id) { return id * 31 + 7; }

// One ProcessBatch call as seen by the processor, tasks in batch order.
struct RecordedBatch {
  std::vector<int64_t> ids;  // FakePayload::id, -1 for a missing payload
  std::vector<int> branches;
  std::vector<uint64_t> input_groups;
  std::vector<int64_t> tokens;
  std::vector<int> priorities;
  int size() const { return static_cast<int>(ids.size()); }
};

class FakeProcessor final : public batching::BatchProcessor {
 public:
  // What ProcessBatch does besides recording.
  enum class Behavior {
    kNormal,            // results and per-task statuses
    kThrow,             // throws std::runtime_error
    kWrongStatusCount,  // returns one status too few
  };

  std::vector<absl::Status> ProcessBatch(
      absl::Span<batching::Task* const> batch) override;

  // Applies to batches that start after the call.
  void SetBehavior(Behavior behavior);
  // The task with `id` gets `status` (its neighbours are unaffected).
  void FailTask(int64_t id, absl::Status status);
  // A successful task of a batch of branch `from` is sent on to branch `to`
  // (Task::requeue), a second stage, instead of being answered; its result
  // is written by the last stage.
  void RequeueBranch(int from, int to);

  // From now on, each batch parks inside ProcessBatch (after being recorded)
  // until released.
  void HoldBatches();
  // Blocks until at least `n` batches are parked.
  void WaitForHeld(int n);
  // Stops holding and lets every parked batch finish.
  void ReleaseHeld();

  // Blocks until `count` batches past the ones already returned by
  // NextBatch/NextBatchSizes were recorded, and returns them in order.
  std::vector<RecordedBatch> NextBatches(int count);
  RecordedBatch NextBatch() { return NextBatches(1).front(); }
  // The sizes of NextBatches(count).
  std::vector<int> NextBatchSizes(int count = 1);

  // Every batch recorded so far.
  std::vector<RecordedBatch> Batches();
  int NumBatches();
  // How many times the task with `id` was given to ProcessBatch.
  int TimesProcessed(int64_t id);

 private:
  absl::Mutex mu_;
  Behavior behavior_ ABSL_GUARDED_BY(mu_) = Behavior::kNormal;
  absl::flat_hash_map<int64_t, absl::Status> failures_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int, int> requeue_to_ ABSL_GUARDED_BY(mu_);  // from -> to branch
  absl::flat_hash_map<int64_t, int> times_processed_ ABSL_GUARDED_BY(mu_);
  std::vector<RecordedBatch> batches_ ABSL_GUARDED_BY(mu_);
  size_t next_unread_ ABSL_GUARDED_BY(mu_) = 0;
  bool holding_ ABSL_GUARDED_BY(mu_) = false;
  int held_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_TESTING_FAKE_PROCESSOR_H_
