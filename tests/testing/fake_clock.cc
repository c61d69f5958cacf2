#include "tests/testing/fake_clock.h"

#include <algorithm>

#include "absl/base/internal/raw_logging.h"

namespace mmfuse::testing {
namespace {

// The waiter's condition: the caller's, or the fake time reached `deadline`.
struct CondOrDeadline {
  const absl::Condition* cond;
  FakeClock* clock;
  absl::Time deadline;
  bool operator()() const { return cond->Eval() || clock->Now() >= deadline; }
};

}  // namespace

FakeClock::FakeClock(absl::Time start) : now_ns_(absl::ToUnixNanos(start)) {}

absl::Time FakeClock::Now() {
  return absl::FromUnixNanos(now_ns_.load(std::memory_order_acquire));
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline) {
  // Registered before the first evaluation of the condition (inside Await),
  // so an Advance either sees this mutex and pokes it, or stored the new
  // time before we read it.
  {
    absl::MutexLock lock(&mu_);
    waiter_mutexes_.push_back(mu);
  }
  const CondOrDeadline wait{&cond, this, deadline};
  mu->Await(absl::Condition(&wait));
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find(waiter_mutexes_.begin(), waiter_mutexes_.end(), mu);
    ABSL_RAW_CHECK(it != waiter_mutexes_.end(), "FakeClock waiter lost");
    waiter_mutexes_.erase(it);
  }
  return cond.Eval();
}

void FakeClock::Advance(absl::Duration d) {
  ABSL_RAW_CHECK(d >= absl::ZeroDuration(), "FakeClock::Advance: negative");
  now_ns_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  std::vector<absl::Mutex*> mutexes;
  {
    absl::MutexLock lock(&mu_);
    mutexes = waiter_mutexes_;
  }
  std::sort(mutexes.begin(), mutexes.end());
  mutexes.erase(std::unique(mutexes.begin(), mutexes.end()), mutexes.end());
  // Not under mu_: a waiter takes mu_ while holding its own mutex. Releasing
  // the waiter's mutex makes absl re-evaluate its condition with the new
  // time.
  for (absl::Mutex* mutex : mutexes) {
    mutex->Lock();
    mutex->Unlock();
  }
}

void FakeClock::WaitForWaiters(int n) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int>(waiter_mutexes_.size()) >= n;
  };
  mu_.Await(absl::Condition(&enough));
}

int FakeClock::NumWaiters() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(waiter_mutexes_.size());
}

}  // namespace mmfuse::testing
