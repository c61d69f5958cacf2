#include "client/bench/arrival.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace mmfuse::bench {
namespace {

ArrivalSchedule MakeSchedule(double rate, Arrival arrival, uint64_t seed = 1) {
  ArrivalOptions options;
  options.rate_rps = rate;
  options.arrival = arrival;
  options.seed = seed;
  absl::StatusOr<ArrivalSchedule> schedule = ArrivalSchedule::Create(options);
  EXPECT_TRUE(schedule.ok()) << schedule.status();
  return *schedule;
}

TEST(ArrivalScheduleTest, ConstantRateSendsRequestKAtExactlyKOverRate) {
  ArrivalSchedule at100 = MakeSchedule(100, Arrival::kConstant);
  ArrivalSchedule at250 = MakeSchedule(250, Arrival::kConstant);
  for (int64_t k = 0; k < 200000; ++k) {
    ASSERT_EQ(at100.Next(), absl::Milliseconds(10 * k)) << k;
    ASSERT_EQ(at250.Next(), absl::Microseconds(4000 * k)) << k;
  }
  EXPECT_EQ(at100.index(), 200000);
}

TEST(ArrivalScheduleTest, ConstantRateDoesNotDriftAtAnAwkwardRate) {
  ArrivalSchedule schedule = MakeSchedule(3, Arrival::kConstant);
  absl::Duration last;
  for (int k = 0; k <= 3000000; ++k) last = schedule.Next();
  EXPECT_EQ(last, absl::Seconds(1000000));  // Request 3e6 at exactly 1e6 s.
}

TEST(ArrivalScheduleTest, PoissonHasTheRequestedMeanRate) {
  constexpr int kArrivals = 200000;
  constexpr double kRate = 500;
  ArrivalSchedule schedule = MakeSchedule(kRate, Arrival::kPoisson, /*seed=*/42);
  absl::Duration previous = schedule.Next();
  EXPECT_EQ(previous, absl::ZeroDuration());
  int short_gaps = 0;
  for (int i = 1; i < kArrivals; ++i) {
    const absl::Duration next = schedule.Next();
    ASSERT_GE(next, previous);
    // Exponential gaps: P(gap < mean) = 1 - 1/e ~ 0.632.
    if (next - previous < absl::Seconds(1 / kRate)) ++short_gaps;
    previous = next;
  }
  const double rate = (kArrivals - 1) / absl::ToDoubleSeconds(previous);
  EXPECT_NEAR(rate, kRate, 0.01 * kRate) << "seed 42";
  EXPECT_NEAR(static_cast<double>(short_gaps) / kArrivals, 1 - std::exp(-1.0), 0.01) << "seed 42";
}

TEST(ArrivalScheduleTest, PoissonIsDeterministicForASeed) {
  ArrivalSchedule a = MakeSchedule(100, Arrival::kPoisson, 7);
  ArrivalSchedule b = MakeSchedule(100, Arrival::kPoisson, 7);
  ArrivalSchedule c = MakeSchedule(100, Arrival::kPoisson, 8);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration x = a.Next();
    ASSERT_EQ(x, b.Next()) << i;
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(ArrivalScheduleTest, RejectsRatesOutOfRange) {
  for (double rate : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity(), 2 * kMaxRateRps}) {
    ArrivalOptions options;
    options.rate_rps = rate;
    absl::StatusOr<ArrivalSchedule> schedule = ArrivalSchedule::Create(options);
    ASSERT_FALSE(schedule.ok()) << rate;
    EXPECT_EQ(schedule.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(schedule.status().message().find("rate_rps="), std::string::npos);
  }
}

}  // namespace
}  // namespace mmfuse::bench
