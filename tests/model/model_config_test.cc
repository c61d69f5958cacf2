#include "model/model_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/default_config.h"
#include "model/flops.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

using ::testing::HasSubstr;

TEST(ModelConfigTest, DefaultAndSmallConfigsAreValid) {
  EXPECT_TRUE(ValidateModelConfig(DefaultModelConfig()).ok());
  EXPECT_TRUE(ValidateModelConfig(testing::SmallModelConfig()).ok());
}

TEST(ModelConfigTest, TextFormatRoundTrip) {
  const v1::ModelConfig config = DefaultModelConfig();
  absl::StatusOr<v1::ModelConfig> parsed = ParseModelConfig(FormatModelConfig(config));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->SerializeAsString(), config.SerializeAsString());
}

TEST(ModelConfigTest, ParseErrorNamesTheLine) {
  absl::StatusOr<v1::ModelConfig> parsed = ParseModelConfig("name: \"x\"\nnum_clases: 3\n");
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(std::string(parsed.status().message()), HasSubstr("line 2"));
}

struct BadConfigCase {
  const char* what;
  void (*mutate)(v1::ModelConfig*);
  const char* message;
};

class ModelConfigValidationTest : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(ModelConfigValidationTest, ErrorNamesTheField) {
  v1::ModelConfig config = testing::SmallModelConfig();
  GetParam().mutate(&config);
  absl::Status status = ValidateModelConfig(config);
  ASSERT_FALSE(status.ok()) << GetParam().what;
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message)) << status;
}

INSTANTIATE_TEST_SUITE_P(
    BadConfigs, ModelConfigValidationTest,
    ::testing::Values(
        BadConfigCase{"no modalities", [](v1::ModelConfig* c) { c->clear_modalities(); },
                      "modalities is empty"},
        BadConfigCase{"duplicate modality",
                      [](v1::ModelConfig* c) { c->mutable_modalities(1)->set_name("audio"); },
                      "modalities[1].name=\"audio\" is a duplicate"},
        BadConfigCase{"zero dim",
                      [](v1::ModelConfig* c) { c->mutable_modalities(0)->set_feature_dim(0); },
                      "modalities[0].feature_dim"},
        BadConfigCase{"huge max_frames",
                      [](v1::ModelConfig* c) { c->mutable_modalities(2)->set_max_frames(1 << 20); },
                      "modalities[2].max_frames=1048576 is outside [1, 65536]"},
        BadConfigCase{"one class", [](v1::ModelConfig* c) { c->set_num_classes(1); },
                      "num_classes=1 must be >= 2"},
        BadConfigCase{"heads do not divide",
                      [](v1::ModelConfig* c) { c->mutable_transformer()->set_num_heads(3); },
                      "transformer.d_model=16 is not divisible by transformer.num_heads=3"},
        BadConfigCase{"no fusion layer",
                      [](v1::ModelConfig* c) { c->mutable_transformer()->set_fusion_layers(0); },
                      "transformer.fusion_layers"},
        BadConfigCase{"unknown branch modality",
                      [](v1::ModelConfig* c) {
                        v1::BranchConfig* b = c->add_branches();
                        b->set_name("b");
                        b->add_modalities("smell");
                      },
                      "unknown modality \"smell\""},
        BadConfigCase{"branch deeper than the limit",
                      [](v1::ModelConfig* c) {
                        v1::BranchConfig* b = c->add_branches();
                        b->set_name("deep");
                        b->set_fusion_layers(65);
                      },
                      "branches[0] (\"deep\"): unimodal_layers=0 and fusion_layers=65 must be <= 64"},
        BadConfigCase{"unknown gate pooling",
                      [](v1::ModelConfig* c) {
                        c->mutable_gate()->set_pooling(static_cast<v1::GatePooling>(7));
                      },
                      "gate.pooling=7 is not one of mean, mean_max"},
        BadConfigCase{"no fusion mode",
                      [](v1::ModelConfig* c) { c->set_fusion_mode(v1::FUSION_MODE_UNSPECIFIED); },
                      "fusion_mode=0 is not set; choose one of concat, late, mbt, sft, locomt, pmf"},
        // The batching config takes the server flags' ranges (0 = not given).
        BadConfigCase{"huge batch",
                      [](v1::ModelConfig* c) { c->mutable_batching()->set_max_batch_size(5000); },
                      "batching.max_batch_size=5000 is outside [1, 4096]"},
        BadConfigCase{"long delay",
                      [](v1::ModelConfig* c) {
                        c->mutable_batching()->set_max_queue_delay_us(20'000'000);
                      },
                      "batching.max_queue_delay_us=20000000 is outside [0, 10000000]"},
        BadConfigCase{"too many priorities",
                      [](v1::ModelConfig* c) { c->mutable_batching()->set_priority_levels(17); },
                      "batching.priority_levels=17 is outside [1, 16]"},
        BadConfigCase{"long queue time",
                      [](v1::ModelConfig* c) {
                        c->mutable_batching()->set_max_queue_time_ms(90'000'000);
                      },
                      "batching.max_queue_time_ms=90000000 is outside [1, 86400000]"},
        BadConfigCase{"default priority beyond the levels",
                      [](v1::ModelConfig* c) {
                        c->mutable_batching()->set_priority_levels(2);
                        c->mutable_batching()->set_default_priority(3);
                      },
                      "batching.default_priority=3 is outside [1, 2]"},
        BadConfigCase{"bucket edges out of order",
                      [](v1::ModelConfig* c) {
                        c->mutable_batching()->add_length_bucket_edges(64);
                        c->mutable_batching()->add_length_bucket_edges(32);
                      },
                      "batching.length_bucket_edges must increase from >= 1; 32 follows 64"},
        BadConfigCase{"bucket ratio too fine",
                      [](v1::ModelConfig* c) { c->mutable_batching()->set_length_bucket_ratio(1.01f); },
                      "batching.length_bucket_ratio=1.01 is outside [1.05, 16] (0 = none)"}));

// The batcher's grouping key: equal for requests that carry the same
// modalities with lengths in the same geometric buckets, different otherwise;
// tokens count the class token and frames of present modalities only.
TEST(BatchingKeyTest, GroupsByModalitiesPresentAndLengthBucket) {
  const Branch full{"full", {0, 1, 2}};
  const BatchingKey all = BatchingKeyOf(full, {16, 8, 4}, 2);
  EXPECT_EQ(all.tokens, 17 + 9 + 5);
  // Same buckets of ratio 2 ([16, 32), [8, 16), [4, 8)): same group.
  EXPECT_EQ(BatchingKeyOf(full, {31, 15, 7}, 2).input_group, all.input_group);
  // One modality in the next bucket, or absent: another group each.
  EXPECT_NE(BatchingKeyOf(full, {32, 8, 4}, 2).input_group, all.input_group);
  const BatchingKey no_video = BatchingKeyOf(full, {16, 0, 4}, 2);
  EXPECT_NE(no_video.input_group, all.input_group);
  EXPECT_EQ(no_video.tokens, 17 + 5);
  // Presence only (ratio 0): any lengths, one group per set of modalities.
  EXPECT_EQ(BatchingKeyOf(full, {16, 8, 4}, 0).input_group,
            BatchingKeyOf(full, {60, 30, 20}, 0).input_group);
  EXPECT_NE(BatchingKeyOf(full, {16, 0, 4}, 0).input_group,
            BatchingKeyOf(full, {16, 8, 4}, 0).input_group);
  // A branch sees only its own modalities.
  const Branch audio{"audio", {0}};
  EXPECT_EQ(BatchingKeyOf(audio, {16, 8, 4}, 2).input_group,
            BatchingKeyOf(audio, {16, 0, 0}, 2).input_group);
  EXPECT_EQ(BatchingKeyOf(audio, {16, 8, 4}, 2).tokens, 17);
}

TEST(ModelConfigTest, BranchesDefaultToOneFullBranch) {
  const std::vector<Branch> branches = ResolveBranches(testing::SmallModelConfig());
  ASSERT_EQ(branches.size(), 1u);
  EXPECT_EQ(branches[0].name, "full");
  EXPECT_EQ(branches[0].modalities, (std::vector<int>{0, 1, 2}));
}

TEST(ModelConfigTest, BranchesResolveInModelOrder) {
  v1::ModelConfig config = testing::SmallModelConfig();
  v1::BranchConfig* b = config.add_branches();
  b->set_name("text_audio");
  b->add_modalities("text");
  b->add_modalities("audio");
  const std::vector<Branch> branches = ResolveBranches(config);
  ASSERT_EQ(branches.size(), 1u);
  EXPECT_EQ(branches[0].modalities, (std::vector<int>{0, 2}));
}

TEST(ModelConfigTest, FusionLevelBranchesFuseLaterOverTheSameModalities) {
  v1::ModelConfig config = testing::SmallModelConfig();
  config.mutable_transformer()->set_unimodal_layers(1);
  config.mutable_transformer()->set_fusion_layers(2);
  AddFusionLevelBranches(&config);
  ASSERT_TRUE(ValidateModelConfig(config).ok());
  const std::vector<Branch> branches = ResolveBranches(config);
  ASSERT_EQ(branches.size(), 3u);
  EXPECT_EQ(branches[0].name, "full");
  EXPECT_EQ(branches[1].name, "fuse_last");
  EXPECT_EQ(branches[2].name, "late");
  for (const Branch& b : branches) EXPECT_EQ(b.modalities.size(), 3u) << b.name;
  // ACCURATE still means the first branch over every modality.
  EXPECT_EQ(FullBranch(branches), 0);

  const v1::ModelConfig fuse_last = ExpertConfig(config, branches[1]);
  EXPECT_EQ(fuse_last.transformer().unimodal_layers(), 2u);
  EXPECT_EQ(fuse_last.transformer().fusion_layers(), 1u);
  EXPECT_EQ(fuse_last.fusion_mode(), v1::FUSION_MODE_CONCAT);
  EXPECT_EQ(ExpertConfig(config, branches[2]).fusion_mode(), v1::FUSION_MODE_LATE);
  EXPECT_EQ(ExpertConfig(config, branches[0]).transformer().fusion_layers(), 2u);

  // Fusing later is cheaper: per-modality attention replaces joint attention.
  const std::vector<int64_t> frames = ReferenceFrames(config);
  EXPECT_LT(BranchMacs(config, 1, frames), BranchMacs(config, 0, frames));
  EXPECT_LT(BranchMacs(config, 2, frames), BranchMacs(config, 0, frames));
}

TEST(ModelConfigTest, FusionLevelBranchesFollowModalityBranches) {
  v1::ModelConfig config = testing::SmallModelConfig();
  AddDefaultBranches(&config);
  AddFusionLevelBranches(&config);
  std::vector<std::string> names;
  for (const Branch& b : ResolveBranches(config)) names.push_back(b.name);
  // One fusion layer: no fuse_last branch (it would equal the full one).
  EXPECT_THAT(names, ::testing::ElementsAre("text", "audio", "video", "full", "late"));
  EXPECT_EQ(names[FullBranch(ResolveBranches(config))], "full");
}

TEST(ModelConfigTest, FusionModeNameIsLowercase) {
  EXPECT_EQ(FusionModeName(v1::FUSION_MODE_CONCAT), "concat");
}

}  // namespace
}  // namespace mmfuse::model
