// Clock: the only way library code reads time or waits on it, so tests can
// substitute a fake clock (tests/testing/fake_clock.h) and run exact and
// instant. batching/ never calls absl::Now() or sleeps.
//
// Thread-safety: implementations are thread-safe.
#ifndef MMFUSE_COMMON_CLOCK_H_
#define MMFUSE_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mmfuse {

class Clock {
 public:
  virtual ~Clock() = default;

  // The process-wide real clock (absl::Now and absl::Mutex waits). Never null,
  // never deleted.
  static Clock* Real();

  virtual absl::Time Now() = 0;

  // With `mu` held, waits until `cond` holds or Now() >= `deadline`, releasing
  // `mu` while waiting; returns with `mu` held and cond's final value.
  // `deadline` may be absl::InfiniteFuture().
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                 absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;
};

}  // namespace mmfuse

#endif  // MMFUSE_COMMON_CLOCK_H_
