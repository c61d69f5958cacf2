// LoadBiasController: turns queueing delay into a bias toward cheaper
// branches (load-adaptive gating). When the smoothed queue wait stays above
// `target_wait`, the bias rises by `step` (up to `max_bias`); once it falls
// below `target_wait * lower_fraction` it comes down by `step` (hysteresis:
// between the two it holds). At most one step per `min_interval`, so a burst
// cannot swing it.
//
// Thread-safety: thread-safe.
#ifndef MMFUSE_BATCHING_LOAD_BIAS_H_
#define MMFUSE_BATCHING_LOAD_BIAS_H_

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mmfuse::batching {

struct LoadBiasOptions {
  // Queue wait above which the bias rises. > 0. Default 5 ms.
  absl::Duration target_wait = absl::Milliseconds(5);
  // The bias falls once the wait is below target_wait * lower_fraction.
  // In (0, 1). Default 0.5.
  double lower_fraction = 0.5;
  // Change per adjustment. > 0. Default 0.5.
  double step = 0.5;
  // Largest bias. >= step. Default 4.
  double max_bias = 4.0;
  // Weight of a new observation in the moving average. In (0, 1]. Default 0.1.
  double smoothing = 0.1;
  // Least time between two adjustments. >= 0. Default 100 ms.
  absl::Duration min_interval = absl::Milliseconds(100);
};

class LoadBiasController {
 public:
  static absl::StatusOr<std::unique_ptr<LoadBiasController>> Create(const LoadBiasOptions& options);

  // Records one request's queue wait, observed at `now`; returns the bias.
  double Observe(absl::Duration queue_wait, absl::Time now);
  double bias() const;

 private:
  explicit LoadBiasController(const LoadBiasOptions& options) : options_(options) {}

  const LoadBiasOptions options_;
  mutable absl::Mutex mu_;
  double average_wait_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  double bias_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_change_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace mmfuse::batching

#endif  // MMFUSE_BATCHING_LOAD_BIAS_H_
