#include "client/bench/arrival.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace mmfuse::bench {

absl::StatusOr<ArrivalSchedule> ArrivalSchedule::Create(const ArrivalOptions& options) {
  if (!std::isfinite(options.rate_rps) || options.rate_rps <= 0 || options.rate_rps > kMaxRateRps) {
    return absl::InvalidArgumentError(
        absl::StrCat("rate_rps=", options.rate_rps, " must be in (0, ", kMaxRateRps, "]"));
  }
  return ArrivalSchedule(options);
}

ArrivalSchedule::ArrivalSchedule(const ArrivalOptions& options)
    : options_(options), rng_(options.seed), gap_(options.rate_rps) {}

absl::Duration ArrivalSchedule::Next() {
  const int64_t k = index_++;
  if (options_.arrival == Arrival::kConstant) {
    return absl::Seconds(static_cast<double>(k) / options_.rate_rps);
  }
  const double offset = poisson_seconds_;
  poisson_seconds_ += gap_(rng_);
  return absl::Seconds(offset);
}

}  // namespace mmfuse::bench
