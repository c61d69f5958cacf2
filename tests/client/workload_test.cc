#include "client/bench/workload.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/dataset_io.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/small_model.h"

namespace mmfuse::bench {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ModelInfo of tests/testing/small_model.h's architecture.
v1::ModelInfo SmallInfo() {
  v1::ModelInfo info;
  info.set_name("small");
  const v1::ModelConfig config = testing::SmallModelConfig();
  for (const auto& m : config.modalities()) {
    v1::ModalityInfo* out = info.add_modalities();
    out->set_name(m.name());
    out->set_feature_dim(m.feature_dim());
    out->set_max_frames(m.max_frames());
  }
  return info;
}

std::string ModalityKey(const v1::ClassifyRequest& request) {
  std::vector<std::string> names;
  for (const auto& [name, features] : request.features()) names.push_back(name);
  std::sort(names.begin(), names.end());
  std::string key;
  for (const std::string& name : names) key += (key.empty() ? "" : "+") + name;
  return key;
}

TEST(BenchWorkloadTest, GeneratesRequestsShapedByTheModel) {
  WorkloadOptions options;
  options.samples = 20;
  options.top_k = 3;
  options.model = "small";
  absl::StatusOr<Workload> workload = BuildWorkload(options, SmallInfo());
  ASSERT_TRUE(workload.ok()) << workload.status();
  ASSERT_EQ(workload->requests.size(), 20u);
  for (const v1::ClassifyRequest& r : workload->requests) {
    EXPECT_TRUE(r.request_id().empty());
    EXPECT_EQ(r.top_k(), 3u);
    EXPECT_EQ(r.model(), "small");
    EXPECT_FALSE(r.has_budget());
    ASSERT_EQ(r.features().size(), 3u);
    EXPECT_EQ(r.features().at("audio").dim(), 6u);
    EXPECT_LE(r.features().at("audio").frames(), 24u);
    EXPECT_EQ(r.features().at("text").dim(), 4u);
    EXPECT_LE(r.features().at("text").frames(), 12u);
  }
}

TEST(BenchWorkloadTest, DefaultsTo512GeneratedSamples) {
  absl::StatusOr<Workload> workload = BuildWorkload(WorkloadOptions(), SmallInfo());
  ASSERT_TRUE(workload.ok()) << workload.status();
  EXPECT_EQ(workload->requests.size(), 512u);
}

TEST(BenchWorkloadTest, MixesAreAppliedInExactProportions) {
  WorkloadOptions options;
  options.samples = 100;
  options.seed = 5;
  options.modality_mix =
      *ParseModalityMix("text=0.3,audio+video=0.2,all=0.5", {"audio", "video", "text"});
  options.budget_mix = *ParseBudgetMix("fast=0.5,accurate=0.25,balanced=0.25");
  absl::StatusOr<Workload> workload = BuildWorkload(options, SmallInfo());
  ASSERT_TRUE(workload.ok()) << workload.status();
  std::map<std::string, int> by_modalities;
  std::map<v1::BudgetLevel, int> by_budget;
  for (const v1::ClassifyRequest& r : workload->requests) {
    ++by_modalities[ModalityKey(r)];
    ++by_budget[r.budget().level()];
  }
  EXPECT_EQ(by_modalities["text"], 30);
  EXPECT_EQ(by_modalities["audio+video"], 20);
  EXPECT_EQ(by_modalities["audio+text+video"], 50);
  EXPECT_EQ(by_budget[v1::BUDGET_LEVEL_FAST], 50);
  EXPECT_EQ(by_budget[v1::BUDGET_LEVEL_ACCURATE], 25);
  EXPECT_EQ(by_budget[v1::BUDGET_LEVEL_BALANCED], 25);

  // Same options, same requests (seed 5).
  absl::StatusOr<Workload> again = BuildWorkload(options, SmallInfo());
  ASSERT_TRUE(again.ok());
  for (size_t i = 0; i < workload->requests.size(); ++i) {
    ASSERT_TRUE(MessageDifferencer::Equals(again->requests[i], workload->requests[i])) << i;
  }
}

TEST(BenchWorkloadTest, ApportionCountsSumsToN) {
  EXPECT_THAT(ApportionCounts({0.5, 0.5}, 3), ElementsAre(2, 1));
  EXPECT_THAT(ApportionCounts({1.0 / 3, 1.0 / 3, 1.0 / 3}, 10), ElementsAre(4, 3, 3));
  EXPECT_THAT(ApportionCounts({0.1, 0.9}, 1), ElementsAre(0, 1));
  EXPECT_TRUE(ApportionCounts({}, 5).empty());
}

TEST(BenchWorkloadTest, ReplaysADatasetFileInOrder) {
  const std::string path =
      (std::filesystem::path(::testing::TempDir()) / "bench_workload.mmds").string();
  data::Generator generator(testing::SmallGeneratorOptions(), 0);
  std::vector<v1::Example> examples;
  for (int i = 0; i < 7; ++i) examples.push_back(generator.Next());
  ASSERT_TRUE(data::WriteDataset(path, examples).ok());

  WorkloadOptions options;
  options.data_path = path;
  absl::StatusOr<Workload> all = BuildWorkload(options, SmallInfo());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->requests.size(), 7u);
  for (int i = 0; i < 7; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(all->requests[i].features().at("video"),
                                           examples[i].features().at("video")));
    EXPECT_TRUE(all->requests[i].request_id().empty());
  }
  options.samples = 3;
  options.modality_mix = *ParseModalityMix("video=1", {"audio", "video", "text"});
  absl::StatusOr<Workload> first = BuildWorkload(options, SmallInfo());
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->requests.size(), 3u);
  for (const v1::ClassifyRequest& r : first->requests) EXPECT_EQ(ModalityKey(r), "video");
}

TEST(BenchWorkloadTest, ReportsUnusableInputs) {
  WorkloadOptions options;
  options.data_path = "/nonexistent/bench.mmds";
  EXPECT_FALSE(BuildWorkload(options, SmallInfo()).ok());

  v1::ModelInfo info = SmallInfo();
  info.add_modalities()->set_name("smell");
  absl::StatusOr<Workload> workload = BuildWorkload(WorkloadOptions(), info);
  ASSERT_FALSE(workload.ok());
  EXPECT_THAT(workload.status().message(), HasSubstr("modality \"smell\""));
  EXPECT_THAT(workload.status().message(), HasSubstr("--data"));

  options = WorkloadOptions();
  options.top_k = -1;
  workload = BuildWorkload(options, SmallInfo());
  ASSERT_FALSE(workload.ok());
  EXPECT_THAT(workload.status().message(), HasSubstr("top_k=-1"));
}

}  // namespace
}  // namespace mmfuse::bench
