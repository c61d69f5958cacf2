// LatencyHistogram: a log-linear ("HDR-style") histogram of non-negative
// integer values, here latencies in microseconds, with a bounded relative
// error and a fixed, small footprint (about 4,000 counters, 31 KiB).
//
// Layout: values below 256 each have their own bucket (exact); above, every
// power of two [2^e, 2^(e+1)) is split into 128 equal buckets, so a bucket is
// at most 1/128 of its lower bound wide. Quantiles report the bucket midpoint,
// clamped to the exact min and max: relative error <= 1/256 (~0.4%).
// Values up to kMaxTrackable (2^37 us, ~38 hours) are bucketed; larger ones
// count in the last bucket, while max() stays exact.
//
// Thread-safety: thread-compatible (callers lock, or keep one per thread and
// Merge()).
#ifndef MMFUSE_CLIENT_BENCH_HISTOGRAM_H_
#define MMFUSE_CLIENT_BENCH_HISTOGRAM_H_

#include <cstdint>
#include <vector>

namespace mmfuse::bench {

class LatencyHistogram {
 public:
  // Largest value with its own bucket; larger values share the last one.
  static constexpr int64_t kMaxTrackable = (int64_t{1} << 37) - 1;

  LatencyHistogram();

  // Counts one value; a negative value counts as 0.
  void Record(int64_t value);
  // Adds every count of `other`.
  void Merge(const LatencyHistogram& other);
  // Forgets every value.
  void Clear();

  int64_t count() const { return count_; }
  // Exact smallest / largest value recorded; 0 when empty.
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  // Exact mean (from the exact sum); 0 when empty.
  double mean() const;

  // The value at quantile `q` in [0, 1] (0.5 = median, 0.999 = p99.9): the
  // smallest recorded value v (to within the bucket error) such that at least
  // ceil(q * count) values are <= v. q <= 0 gives min(), q >= 1 max(); 0 when
  // empty.
  int64_t ValueAtQuantile(double q) const;

  // Bucket arithmetic, public for tests: the bucket holding `value`, and the
  // inclusive value range of bucket `index`.
  static int BucketIndex(int64_t value);
  static int64_t BucketLow(int index);
  static int64_t BucketHigh(int index);
  static int NumBuckets();

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  // Sum of recorded values (exact up to ~9e18, i.e. 1e10 values of 10 days).
  int64_t sum_ = 0;
};

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_HISTOGRAM_H_
