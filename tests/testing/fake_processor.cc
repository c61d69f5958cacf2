#include "tests/testing/fake_processor.h"

#include <optional>
#include <stdexcept>
#include <utility>


namespace mmfuse::testing {

std::vector<absl::Status> FakeProcessor::ProcessBatch(
    absl::Span<batching::Task* const> batch) {
  RecordedBatch record;
  for (const batching::Task* task : batch) {
    const auto* payload = dynamic_cast<const FakePayload*>(task->payload.get());
    record.ids.push_back(payload != nullptr ? payload->id : -1);
    record.branches.push_back(task->branch);
    record.input_groups.push_back(task->input_group);
    record.tokens.push_back(task->tokens);
    record.priorities.push_back(task->priority);
  }
  Behavior behavior;
  std::vector<absl::Status> statuses;
  std::optional<int> requeue_to;
  {
    absl::MutexLock lock(&mu_);
    if (!batch.empty()) {
      auto to = requeue_to_.find(batch.front()->branch);
      if (to != requeue_to_.end()) requeue_to = to->second;
    }
    for (int64_t id : record.ids) {
      ++times_processed_[id];
      auto failure = failures_.find(id);
      statuses.push_back(failure == failures_.end() ? absl::OkStatus()
                                                    : failure->second);
    }
    batches_.push_back(record);
    if (holding_) {
      ++held_;
      mu_.Await(absl::Condition(
          +[](bool* holding) { return !*holding; }, &holding_));
      --held_;
    }
    behavior = behavior_;
  }
  if (behavior == Behavior::kThrow) {
    throw std::runtime_error("FakeProcessor told to throw");
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    auto* payload = dynamic_cast<FakePayload*>(batch[i]->payload.get());
    if (payload == nullptr) {
      statuses[i] = absl::InternalError("task has no FakePayload");
    } else if (statuses[i].ok() && requeue_to.has_value()) {
      batch[i]->branch = *requeue_to;
      batch[i]->requeue = true;
    } else if (statuses[i].ok()) {
      payload->result = FakeResultFor(payload->id);
    }
  }
  if (behavior == Behavior::kWrongStatusCount) statuses.pop_back();
  return statuses;
}

void FakeProcessor::SetBehavior(Behavior behavior) {
  absl::MutexLock lock(&mu_);
  behavior_ = behavior;
}

void FakeProcessor::RequeueBranch(int from, int to) {
  absl::MutexLock lock(&mu_);
  requeue_to_[from] = to;
}

void FakeProcessor::FailTask(int64_t id, absl::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[id] = std::move(status);
}

void FakeProcessor::HoldBatches() {
  absl::MutexLock lock(&mu_);
  holding_ = true;
}

void FakeProcessor::WaitForHeld(int n) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return held_ >= n;
  };
  mu_.Await(absl::Condition(&enough));
}

void FakeProcessor::ReleaseHeld() {
  absl::MutexLock lock(&mu_);
  holding_ = false;
}

std::vector<RecordedBatch> FakeProcessor::NextBatches(int count) {
  absl::MutexLock lock(&mu_);
  const size_t want = next_unread_ + count;
  auto recorded = [this, want]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return batches_.size() >= want;
  };
  mu_.Await(absl::Condition(&recorded));
  std::vector<RecordedBatch> out(batches_.begin() + next_unread_,
                                 batches_.begin() + want);
  next_unread_ = want;
  return out;
}

std::vector<int> FakeProcessor::NextBatchSizes(int count) {
  std::vector<int> sizes;
  for (const RecordedBatch& batch : NextBatches(count)) {
    sizes.push_back(batch.size());
  }
  return sizes;
}

std::vector<RecordedBatch> FakeProcessor::Batches() {
  absl::MutexLock lock(&mu_);
  return batches_;
}

int FakeProcessor::NumBatches() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(batches_.size());
}

int FakeProcessor::TimesProcessed(int64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = times_processed_.find(id);
  return it == times_processed_.end() ? 0 : it->second;
}

}  // namespace mmfuse::testing
