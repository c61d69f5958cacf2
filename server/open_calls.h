// OpenCalls: the streaming calls a server has open, so that shutdown can end
// every one of them at once, and the count of computed answers that never
// reached their client.
//
// Draining: a stream joins when it is constructed and leaves in its
// destructor. DrainAll (shutdown) marks the list draining and drains every
// member: a stream stops reading, answers what it has read and ends
// UNAVAILABLE, rather than staying open until its client half-closes or a
// timeout fires. A stream that tries to join after DrainAll is refused and
// drains itself.
//
// A member is reached only through the two functions it joins with, never
// through a virtual call: DrainAll may look at a member whose destructor is
// running (its try_ref then fails), and a virtual call on an object being
// destroyed is a race on its vtable pointer.
//
// Thread-safety: thread-safe.
#ifndef MMFUSE_SERVER_OPEN_CALLS_H_
#define MMFUSE_SERVER_OPEN_CALLS_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mmfuse::server {

// The message of every refusal and every stream ended by shutdown (clients
// and tests match it).
inline constexpr char kShuttingDownMessage[] = "server is shutting down";

// Adds one to `refs` unless it is 0 (the object's last reference is gone);
// returns whether it did. The try_ref of reference-counted members.
inline bool TryAddRef(std::atomic<int>& refs) {
  int n = refs.load(std::memory_order_acquire);
  while (n > 0) {
    if (refs.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel)) return true;
  }
  return false;
}

class OpenCalls {
 public:
  struct Member {
    // Takes a reference on the call unless its last one is gone (it is being
    // destroyed); returns whether it did. Must not block.
    std::function<bool()> try_ref;
    // Drains the call (see the file comment), then drops the reference
    // try_ref took. Runs outside the list's lock, on DrainAll's thread.
    std::function<void()> drain_and_unref;
  };

  // Adds `call` (a key: its address). Returns false, adding nothing, once
  // DrainAll has started: the caller then drains itself.
  bool Join(const void* call, Member member);
  // Removes `call` if it joined; call from its destructor. Blocks while
  // DrainAll is taking references.
  void Leave(const void* call);

  // Drains every member (see the file comment); later joins are refused.
  void DrainAll();
  bool draining() const { return draining_.load(); }
  // Members now.
  int64_t size() const;
  // Waits until at least `n` calls are members, or `timeout` passed;
  // returns whether that happened. For tests.
  bool AwaitSizeAtLeast(int64_t n, absl::Duration timeout) const;
  // Waits until at most `n` calls are members, or `timeout` passed; returns
  // whether that happened.
  bool AwaitSizeAtMost(int64_t n, absl::Duration timeout) const;

  // `n` computed answers did not reach their client: the call was cancelled
  // (the client went away, its deadline passed, or shutdown's deadline
  // cancelled it) or its stream broke before they were written.
  void RecordUndelivered(int64_t n);
  int64_t undelivered() const { return undelivered_.load(); }
  // Runs on every RecordUndelivered, with its `n` (e.g. a metric). Set before
  // serving.
  void set_on_undelivered(std::function<void(int64_t)> on_undelivered) {
    on_undelivered_ = std::move(on_undelivered);
  }

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<const void*, Member> members_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> draining_{false};  // Set under mu_.
  std::atomic<int64_t> undelivered_{0};
  std::function<void(int64_t)> on_undelivered_;
};

}  // namespace mmfuse::server

#endif  // MMFUSE_SERVER_OPEN_CALLS_H_
