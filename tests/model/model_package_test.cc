#include "model/model_package.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <torch/utils.h>

#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class ModelPackageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    torch::manual_seed(3);
    auto package = NewModelPackage(testing::SmallModelConfig(), data::GeneratedLabels());
    ASSERT_TRUE(package.ok()) << package.status();
    package_ = *package;
    package_->model->eval();
    data::Generator generator(testing::SmallGeneratorOptions(), 0);
    for (int i = 0; i < 6; ++i) examples_.push_back(generator.Next());
  }

  std::vector<float> Predict(const ModelPackage& package) {
    std::vector<const FeatureMap*> samples;
    for (const auto& e : examples_) samples.push_back(&e.features());
    auto probabilities = PredictProbabilities(package, samples, 0);
    EXPECT_TRUE(probabilities.ok()) << probabilities.status();
    return probabilities.ok() ? *probabilities : std::vector<float>{};
  }

  fs::path dir_;
  std::shared_ptr<ModelPackage> package_;
  std::vector<v1::Example> examples_;
};

TEST_F(ModelPackageTest, SaveThenLoadGivesIdenticalOutputs) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  absl::StatusOr<std::shared_ptr<ModelPackage>> loaded = LoadModelPackage(dir_.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->labels, package_->labels);
  EXPECT_EQ((*loaded)->config.SerializeAsString(), package_->config.SerializeAsString());
  const std::vector<float> before = Predict(*package_);
  ASSERT_EQ(before.size(), 60u);
  EXPECT_EQ(Predict(**loaded), before);  // Bit for bit.
}

TEST_F(ModelPackageTest, SaveLeavesNoTemporaryFiles) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename());
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("config.pbtxt", "weights.pt", "labels.txt"));
}

TEST_F(ModelPackageTest, MissingDirectoryIsNotFound) {
  auto loaded = LoadModelPackage((dir_ / "nowhere").string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ModelPackageTest, MissingWeightsAreNotFound) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  fs::remove(dir_ / "weights.pt");
  auto loaded = LoadModelPackage(dir_.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("weights.pt"));
}

TEST_F(ModelPackageTest, TruncatedWeightsAreDataLoss) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  fs::resize_file(dir_ / "weights.pt", fs::file_size(dir_ / "weights.pt") / 2);
  auto loaded = LoadModelPackage(dir_.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ModelPackageTest, WeightsOfAnotherArchitectureAreRefused) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  v1::ModelConfig wider = package_->config;
  wider.mutable_transformer()->set_d_model(32);
  std::ofstream(dir_ / "config.pbtxt") << FormatModelConfig(wider);
  auto loaded = LoadModelPackage(dir_.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("does not match config.pbtxt"));
}

TEST_F(ModelPackageTest, WrongLabelCountIsRefused) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  std::ofstream(dir_ / "labels.txt") << "a\nb\n";
  auto loaded = LoadModelPackage(dir_.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("has 2 labels"));
}

TEST_F(ModelPackageTest, InvalidConfigIsRefusedNamingTheField) {
  ASSERT_TRUE(SaveModelPackage(*package_, dir_.string()).ok());
  std::ofstream(dir_ / "config.pbtxt") << "num_classes: 10\n";
  auto loaded = LoadModelPackage(dir_.string());
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("modalities is empty"));
}

}  // namespace
}  // namespace mmfuse::model

namespace mmfuse::model {
namespace {

TEST(CopyWeightsTest, CopiesIntoTheSameArchitectureWithOtherTrainableFlags) {
  v1::ModelConfig config = testing::SmallModelConfig();
  config.set_fusion_mode(v1::FUSION_MODE_PMF);
  SeedRandom(1);
  auto from = NewModelPackage(config);
  v1::ModelConfig frozen = config;
  frozen.mutable_pmf()->set_train_prompts_only(true);
  SeedRandom(2);
  auto to = NewModelPackage(frozen);
  ASSERT_TRUE(from.ok() && to.ok());
  ASSERT_TRUE(CopyWeights(**from, to->get()).ok());
  const auto source = (*from)->model->named_parameters();
  for (const auto& p : (*to)->model->named_parameters()) {
    EXPECT_TRUE(p.value().equal(*source.find(p.key()))) << p.key();
  }
  EXPECT_LT(CountParameters(*(*to)->model), CountParameters(*(*from)->model));
}

TEST(CopyWeightsTest, OtherArchitectureIsRefusedNamingTheParameter) {
  auto from = NewModelPackage(testing::SmallModelConfig());
  v1::ModelConfig other = testing::SmallModelConfig();
  other.set_fusion_mode(v1::FUSION_MODE_LATE);
  auto to = NewModelPackage(other);
  ASSERT_TRUE(from.ok() && to.ok());
  absl::Status status = CopyWeights(**from, to->get());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("is missing"));
}

}  // namespace
}  // namespace mmfuse::model
