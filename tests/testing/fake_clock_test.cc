#include "tests/testing/fake_clock.h"

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace mmfuse::testing {
namespace {

TEST(FakeClockTest, NowMovesOnlyOnAdvance) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Milliseconds(3));
  EXPECT_EQ(clock.Now(), start + absl::Milliseconds(3));
}

TEST(FakeClockTest, AdvancePastDeadlineWakesWaiter) {
  FakeClock clock;
  absl::Mutex mu;
  bool never = false;
  bool result = true;
  const absl::Time deadline = clock.Now() + absl::Milliseconds(5);
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&never), deadline);
  });
  clock.WaitForWaiters(1);
  clock.Advance(absl::Milliseconds(4));
  EXPECT_EQ(clock.NumWaiters(), 1);  // still before the deadline
  clock.Advance(absl::Milliseconds(1));
  waiter.join();
  EXPECT_FALSE(result);
  EXPECT_EQ(clock.NumWaiters(), 0);
}

TEST(FakeClockTest, ConditionWakesWaiterBeforeDeadline) {
  FakeClock clock;
  absl::Mutex mu;
  bool ready = false;
  bool result = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithDeadline(&mu, absl::Condition(&ready),
                                     absl::InfiniteFuture());
  });
  clock.WaitForWaiters(1);
  {
    absl::MutexLock lock(&mu);
    ready = true;
  }
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(FakeClockTest, WaitForWaitersCountsEveryParkedThread) {
  FakeClock clock;
  absl::Mutex mu;
  bool release = false;
  std::thread first([&] {
    absl::MutexLock lock(&mu);
    clock.AwaitWithDeadline(&mu, absl::Condition(&release),
                            absl::InfiniteFuture());
  });
  std::thread second([&] {
    absl::MutexLock lock(&mu);
    clock.AwaitWithDeadline(&mu, absl::Condition(&release),
                            clock.Now() + absl::Hours(1));
  });
  clock.WaitForWaiters(2);
  EXPECT_EQ(clock.NumWaiters(), 2);
  {
    absl::MutexLock lock(&mu);
    release = true;
  }
  first.join();
  second.join();
}

}  // namespace
}  // namespace mmfuse::testing
