// `mmfuse tune` end to end on a small package: the closed loop it measures
// with, and the config it writes. Figures depend on the machine, so these
// tests check what is measured and written, never how fast.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/classifier_client.h"
#include "data/dataset_io.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "server/served_model.h"
#include "tests/testing/small_model.h"
#include "tests/testing/test_package.h"
#include "tuning/closed_loop.h"
#include "tuning/served_trials.h"
#include "tuning/tune_command.h"

namespace mmfuse::tuning {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::vector<v1::ClassifyRequest> SmallRequests(int n) {
  std::vector<v1::ClassifyRequest> requests;
  for (const v1::Example& example : testing::SmallExamples(n, /*stream=*/3)) {
    requests.push_back(client::RequestFromExample(example));
  }
  return requests;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(ClosedLoopTest, AnswersEveryRequestAndReportsTheBatchesTheyRanIn) {
  server::ServingOptions serving;
  serving.workers = 1;
  serving.max_batch_size = 4;
  serving.max_queue_delay_us = 0;
  auto served = server::ServedModel::Create(testing::SmallPackage(), serving);
  ASSERT_TRUE(served.ok()) << served.status();
  ClosedLoopOptions options;
  options.concurrency = 6;
  options.warmup = absl::Milliseconds(20);
  options.duration = absl::Milliseconds(200);
  auto result = RunClosedLoop(**served, SmallRequests(10), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->answered, 0);
  EXPECT_EQ(result->failed, 0) << result->first_error;
  EXPECT_GE(result->mean_batch, 1.0);
  EXPECT_LE(result->mean_batch, 4.0);
  EXPECT_LE(result->p50, result->p99);
  EXPECT_GE(result->answered, options.min_answers);
  EXPECT_GE(result->window, options.duration);
  EXPECT_NEAR(result->throughput, result->answered / absl::ToDoubleSeconds(result->window), 1e-6);
}

TEST(ClosedLoopTest, TheWindowLastsUntilItHasItsAnswers) {
  server::ServingOptions serving;
  serving.workers = 1;
  auto served = server::ServedModel::Create(testing::SmallPackage(), serving);
  ASSERT_TRUE(served.ok()) << served.status();
  ClosedLoopOptions options;
  options.concurrency = 1;
  options.warmup = absl::ZeroDuration();
  options.duration = absl::Nanoseconds(1);  // Over before any answer can arrive.
  options.min_answers = 7;
  auto result = RunClosedLoop(**served, SmallRequests(3), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(result->answered, 7);
  EXPECT_GT(result->throughput, 0);
  EXPECT_GT(result->p50, absl::ZeroDuration());
}

TEST(ClosedLoopTest, CountsRefusedRequestsWithTheirError) {
  auto served = server::ServedModel::Create(testing::SmallPackage(), server::ServingOptions{});
  ASSERT_TRUE(served.ok()) << served.status();
  std::vector<v1::ClassifyRequest> requests = SmallRequests(1);
  (*requests[0].mutable_features())["smell"] = requests[0].features().begin()->second;
  ClosedLoopOptions options;
  options.concurrency = 2;
  options.warmup = absl::ZeroDuration();
  options.duration = absl::Milliseconds(50);
  auto result = RunClosedLoop(**served, requests, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->answered, 0);
  EXPECT_GT(result->failed, 0);
  EXPECT_EQ(result->first_error.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result->first_error.message(), HasSubstr("smell"));

  options.concurrency = 0;
  auto refused = RunClosedLoop(**served, requests, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("concurrency=0 is outside [1, 1024]"));
  options.concurrency = 1;
  options.min_answers = 0;
  refused = RunClosedLoop(**served, requests, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("min_answers=0 must be >= 1"));
}

class TuneCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("TuneCommandTest_") +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto package = testing::SmallPackage();
    ASSERT_NE(package, nullptr);
    ASSERT_TRUE(model::SaveModelPackage(*package, (dir_ / "model").string()).ok());
    ASSERT_TRUE(
        data::WriteDataset((dir_ / "data.mmds").string(), testing::SmallExamples(30, 3)).ok());
    options_.model_dir = (dir_ / "model").string();
    options_.data = (dir_ / "data.mmds").string();
    options_.table_out = (dir_ / "table.md").string();
    options_.search.batch_sizes = {1, 4};
    options_.search.bucket_ratios = {0, 2};
    options_.search.delays_us = {0};
    options_.search.token_multiples = {0, 4};
    options_.search.min_gain = 0;
    options_.search.confirm_repeats = 1;
    options_.search.progress = [](const std::string&) {};
    options_.trials.workers = 1;
    options_.trials.concurrency = 4;
    options_.trials.trial = absl::Milliseconds(60);
    options_.trials.warmup = absl::Milliseconds(10);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  TuneCommandOptions options_;
};

TEST_F(TuneCommandTest, WritesTheChosenBatchingAndTheTableIntoTheConfig) {
  ASSERT_TRUE(RunTuneCommand(options_).ok());
  auto config = model::ReadModelConfig((dir_ / "model" / "config.pbtxt").string());
  ASSERT_TRUE(config.ok()) << config.status();
  const v1::TuningRecord& record = config->tuning();
  ASSERT_GE(record.trials_size(), 2);
  EXPECT_EQ(record.trials(0).step(), "baseline");
  EXPECT_EQ(record.trials(0).max_batch_size(), 1u);
  for (const v1::TuningTrial& trial : record.trials()) {
    EXPECT_GT(trial.throughput(), 0) << trial.DebugString();
    EXPECT_GT(trial.low_load_p50_us(), 0) << trial.DebugString();
  }
  ASSERT_LT(record.chosen_trial(), static_cast<uint32_t>(record.trials_size()));
  const v1::TuningTrial& chosen = record.trials(record.chosen_trial());
  EXPECT_EQ(config->batching().max_batch_size(), chosen.max_batch_size());
  EXPECT_EQ(config->batching().max_queue_delay_us(), chosen.max_queue_delay_us());
  EXPECT_FLOAT_EQ(config->batching().length_bucket_ratio(), chosen.length_bucket_ratio());
  EXPECT_EQ(config->batching().max_batch_tokens(), chosen.max_batch_tokens());
  EXPECT_EQ(record.workers(), 1u);
  EXPECT_EQ(record.concurrency(), 4u);
  EXPECT_FALSE(record.date().empty());
  EXPECT_THAT(record.machine(), HasSubstr("cores"));
  EXPECT_THAT(ReadFile(dir_ / "table.md"), HasSubstr("| baseline"));
  // Still a whole package that serves.
  auto reloaded = model::LoadModelPackage((dir_ / "model").string(), "cpu", "fp32");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_TRUE(server::ServedModel::Create(*reloaded, server::ServingOptions{}).ok());
}

TEST_F(TuneCommandTest, DryRunLeavesTheConfigAsItWas) {
  const std::string before = ReadFile(dir_ / "model" / "config.pbtxt");
  options_.dry_run = true;
  options_.search.token_multiples = {0};
  ASSERT_TRUE(RunTuneCommand(options_).ok());
  EXPECT_EQ(ReadFile(dir_ / "model" / "config.pbtxt"), before);
  EXPECT_THAT(ReadFile(dir_ / "table.md"), HasSubstr("| baseline"));
}

TEST_F(TuneCommandTest, BadOptionsNameWhatWasWrong) {
  TuneCommandOptions no_data = options_;
  no_data.data.clear();
  EXPECT_THAT(RunTuneCommand(no_data).message(), HasSubstr("--data is empty"));
  TuneCommandOptions no_workers = options_;
  no_workers.trials.workers = 0;
  EXPECT_THAT(RunTuneCommand(no_workers).message(), HasSubstr("workers=0 is outside [1, 256]"));
  TuneCommandOptions bad_ratio = options_;
  bad_ratio.search.bucket_ratios = {20};
  EXPECT_THAT(RunTuneCommand(bad_ratio).message(), HasSubstr("bucket_ratios has 20"));
  TuneCommandOptions missing = options_;
  missing.model_dir = (dir_ / "nowhere").string();
  EXPECT_FALSE(RunTuneCommand(missing).ok());
}

}  // namespace
}  // namespace mmfuse::tuning
