#include "batching/load_bias.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace mmfuse::batching {

absl::StatusOr<std::unique_ptr<LoadBiasController>> LoadBiasController::Create(
    const LoadBiasOptions& options) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("load bias: ", parts...));
  };
  if (options.target_wait <= absl::ZeroDuration()) return invalid("target_wait must be > 0");
  if (!(options.lower_fraction > 0 && options.lower_fraction < 1)) {
    return invalid("lower_fraction=", options.lower_fraction, " is outside (0, 1)");
  }
  if (!(options.step > 0) || options.max_bias < options.step) {
    return invalid("step=", options.step, " must be > 0 and <= max_bias=", options.max_bias);
  }
  if (!(options.smoothing > 0 && options.smoothing <= 1)) {
    return invalid("smoothing=", options.smoothing, " is outside (0, 1]");
  }
  return std::unique_ptr<LoadBiasController>(new LoadBiasController(options));
}

double LoadBiasController::Observe(absl::Duration queue_wait, absl::Time now) {
  absl::MutexLock lock(&mu_);
  average_wait_seconds_ += options_.smoothing *
                           (absl::ToDoubleSeconds(queue_wait) - average_wait_seconds_);
  if (now - last_change_ < options_.min_interval) return bias_;
  const double target = absl::ToDoubleSeconds(options_.target_wait);
  double next = bias_;
  if (average_wait_seconds_ > target) {
    next = std::min(options_.max_bias, bias_ + options_.step);
  } else if (average_wait_seconds_ < target * options_.lower_fraction) {
    next = std::max(0.0, bias_ - options_.step);
  }
  if (next != bias_) {
    bias_ = next;
    last_change_ = now;
  }
  return bias_;
}

double LoadBiasController::bias() const {
  absl::MutexLock lock(&mu_);
  return bias_;
}

}  // namespace mmfuse::batching
