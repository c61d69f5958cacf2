#include "client/bench/histogram.h"

#include <cmath>
#include <cstdint>

#include "gtest/gtest.h"

namespace mmfuse::bench {
namespace {

// |actual - expected| <= 1% of expected.
void ExpectWithinOnePercent(int64_t actual, double expected) {
  EXPECT_LE(std::abs(static_cast<double>(actual) - expected), 0.01 * expected)
      << "actual " << actual << " expected " << expected;
}

TEST(LatencyHistogramTest, UniformOneToHundredThousandGivesPercentilesWithinOnePercent) {
  LatencyHistogram h;
  for (int64_t us = 1; us <= 100000; ++us) h.Record(us);
  EXPECT_EQ(h.count(), 100000);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100000);
  EXPECT_DOUBLE_EQ(h.mean(), 50000.5);
  ExpectWithinOnePercent(h.ValueAtQuantile(0.50), 50000);
  ExpectWithinOnePercent(h.ValueAtQuantile(0.90), 90000);
  ExpectWithinOnePercent(h.ValueAtQuantile(0.99), 99000);
  ExpectWithinOnePercent(h.ValueAtQuantile(0.999), 99900);
  EXPECT_EQ(h.ValueAtQuantile(1.0), 100000);
  EXPECT_EQ(h.ValueAtQuantile(0.0), 1);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t us = 0; us < 200; ++us) h.Record(us);
  EXPECT_EQ(h.ValueAtQuantile(0.5), 99);  // Rank 100 of 0..199.
  EXPECT_EQ(h.ValueAtQuantile(0.01), 1);  // Rank 2.
}

TEST(LatencyHistogramTest, RelativeErrorStaysBelowOnePercentUpToHundredsOfSeconds) {
  for (int64_t value = 1; value <= int64_t{500} * 1000 * 1000; value = value * 3 + 7) {
    LatencyHistogram h;
    h.Record(value);
    h.Record(value + 1);  // So the quantile is not just the clamped min/max.
    ExpectWithinOnePercent(h.ValueAtQuantile(0.5), static_cast<double>(value));
  }
}

TEST(LatencyHistogramTest, BucketsTileTheRangeWithBoundedWidth) {
  for (int i = 0; i < LatencyHistogram::NumBuckets(); ++i) {
    const int64_t low = LatencyHistogram::BucketLow(i);
    const int64_t high = LatencyHistogram::BucketHigh(i);
    ASSERT_LE(low, high) << i;
    ASSERT_EQ(LatencyHistogram::BucketIndex(low), i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(high), i);
    if (i + 1 < LatencyHistogram::NumBuckets()) {
      ASSERT_EQ(LatencyHistogram::BucketLow(i + 1), high + 1) << i;
    }
    ASSERT_LE(static_cast<double>(high - low + 1), std::max(1.0, low / 128.0)) << i;
  }
  EXPECT_EQ(LatencyHistogram::BucketHigh(LatencyHistogram::NumBuckets() - 1),
            LatencyHistogram::kMaxTrackable);
}

TEST(LatencyHistogramTest, HugeValuesClampToLastBucketButMaxStaysExact) {
  LatencyHistogram h;
  const int64_t huge = LatencyHistogram::kMaxTrackable * 4;
  h.Record(huge);
  EXPECT_EQ(h.max(), huge);
  EXPECT_EQ(h.ValueAtQuantile(1.0), huge);
  EXPECT_EQ(h.ValueAtQuantile(0.5), huge);  // Clamped to [min, max].
}

TEST(LatencyHistogramTest, NegativeCountsAsZeroAndEmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.ValueAtQuantile(0.5), 0);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.mean(), 0);
  h.Record(-5);
  EXPECT_EQ(h.count(), 1);
  EXPECT_EQ(h.max(), 0);
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverything) {
  LatencyHistogram a, b, all;
  for (int64_t v = 1; v < 5000; v += 3) {
    (v % 2 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) {
    EXPECT_EQ(a.ValueAtQuantile(q), all.ValueAtQuantile(q)) << q;
  }
  a.Clear();
  EXPECT_EQ(a.count(), 0);
  EXPECT_EQ(a.ValueAtQuantile(0.5), 0);
}

}  // namespace
}  // namespace mmfuse::bench
