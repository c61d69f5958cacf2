#include "model/trainer.h"

#include <vector>

#include <torch/utils.h>

#include "data/generator.h"
#include "gtest/gtest.h"
#include "model/inference.h"
#include "model/model_package.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

std::shared_ptr<ModelPackage> FreshPackage(uint64_t seed) {
  SeedRandom(seed);
  auto package = NewModelPackage(testing::SmallModelConfig());
  EXPECT_TRUE(package.ok()) << package.status();
  return *package;
}

TrainOptions ShortTraining() {
  TrainOptions options;
  options.epochs = 5;
  options.batch_size = 16;
  options.learning_rate = 5e-3;
  options.seed = 11;
  return options;
}

TEST(TrainerTest, ShortTrainingBeatsChanceByAWideMargin) {
  const std::vector<v1::Example> train = testing::SmallExamples(1500, 0);
  const std::vector<v1::Example> test = testing::SmallExamples(300, 1);
  auto package = FreshPackage(5);
  auto before = Evaluate(*package, test);
  ASSERT_TRUE(before.ok()) << before.status();
  auto after = Train(package.get(), train, test, ShortTraining());
  ASSERT_TRUE(after.ok()) << after.status();
  // Ten classes: chance is 0.1.
  EXPECT_GT(after->accuracy, 0.5) << "seed 5, training seed 11";
  EXPECT_LT(after->mean_loss, before->mean_loss);
  EXPECT_EQ(after->examples, 300);
  EXPECT_GT(after->mean_gflops, 0);
}

TEST(TrainerTest, TrainingIsDeterministic) {
  const std::vector<v1::Example> train = testing::SmallExamples(200, 0);
  const std::vector<v1::Example> test = testing::SmallExamples(50, 1);
  TrainOptions options = ShortTraining();
  options.epochs = 1;
  auto a = FreshPackage(9);
  auto b = FreshPackage(9);
  ASSERT_TRUE(Train(a.get(), train, {}, options).ok());
  ASSERT_TRUE(Train(b.get(), train, {}, options).ok());
  std::vector<const FeatureMap*> samples;
  for (const auto& e : test) samples.push_back(&e.features());
  auto pa = PredictProbabilities(*a, samples, 0);
  auto pb = PredictProbabilities(*b, samples, 0);
  ASSERT_TRUE(pa.ok() && pb.ok());
  EXPECT_EQ(*pa, *pb);
}

TEST(TrainerTest, ExamplesThatDoNotFitTheModelAreRefused) {
  std::vector<v1::Example> train = testing::SmallExamples(4, 0);
  (*train[2].mutable_features())["audio"].set_dim(99);
  auto package = FreshPackage(1);
  auto result = Train(package.get(), train, {}, ShortTraining());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(result.status().message().find("train example 2"), std::string::npos)
      << result.status();
}

TEST(TrainerTest, LabelsBeyondTheModelAreRefused) {
  std::vector<v1::Example> train = testing::SmallExamples(4, 0);
  train[1].set_label(42);
  auto package = FreshPackage(1);
  auto result = Train(package.get(), train, {}, ShortTraining());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("label=42"), std::string::npos) << result.status();
}

}  // namespace
}  // namespace mmfuse::model
