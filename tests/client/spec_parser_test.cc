#include "client/bench/spec_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmfuse::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kModalities = {"audio", "video", "text"};

TEST(BenchSpecParserTest, ParsesModalityMixAndNormalizesWeights) {
  absl::StatusOr<std::vector<ModalityMixEntry>> mix =
      ParseModalityMix(" text = 3, audio+video=1 ,all=4", kModalities);
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 3u);
  EXPECT_EQ((*mix)[0].key, "text");
  EXPECT_THAT((*mix)[0].modalities, ElementsAre("text"));
  EXPECT_DOUBLE_EQ((*mix)[0].weight, 0.375);
  EXPECT_THAT((*mix)[1].modalities, ElementsAre("audio", "video"));
  EXPECT_DOUBLE_EQ((*mix)[1].weight, 0.125);
  EXPECT_EQ((*mix)[2].key, "all");
  EXPECT_TRUE((*mix)[2].modalities.empty());
  EXPECT_DOUBLE_EQ((*mix)[2].weight, 0.5);
}

TEST(BenchSpecParserTest, RejectsBadModalityMixesNamingTheProblem) {
  struct Case {
    const char* spec;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"", "is empty"},
           {"text=0.5,", "empty entry"},
           {"text", "entry \"text\" is not key=weight"},
           {"=1", "empty key"},
           {"text=abc", "weight \"abc\" of \"text\" is not a number"},
           {"text=nan", "is not a number"},
           {"text=-1", "must be > 0"},
           {"text=0", "must be > 0"},
           {"text=1,text=2", "key \"text\" appears more than once"},
           {"smell=1",
            "modality \"smell\" in key \"smell\" is not one of the model's modalities "
            "(audio, video, text)"},
           {"text+=1", "empty modality name"},
           {"text+text=1", "modality \"text\" repeats in key \"text+text\""},
       }) {
    absl::StatusOr<std::vector<ModalityMixEntry>> mix = ParseModalityMix(c.spec, kModalities);
    ASSERT_FALSE(mix.ok()) << c.spec;
    EXPECT_EQ(mix.status().code(), absl::StatusCode::kInvalidArgument) << c.spec;
    EXPECT_THAT(mix.status().message(), HasSubstr("--mix")) << c.spec;
    EXPECT_THAT(mix.status().message(), HasSubstr(c.message)) << c.spec;
  }
}

TEST(BenchSpecParserTest, ParsesBudgetMix) {
  absl::StatusOr<std::vector<BudgetMixEntry>> mix = ParseBudgetMix("fast=1,Accurate=1");
  ASSERT_TRUE(mix.ok()) << mix.status();
  ASSERT_EQ(mix->size(), 2u);
  EXPECT_EQ((*mix)[0].level, v1::BUDGET_LEVEL_FAST);
  EXPECT_EQ((*mix)[1].level, v1::BUDGET_LEVEL_ACCURATE);
  EXPECT_DOUBLE_EQ((*mix)[1].weight, 0.5);
}

TEST(BenchSpecParserTest, RejectsBadBudgetMixes) {
  absl::StatusOr<std::vector<BudgetMixEntry>> mix = ParseBudgetMix("cheap=1");
  ASSERT_FALSE(mix.ok());
  EXPECT_THAT(mix.status().message(), HasSubstr("--budget_mix"));
  EXPECT_THAT(mix.status().message(),
              HasSubstr("budget \"cheap\" is not one of accurate, balanced, fast"));
  mix = ParseBudgetMix("fast=1,FAST=2");
  ASSERT_FALSE(mix.ok());
  EXPECT_THAT(mix.status().message(), HasSubstr("budget \"fast\" appears more than once"));
}

TEST(BenchSpecParserTest, ParsesSweepLists) {
  absl::StatusOr<std::vector<int>> levels = ParseIntList("--concurrency", "1, 2,4", 1);
  ASSERT_TRUE(levels.ok()) << levels.status();
  EXPECT_THAT(*levels, ElementsAre(1, 2, 4));
  absl::StatusOr<std::vector<double>> rates = ParsePositiveList("--rate", "100,250.5");
  ASSERT_TRUE(rates.ok()) << rates.status();
  EXPECT_THAT(*rates, ElementsAre(100, 250.5));

  levels = ParseIntList("--concurrency", "1,0", 1);
  ASSERT_FALSE(levels.ok());
  EXPECT_THAT(levels.status().message(),
              HasSubstr("--concurrency=\"1,0\": 0 is below the minimum 1"));
  levels = ParseIntList("--concurrency", "two", 1);
  ASSERT_FALSE(levels.ok());
  EXPECT_THAT(levels.status().message(), HasSubstr("\"two\" is not an integer"));
  rates = ParsePositiveList("--rate", "100,-5");
  ASSERT_FALSE(rates.ok());
  EXPECT_THAT(rates.status().message(), HasSubstr("-5 must be > 0"));
}

TEST(BenchSpecParserTest, ParsesServerListsAndEnums) {
  absl::StatusOr<std::vector<std::string>> servers =
      ParseServerList("127.0.0.1:50051, [::1]:7000,host:1");
  ASSERT_TRUE(servers.ok()) << servers.status();
  EXPECT_THAT(*servers, ElementsAre("127.0.0.1:50051", "[::1]:7000", "host:1"));
  for (const char* bad : {"localhost", "host:0", "host:70000", ":80", "a:1,,b:2"}) {
    EXPECT_FALSE(ParseServerList(bad).ok()) << bad;
  }
  EXPECT_EQ(*ParseArrival("Poisson"), Arrival::kPoisson);
  EXPECT_EQ(*ParseRpcKind("stream"), RpcKind::kStream);
  EXPECT_THAT(ParseArrival("bursty").status().message(),
              HasSubstr("--arrival=\"bursty\" is not one of constant, poisson"));
  EXPECT_THAT(ParseRpcKind("bidi").status().message(),
              HasSubstr("--rpc=\"bidi\" is not one of unary, stream"));
}

}  // namespace
}  // namespace mmfuse::bench
