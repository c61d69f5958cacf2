#include "model/branch_policy.h"

#include <vector>

#include "gmock/gmock.h"
#include "model/default_config.h"
#include "model/flops.h"
#include "gtest/gtest.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

using ::testing::HasSubstr;

// Branches text, audio, video, full (indices 0..3).
v1::ModelConfig Gated() {
  v1::ModelConfig config = testing::SmallModelConfig();
  AddDefaultBranches(&config);
  return config;
}

v1::ComputeBudget Budget(v1::BudgetLevel level, double max_gflops = 0) {
  v1::ComputeBudget budget;
  budget.set_level(level);
  budget.set_max_gflops(max_gflops);
  return budget;
}

constexpr int kText = 0, kAudio = 1, kVideo = 2, kFull = 3;
const std::vector<int64_t> kAll = {10, 8, 6};  // audio, video, text frames

TEST(BranchPolicyTest, SingleBranchModelNeedsNoGate) {
  BranchPolicy policy(testing::SmallModelConfig());
  EXPECT_FALSE(policy.NeedsGate(Budget(v1::BUDGET_LEVEL_BALANCED)));
  auto choice = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_FAST), {}, 0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->branch, 0);
  EXPECT_FALSE(choice->gate_ran);
}

TEST(BranchPolicyTest, AccurateTakesTheFullBranchWithoutTheGate) {
  BranchPolicy policy(Gated());
  EXPECT_FALSE(policy.NeedsGate(Budget(v1::BUDGET_LEVEL_ACCURATE)));
  auto choice = policy.Choose({0, 8, 0}, Budget(v1::BUDGET_LEVEL_ACCURATE), {}, 0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->branch, kFull);  // Even for a video-only request.
  EXPECT_FALSE(choice->gate_ran);
}

TEST(BranchPolicyTest, BalancedFollowsTheGate) {
  BranchPolicy policy(Gated());
  const std::vector<float> logits = {0.1f, 3.0f, 0.2f, 1.0f};
  auto choice = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_BALANCED), logits, 0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->branch, kAudio);
  EXPECT_TRUE(choice->gate_ran);
}

TEST(BranchPolicyTest, BranchesNeedingAMissingModalityAreMaskedOut) {
  BranchPolicy policy(Gated());
  // The gate prefers audio, but the request has no audio: among text and
  // full (always usable), text scores next.
  const std::vector<float> logits = {2.0f, 9.0f, 5.0f, 1.0f};
  auto choice = policy.Choose({0, 0, 6}, Budget(v1::BUDGET_LEVEL_BALANCED), logits, 0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->branch, kText);
}

TEST(BranchPolicyTest, FastAndLoadBiasShiftTowardCheapBranches) {
  BranchPolicy policy(Gated());
  const std::vector<float> logits = {0.0f, -5.0f, -5.0f, 0.5f};  // Full slightly preferred.
  auto balanced = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_BALANCED), logits, 0);
  auto fast = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_FAST), logits, 0);
  auto loaded = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_BALANCED), logits, 2.0);
  ASSERT_TRUE(balanced.ok() && fast.ok() && loaded.ok());
  EXPECT_EQ(balanced->branch, kFull);
  EXPECT_EQ(fast->branch, kText);
  EXPECT_EQ(loaded->branch, kText);
}

TEST(BranchPolicyTest, MaxGflopsPicksTheBestBranchWithinIt) {
  BranchPolicy policy(Gated());
  const std::vector<float> logits = {0.0f, 1.0f, 0.0f, 5.0f};
  const double full = policy.Gflops(kFull, true, kAll);
  const double audio = policy.Gflops(kAudio, true, kAll);
  ASSERT_LT(audio, full);
  auto choice = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_BALANCED, (audio + full) / 2),
                              logits, 0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->branch, kAudio);  // Full is preferred but over the cap.
}

TEST(BranchPolicyTest, MaxGflopsBelowEveryBranchNamesTheCheapest) {
  BranchPolicy policy(Gated());
  auto choice = policy.Choose(kAll, Budget(v1::BUDGET_LEVEL_BALANCED, 1e-9), {0, 0, 0, 0}, 0);
  ASSERT_FALSE(choice.ok());
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(choice.status().message()),
              HasSubstr("budget.max_gflops=1e-09 is below the cheapest branch"));
}

TEST(BranchPolicyTest, GateCostStaysUnderTwoPercentOfTheFullBranch) {
  for (v1::GatePooling pooling : {v1::GATE_POOLING_MEAN, v1::GATE_POOLING_MEAN_MAX}) {
    v1::ModelConfig config = DefaultModelConfig();
    AddDefaultBranches(&config);
    config.mutable_gate()->set_pooling(pooling);
    BranchPolicy policy(config);
    // The reference lengths, and the generated data's typical ones.
    for (const std::vector<int64_t>& frames :
         {ReferenceFrames(config), std::vector<int64_t>{40, 20, 14}}) {
      const double gate = policy.Gflops(kFull, true, frames) - policy.Gflops(kFull, false, frames);
      EXPECT_GT(gate, 0);
      EXPECT_LT(gate, 0.02 * policy.Gflops(kFull, false, frames)) << v1::GatePooling_Name(pooling);
    }
  }
}

TEST(BranchPolicyTest, MeanMaxPoolingWidensOnlyTheGateHiddenLayerInput) {
  v1::ModelConfig config = DefaultModelConfig();
  AddDefaultBranches(&config);
  const std::vector<int64_t> frames = ReferenceFrames(config);
  const int64_t mean = GateMacs(config, frames);
  config.mutable_gate()->set_pooling(v1::GATE_POOLING_MEAN_MAX);
  // Each modality's summary doubles (16 -> 32) into the 32-wide hidden layer.
  EXPECT_EQ(GateMacs(config, frames) - mean, config.modalities_size() * 16 * 32);
}

}  // namespace
}  // namespace mmfuse::model
