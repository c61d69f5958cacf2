#include "server/stream_timer.h"

#include <vector>

namespace mmfuse::server {

StreamTimer::StreamTimer(Clock* clock) : clock_(clock != nullptr ? clock : Clock::Real()) {
  absl::MutexLock lock(&join_mu_);
  thread_ = std::thread([this] { Loop(); });
}

StreamTimer::~StreamTimer() { Shutdown(); }

StreamTimer::Id StreamTimer::Schedule(absl::Time deadline, Callback callback) {
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_) {
      const Id id = next_id_++;
      if (due_.empty() || deadline < due_.begin()->first) ++epoch_;
      due_.emplace(deadline, id);
      entries_.emplace(id, Entry{deadline, std::move(callback)});
      return id;
    }
  }
  return 0;  // `callback` is destroyed here, outside the lock.
}

void StreamTimer::Cancel(Id id) {
  Callback dropped;
  {
    absl::MutexLock lock(&mu_);
    auto running = running_.find(id);
    if (running != running_.end()) {
      running->second = true;
      return;
    }
    auto it = entries_.find(id);
    if (it == entries_.end()) return;
    due_.erase({it->second.deadline, id});
    dropped = std::move(it->second.callback);
    entries_.erase(it);
  }
}

void StreamTimer::Shutdown() {
  absl::MutexLock join_lock(&join_mu_);
  if (!thread_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    ++epoch_;
  }
  thread_.join();
  std::map<Id, Entry> dropped;
  {
    absl::MutexLock lock(&mu_);
    dropped.swap(entries_);
    due_.clear();
  }
}

int64_t StreamTimer::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size() + running_.size());
}

void StreamTimer::Loop() {
  std::vector<std::pair<Id, Callback>> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        if (shutting_down_) return;
        const absl::Time now = clock_->Now();
        while (!due_.empty() && due_.begin()->first <= now) {
          const Id id = due_.begin()->second;
          due_.erase(due_.begin());
          auto it = entries_.find(id);
          batch.emplace_back(id, std::move(it->second.callback));
          entries_.erase(it);
          running_.emplace(id, false);
        }
        if (!batch.empty()) break;
        const uint64_t seen = epoch_;
        auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return epoch_ != seen;
        };
        clock_->AwaitWithDeadline(
            &mu_, absl::Condition(&changed),
            due_.empty() ? absl::InfiniteFuture() : due_.begin()->first);
      }
    }
    for (auto& [id, callback] : batch) {
      const absl::Time next = callback(clock_->Now());
      bool keep = false;
      {
        absl::MutexLock lock(&mu_);
        auto running = running_.find(id);
        keep = next != absl::InfiniteFuture() && !running->second && !shutting_down_;
        running_.erase(running);
        if (keep) {
          if (due_.empty() || next < due_.begin()->first) ++epoch_;
          due_.emplace(next, id);
          entries_.emplace(id, Entry{next, std::move(callback)});
        }
      }
      // Not kept: `callback` is destroyed with `batch`, outside the lock.
    }
    batch.clear();
  }
}

}  // namespace mmfuse::server
