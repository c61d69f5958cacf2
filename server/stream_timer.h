// StreamTimer: runs callbacks at deadlines on one thread of its own: the
// feature streams' stream and idle timeouts, without a thread or a poll per
// stream. The thread waits on the clock (absl::Mutex condition with a
// deadline) for the earliest deadline or a change, runs what is due outside
// its lock, and sleeps again.
//
// A callback returns when it wants to run next (InfiniteFuture = never); so
// an idle timeout re-arms itself instead of being moved on every chunk.
// Callbacks are destroyed outside the timer's lock (a callback may hold the
// last reference to its owner), after their last run or at Cancel/Shutdown.
//
// Thread-safety: thread-safe. Callbacks must not block; they may call
// Schedule and Cancel.
#ifndef MMFUSE_SERVER_STREAM_TIMER_H_
#define MMFUSE_SERVER_STREAM_TIMER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace mmfuse::server {

class StreamTimer {
 public:
  using Id = uint64_t;
  // Runs on the timer thread at or after its deadline with the clock's now;
  // returns the next time to run, or InfiniteFuture to be dropped.
  using Callback = std::function<absl::Time(absl::Time now)>;

  // `clock` is not owned and must outlive the timer; nullptr = real clock.
  // Starts the thread.
  explicit StreamTimer(Clock* clock = nullptr);
  ~StreamTimer();  // Shutdown().

  StreamTimer(const StreamTimer&) = delete;
  StreamTimer& operator=(const StreamTimer&) = delete;

  // Runs `callback` at `deadline`. After Shutdown the callback is dropped
  // at once (never run). Ids are never 0.
  Id Schedule(absl::Time deadline, Callback callback);

  // The callback will not run again. If it is running now it is dropped
  // when it returns; Cancel never waits for it. Unknown ids are ignored.
  void Cancel(Id id);

  // Drops every callback without running it and joins the thread. Blocks
  // until a running callback returns. Idempotent.
  void Shutdown();

  // Callbacks scheduled and not dropped yet (running ones included).
  int64_t size() const;

 private:
  struct Entry {
    absl::Time deadline;
    Callback callback;
  };

  void Loop();

  Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<Id, Entry> entries_ ABSL_GUARDED_BY(mu_);   // waiting
  std::set<std::pair<absl::Time, Id>> due_ ABSL_GUARDED_BY(mu_);  // by deadline
  // Running now (taken out of entries_); true once cancelled meanwhile.
  std::map<Id, bool> running_ ABSL_GUARDED_BY(mu_);
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Bumped when the earliest deadline moves earlier or on shutdown.
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;

  absl::Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::thread thread_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_STREAM_TIMER_H_
