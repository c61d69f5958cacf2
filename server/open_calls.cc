#include "server/open_calls.h"

#include <utility>
#include <vector>

namespace mmfuse::server {

bool OpenCalls::Join(const void* call, Member member) {
  absl::MutexLock lock(&mu_);
  if (draining_.load()) return false;
  members_.emplace(call, std::move(member));
  return true;
}

void OpenCalls::Leave(const void* call) {
  absl::MutexLock lock(&mu_);
  members_.erase(call);
}

void OpenCalls::DrainAll() {
  std::vector<std::function<void()>> drains;
  {
    absl::MutexLock lock(&mu_);
    draining_.store(true);
    drains.reserve(members_.size());
    // Under the lock, a member's destructor cannot finish (it waits in
    // Leave), so try_ref touches live memory; a member whose references are
    // all gone is skipped: it is on its way out.
    for (auto& [call, member] : members_) {
      if (member.try_ref()) drains.push_back(member.drain_and_unref);
    }
  }
  // Outside the lock: a drain may end its call, and the call's destructor
  // (Leave) may run on this thread.
  for (const std::function<void()>& drain : drains) drain();
}

int64_t OpenCalls::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(members_.size());
}

bool OpenCalls::AwaitSizeAtLeast(int64_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int64_t>(members_.size()) >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

bool OpenCalls::AwaitSizeAtMost(int64_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return static_cast<int64_t>(members_.size()) <= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

void OpenCalls::RecordUndelivered(int64_t n) {
  if (n <= 0) return;
  undelivered_.fetch_add(n);
  if (on_undelivered_) on_undelivered_(n);
}

}  // namespace mmfuse::server
