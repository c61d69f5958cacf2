#include "server/stream_timer.h"

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_clock.h"

namespace mmfuse::server {
namespace {

using ::mmfuse::testing::FakeClock;

// Records the times a callback ran at.
class Runs {
 public:
  void Add(absl::Time now) {
    absl::MutexLock lock(&mu_);
    times_.push_back(now);
  }
  // Blocks until `n` runs were recorded.
  void AwaitCount(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return times_.size() >= n; };
    mu_.Await(absl::Condition(&enough));
  }
  std::vector<absl::Time> times() {
    absl::MutexLock lock(&mu_);
    return times_;
  }

 private:
  absl::Mutex mu_;
  std::vector<absl::Time> times_ ABSL_GUARDED_BY(mu_);
};

TEST(StreamTimerTest, RunsCallbackAtItsDeadline) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  StreamTimer timer(&clock);
  Runs runs;
  timer.Schedule(t0 + absl::Milliseconds(10), [&runs](absl::Time now) {
    runs.Add(now);
    return absl::InfiniteFuture();
  });
  clock.WaitForWaiters(1);
  clock.Advance(absl::Milliseconds(9));
  EXPECT_TRUE(runs.times().empty());
  clock.Advance(absl::Milliseconds(1));
  runs.AwaitCount(1);
  EXPECT_EQ(runs.times().front(), t0 + absl::Milliseconds(10));
  timer.Shutdown();
  EXPECT_EQ(timer.size(), 0);
}

TEST(StreamTimerTest, CallbackRearmsItselfByItsReturnValue) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  StreamTimer timer(&clock);
  Runs runs;
  std::atomic<int> calls{0};
  timer.Schedule(t0 + absl::Milliseconds(5), [&](absl::Time now) {
    runs.Add(now);
    return ++calls < 3 ? now + absl::Milliseconds(5) : absl::InfiniteFuture();
  });
  for (int i = 1; i <= 3; ++i) {
    clock.WaitForWaiters(1);
    clock.Advance(absl::Milliseconds(5));
    runs.AwaitCount(i);
  }
  EXPECT_EQ(runs.times(), (std::vector<absl::Time>{t0 + absl::Milliseconds(5),
                                                  t0 + absl::Milliseconds(10),
                                                  t0 + absl::Milliseconds(15)}));
  timer.Shutdown();
  EXPECT_EQ(calls.load(), 3);
}

TEST(StreamTimerTest, CancelDropsTheCallbackWithoutRunningIt) {
  FakeClock clock;
  StreamTimer timer(&clock);
  auto token = std::make_shared<int>(0);
  bool ran = false;
  const StreamTimer::Id id =
      timer.Schedule(clock.Now() + absl::Milliseconds(1), [token, &ran](absl::Time) {
        ran = true;
        return absl::InfiniteFuture();
      });
  EXPECT_EQ(token.use_count(), 2);
  timer.Cancel(id);
  EXPECT_EQ(token.use_count(), 1);  // Destroyed at once.
  EXPECT_EQ(timer.size(), 0);
  clock.Advance(absl::Seconds(1));
  timer.Shutdown();
  EXPECT_FALSE(ran);
}

TEST(StreamTimerTest, EarlierDeadlineWakesTheTimer) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  StreamTimer timer(&clock);
  Runs runs;
  timer.Schedule(t0 + absl::Hours(1), [&runs](absl::Time now) {
    runs.Add(now);
    return absl::InfiniteFuture();
  });
  clock.WaitForWaiters(1);  // Parked until t0 + 1 h.
  timer.Schedule(t0 + absl::Milliseconds(1), [&runs](absl::Time now) {
    runs.Add(now);
    return absl::InfiniteFuture();
  });
  clock.Advance(absl::Milliseconds(1));
  runs.AwaitCount(1);
  EXPECT_EQ(runs.times().front(), t0 + absl::Milliseconds(1));
}

TEST(StreamTimerTest, ShutdownDropsPendingCallbacksAndLaterSchedules) {
  FakeClock clock;
  StreamTimer timer(&clock);
  auto token = std::make_shared<int>(0);
  timer.Schedule(clock.Now() + absl::Hours(1), [token](absl::Time) { return absl::InfiniteFuture(); });
  timer.Shutdown();
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(timer.Schedule(clock.Now(), [token](absl::Time) { return absl::InfiniteFuture(); }),
            0u);
  EXPECT_EQ(token.use_count(), 1);
  timer.Shutdown();  // Idempotent.
}

}  // namespace
}  // namespace mmfuse::server
