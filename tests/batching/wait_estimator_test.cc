// WaitEstimator: queued and running work, per-branch service times, the
// fallback for branches not measured yet.
#include "batching/wait_estimator.h"

#include "gtest/gtest.h"

namespace mmfuse::batching {
namespace {

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

TEST(WaitEstimatorTest, IsZeroUntilABatchIsMeasured) {
  WaitEstimator wait(2);
  for (int i = 0; i < 100; ++i) wait.Queued(0);
  EXPECT_EQ(wait.Estimate(), absl::ZeroDuration());
  EXPECT_EQ(wait.queued(), 100);
}

TEST(WaitEstimatorTest, SumsQueuedWorkPerBranchAndHalfTheRunningOverTheWorkers) {
  WaitEstimator wait(2);
  wait.BatchRan(0, 4, absl::Milliseconds(8));  // 2 ms per task
  wait.BatchRan(1, 2, absl::Milliseconds(20));  // 10 ms per task
  EXPECT_NEAR(Ms(wait.ServicePerTask(0)), 2, 1e-9);
  EXPECT_NEAR(Ms(wait.ServicePerTask(1)), 10, 1e-9);
  for (int i = 0; i < 3; ++i) wait.Queued(0);
  wait.Queued(1);
  // (3 x 2 + 1 x 10) / 2 workers.
  EXPECT_NEAR(Ms(wait.Estimate()), 8, 1e-9);
  wait.Started(1, 2);  // half of 2 x 10 ms still to run, on average
  EXPECT_NEAR(Ms(wait.Estimate()), 13, 1e-9);
  wait.Finished(1, 2);
  wait.Left(0);
  EXPECT_NEAR(Ms(wait.Estimate()), 7, 1e-9);
  EXPECT_EQ(wait.queued(), 3);
}

TEST(WaitEstimatorTest, UnmeasuredBranchCountsAtTheMeanAndAverageMoves) {
  WaitEstimator wait(1);
  wait.BatchRan(0, 1, absl::Milliseconds(2));
  wait.BatchRan(1, 1, absl::Milliseconds(6));
  wait.Queued(5);  // never measured: the mean, 4 ms
  EXPECT_NEAR(Ms(wait.Estimate()), 4, 1e-9);
  // The newest batch weighs a fifth: 0.8 x 2 + 0.2 x 12 = 4 ms per task.
  wait.BatchRan(0, 1, absl::Milliseconds(12));
  EXPECT_NEAR(Ms(wait.ServicePerTask(0)), 4, 1e-9);
}

}  // namespace
}  // namespace mmfuse::batching
