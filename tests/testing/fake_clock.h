// FakeClock: a Clock for tests whose time moves only on Advance(), so tests
// of time-driven code run exact and instant.
//
// AwaitWithDeadline returns when its condition holds (absl::Mutex's normal
// re-evaluation) or when Advance() moves Now() to or past its deadline.
// WaitForWaiters(n) lets a test wait until n threads are parked in
// AwaitWithDeadline before it advances time:
//
//   clock.WaitForWaiters(1);               // worker parked on max delay
//   clock.Advance(absl::Milliseconds(2));  // partial batch must go now
//
// A thread counts as parked from the moment it enters AwaitWithDeadline until
// it returns, so a waiter that is already being woken (its condition became
// true) may still be counted; code under test must re-read Now() after
// waking, which real code does anyway.
//
// Thread-safety: thread-safe. A mutex passed to AwaitWithDeadline must
// outlive any Advance() that runs while its waiter is parked (Advance locks
// it to make absl re-evaluate the waiter's condition).
#ifndef MMFUSE_TESTS_TESTING_FAKE_CLOCK_H_
#define MMFUSE_TESTS_TESTING_FAKE_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace mmfuse::testing {

class FakeClock final : public Clock {
 public:
  // Starts at `start` (default: 2020-01-01 00:00:00 UTC).
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1577836800));

  absl::Time Now() override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Moves Now() forward by `d` (>= 0) and wakes waiters whose deadline passed.
  void Advance(absl::Duration d);

  // Blocks until at least `n` threads are parked in AwaitWithDeadline.
  void WaitForWaiters(int n);

  // Threads parked in AwaitWithDeadline now.
  int NumWaiters();

 private:
  std::atomic<int64_t> now_ns_;  // Unix nanoseconds
  absl::Mutex mu_;
  // One entry per parked thread (a mutex appears once per waiter on it).
  std::vector<absl::Mutex*> waiter_mutexes_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_TESTING_FAKE_CLOCK_H_
