// ArrivalSchedule: the intended send times of an open-loop step, as offsets
// from its start. The runner sends request k at start + k-th offset whatever
// happened to earlier requests, and measures its latency from that intended
// time, so a slow server cannot slow the load down and hide its own latency
// (no "coordinated omission").
//
//   constant: offset k = k / rate exactly (computed from k, so no rounding
//             accumulates over a long run).
//   poisson:  offset 0 = 0, then independent exponential gaps of mean
//             1 / rate, from a generator seeded by `seed`: the same options
//             give the same schedule.
//
// Thread-safety: thread-compatible.
#ifndef MMFUSE_CLIENT_BENCH_ARRIVAL_H_
#define MMFUSE_CLIENT_BENCH_ARRIVAL_H_

#include <cstdint>
#include <random>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/bench/step_result.h"

namespace mmfuse::bench {

struct ArrivalOptions {
  // Mean requests per second. In (0, kMaxRateRps]. Default 100.
  double rate_rps = 100;
  // Gap distribution. Default constant.
  Arrival arrival = Arrival::kConstant;
  // Seeds the Poisson gaps. Default 1.
  uint64_t seed = 1;
};

// Highest rate accepted: one request per microsecond.
inline constexpr double kMaxRateRps = 1e6;

class ArrivalSchedule {
 public:
  // Fails with INVALID_ARGUMENT naming `rate_rps` if it is out of range.
  static absl::StatusOr<ArrivalSchedule> Create(const ArrivalOptions& options);

  // The intended offset of the next request (request index() before the
  // call); non-decreasing.
  absl::Duration Next();
  // Requests scheduled so far.
  int64_t index() const { return index_; }

 private:
  explicit ArrivalSchedule(const ArrivalOptions& options);

  ArrivalOptions options_;
  int64_t index_ = 0;
  double poisson_seconds_ = 0;  // Offset of the next Poisson arrival.
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
};

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_ARRIVAL_H_
