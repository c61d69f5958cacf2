// The tuner's search on figures of the test's own: which setting it keeps,
// which it refuses, what it measures and what it writes.
#include "tuning/search.h"

#include <map>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmfuse::tuning {
namespace {

using ::testing::HasSubstr;

// A machine where batching pays up to batch 8, buckets of ratio 2 help,
// a queue delay adds itself to a lone request's latency, and token bounds
// change nothing.
class ModelMachine : public TrialRunner {
 public:
  absl::StatusOr<TrialFigures> Measure(const BatchingSetting& s) override {
    measured.push_back(s);
    TrialFigures f;
    f.throughput = Throughput(s.max_batch_size, s.length_bucket_ratio);
    f.p50 = absl::Microseconds(2000);
    f.p99 = absl::Microseconds(4000);
    f.mean_batch = s.max_batch_size;
    f.low_load_p50 = absl::Microseconds(1000 + s.max_queue_delay_us);
    if (s.max_batch_size == fail_at_batch) {
      f.failed = 3;
      f.first_error = absl::InternalError("boom");
    }
    return f;
  }
  absl::StatusOr<double> Throughput(const BatchingSetting& s) override {
    confirmed.push_back(s);
    if (s.max_batch_size == 1) return batch_one_side_by_side;
    return Throughput(s.max_batch_size, s.length_bucket_ratio);
  }

  double Throughput(int batch, double ratio) const {
    const std::map<int, double> gain = {{1, 1.0}, {2, 1.2}, {4, 1.5},
                                        {8, 1.7}, {16, 1.65}, {32, 1.6}};
    return 1000 * gain.at(batch) * (ratio == 2 ? 1.1 : 1.0);
  }

  std::vector<BatchingSetting> measured;
  std::vector<BatchingSetting> confirmed;
  int fail_at_batch = -1;
  double batch_one_side_by_side = 1000;
};

BatchingSetting Setting(int batch, int64_t delay_us, double ratio, int64_t tokens) {
  BatchingSetting s;
  s.max_batch_size = batch;
  s.max_queue_delay_us = delay_us;
  s.length_bucket_ratio = ratio;
  s.max_batch_tokens = tokens;
  return s;
}

TEST(SearchTest, KeepsTheFastestEligibleSettingOfEachStep) {
  ModelMachine machine;
  auto record = SearchBatching(machine, Setting(16, 0, 0, 0), /*mean_tokens=*/50, SearchOptions{});
  ASSERT_TRUE(record.ok()) << record.status();
  const BatchingSetting chosen = SettingOf(record->trials(record->chosen_trial()));
  // Batch 8 leads batch 16 and 32; ratio 2 beats none; the delays cost a lone
  // request 25% and 100% (over the 15% allowed); token bounds gain nothing.
  EXPECT_TRUE(chosen == Setting(8, 0, 2, 0)) << record->DebugString();
  EXPECT_EQ(record->trials(0).step(), "baseline");
  EXPECT_TRUE(SettingOf(record->trials(0)) == Setting(1, 0, 0, 0));
  EXPECT_NEAR(record->chosen_over_batch_one(), 1.87, 1e-3);
  EXPECT_EQ(record->confirm_repeats(), 3u);
  // Side by side: baseline and choice alternate.
  ASSERT_EQ(machine.confirmed.size(), 6u);
  for (size_t i = 0; i < machine.confirmed.size(); ++i) {
    EXPECT_EQ(machine.confirmed[i].max_batch_size, i % 2 == 0 ? 1 : 8);
  }
}

TEST(SearchTest, MeasuresEachSettingOnceAndRefusesDelaysThatSlowALoneRequest) {
  ModelMachine machine;
  auto record = SearchBatching(machine, Setting(16, 0, 0, 0), 50, SearchOptions{});
  ASSERT_TRUE(record.ok()) << record.status();
  for (size_t i = 0; i < machine.measured.size(); ++i) {
    for (size_t j = i + 1; j < machine.measured.size(); ++j) {
      EXPECT_FALSE(machine.measured[i] == machine.measured[j]) << "measured twice: trial " << j;
    }
  }
  // 6 batch sizes (1 is the baseline), 3 new ratios, 2 new delays, 2 token bounds.
  EXPECT_EQ(record->trials_size(), 6 + 3 + 2 + 2);
  int delays_refused = 0;
  for (const v1::TuningTrial& trial : record->trials()) {
    if (trial.max_queue_delay_us() > 0) {
      EXPECT_FALSE(trial.eligible());
      ++delays_refused;
    }
    if (trial.max_batch_tokens() > 0) {
      EXPECT_TRUE(trial.max_batch_tokens() == 200 || trial.max_batch_tokens() == 400)
          << "token bounds are 4x and 8x the mean of 50: " << trial.max_batch_tokens();
    }
  }
  EXPECT_EQ(delays_refused, 2);
}

TEST(SearchTest, KeepsBatchOneWhenTheChoiceLosesSideBySide) {
  ModelMachine machine;
  machine.batch_one_side_by_side = 5000;  // Batch 1 wins when run beside the choice.
  auto record = SearchBatching(machine, Setting(16, 0, 2, 0), 50, SearchOptions{});
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->chosen_trial(), 0u);
  EXPECT_LT(record->chosen_over_batch_one(), 1);
  v1::ModelConfig config;
  ApplyTuning(*record, &config);
  EXPECT_EQ(config.batching().max_batch_size(), 1u);
  EXPECT_THAT(FormatTuningTable(*record), HasSubstr("max batch 1 is kept"));
}

TEST(SearchTest, SettingsWithFailedRequestsAreNeverChosen) {
  ModelMachine machine;
  machine.fail_at_batch = 8;
  auto record = SearchBatching(machine, Setting(16, 0, 2, 0), 50, SearchOptions{});
  ASSERT_TRUE(record.ok()) << record.status();
  const v1::TuningTrial& chosen = record->trials(record->chosen_trial());
  EXPECT_EQ(chosen.max_batch_size(), 16u);  // The next fastest.
  for (const v1::TuningTrial& trial : record->trials()) {
    if (trial.max_batch_size() == 8) EXPECT_FALSE(trial.eligible());
  }
}

TEST(SearchTest, RefinesTheBestBatchedSettingEvenWhileBatchOneLeads) {
  ModelMachine machine;
  SearchOptions options;
  options.batch_sizes = {1, 2};
  options.min_gain = 0.5;  // Batch 2's 20% (or 32% with ratio 2) is not enough.
  auto record = SearchBatching(machine, Setting(16, 0, 0, 0), 50, options);
  ASSERT_TRUE(record.ok()) << record.status();
  // Baseline, batch 2, then batch 2 with ratios 1.5, 2 and 3, delays 250
  // and 1000 and token bounds 200 and 400 (batch 2, ratio 2 leading them).
  EXPECT_EQ(record->trials_size(), 2 + 3 + 2 + 2);
  for (int i = 1; i < record->trials_size(); ++i) {
    EXPECT_EQ(record->trials(i).max_batch_size(), 2u) << i;
  }
  EXPECT_FLOAT_EQ(record->trials(record->trials_size() - 1).length_bucket_ratio(), 2);
  EXPECT_EQ(record->chosen_trial(), 0u);
  EXPECT_TRUE(machine.confirmed.empty());
  EXPECT_THAT(FormatTuningTable(*record), HasSubstr("No setting beat max batch 1"));
}

TEST(SearchTest, BadOptionsNameTheOptionAndItsRange) {
  ModelMachine machine;
  struct Case {
    SearchOptions options;
    const char* message;
  };
  std::vector<Case> cases(6);
  cases[0].options.batch_sizes = {};
  cases[0].message = "batch_sizes is empty";
  cases[1].options.batch_sizes = {0, 4};
  cases[1].message = "batch_sizes=0 is outside [1, 4096]";
  cases[2].options.bucket_ratios = {1.01};
  cases[2].message = "outside [1.05, 16]";
  cases[3].options.delays_us = {-1};
  cases[3].message = "delays_us=-1 is outside";
  cases[4].options.min_gain = 1;
  cases[4].message = "min_gain=1 is outside [0, 1)";
  cases[5].options.confirm_repeats = 0;
  cases[5].message = "confirm_repeats=0 is outside [1, 20]";
  for (const Case& c : cases) {
    auto record = SearchBatching(machine, Setting(1, 0, 0, 0), 50, c.options);
    ASSERT_FALSE(record.ok());
    EXPECT_THAT(record.status().message(), HasSubstr(c.message));
  }
  EXPECT_TRUE(machine.measured.empty());
}

TEST(SearchTest, ApplyTuningSetsTheChosenFieldsAndKeepsTheOthers) {
  v1::TuningRecord record;
  v1::TuningTrial* baseline = record.add_trials();
  baseline->set_max_batch_size(1);
  v1::TuningTrial* best = record.add_trials();
  best->set_step("max_queue_delay_us");
  best->set_max_batch_size(8);
  best->set_max_queue_delay_us(250);
  best->set_length_bucket_ratio(1.5);
  best->set_max_batch_tokens(300);
  record.set_chosen_trial(1);
  v1::ModelConfig config;
  config.mutable_batching()->set_max_queue_size(77);
  config.mutable_batching()->add_preferred_batch_sizes(16);
  ApplyTuning(record, &config);
  EXPECT_EQ(config.batching().max_batch_size(), 8u);
  EXPECT_EQ(config.batching().max_queue_delay_us(), 250u);
  EXPECT_FLOAT_EQ(config.batching().length_bucket_ratio(), 1.5f);
  EXPECT_EQ(config.batching().max_batch_tokens(), 300u);
  EXPECT_EQ(config.batching().max_queue_size(), 77u);
  EXPECT_TRUE(config.batching().preferred_batch_sizes().empty());
  EXPECT_EQ(config.tuning().trials_size(), 2);
  EXPECT_THAT(FormatTuningTable(record), HasSubstr("max_queue_delay_us **(chosen)** | 8 | 250"));
}

}  // namespace
}  // namespace mmfuse::tuning
