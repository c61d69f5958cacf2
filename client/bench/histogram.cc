#include "client/bench/histogram.h"

#include <algorithm>
#include <cmath>

namespace mmfuse::bench {
namespace {

// 2^kSubBits buckets per power of two.
constexpr int kSubBits = 7;
constexpr int64_t kSubCount = int64_t{1} << kSubBits;  // 128
// Values below this are exact: one bucket each.
constexpr int64_t kLinearLimit = 2 * kSubCount;  // 256

int MostSignificantBit(uint64_t v) { return 63 - __builtin_clzll(v); }

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(NumBuckets(), 0) {}

int LatencyHistogram::NumBuckets() { return BucketIndex(kMaxTrackable) + 1; }

int LatencyHistogram::BucketIndex(int64_t value) {
  value = std::clamp<int64_t>(value, 0, kMaxTrackable);
  if (value < kLinearLimit) return static_cast<int>(value);
  const int shift = MostSignificantBit(static_cast<uint64_t>(value)) - kSubBits;  // >= 1
  const int64_t top = value >> shift;  // In [kSubCount, 2 * kSubCount).
  return static_cast<int>(kLinearLimit + (shift - 1) * kSubCount + (top - kSubCount));
}

int64_t LatencyHistogram::BucketLow(int index) {
  if (index < kLinearLimit) return index;
  const int64_t rest = index - kLinearLimit;
  const int shift = static_cast<int>(rest / kSubCount) + 1;
  const int64_t top = kSubCount + rest % kSubCount;
  return top << shift;
}

int64_t LatencyHistogram::BucketHigh(int index) {
  if (index < kLinearLimit) return index;
  const int shift = static_cast<int>((index - kLinearLimit) / kSubCount) + 1;
  return BucketLow(index) + (int64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(int64_t value) {
  value = std::max<int64_t>(value, 0);
  ++counts_[BucketIndex(value)];
  if (count_ == 0 || value < min_) min_ = value;
  max_ = std::max(max_, value);
  ++count_;
  sum_ += value;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Clear() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = min_ = max_ = sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
}

int64_t LatencyHistogram::ValueAtQuantile(double q) const {
  if (count_ == 0) return 0;
  if (!(q > 0)) return min_;  // Also NaN.
  if (q >= 1) return max_;
  const int64_t rank =
      std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
  int64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const int index = static_cast<int>(i);
      const int64_t mid = BucketLow(index) + (BucketHigh(index) - BucketLow(index)) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace mmfuse::bench
