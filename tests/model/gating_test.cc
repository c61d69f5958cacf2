// Gated packages (DynMM): only the chosen expert runs, the gate learns
// through the straight-through estimator, and lambda trades accuracy for
// compute.
#include <vector>

#include <torch/utils.h>

#include "data/generator.h"
#include "gtest/gtest.h"
#include "model/flops.h"
#include "model/inference.h"
#include "model/mac_counter.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/trainer.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

constexpr int kTextBranch = 0, kFullBranch = 3;

std::vector<v1::Example> Generate(int n, uint64_t stream) {
  data::GeneratorOptions options = testing::SmallGeneratorOptions();
  options.easy_fraction = 0.6;
  data::Generator generator(options, stream);
  std::vector<v1::Example> examples;
  for (int i = 0; i < n; ++i) examples.push_back(generator.Next());
  return examples;
}

std::shared_ptr<ModelPackage> GatedPackage() {
  v1::ModelConfig config = testing::SmallModelConfig();
  AddDefaultBranches(&config);
  SeedRandom(4);
  auto package = NewModelPackage(config);
  EXPECT_TRUE(package.ok()) << package.status();
  (*package)->model->eval();
  return *package;
}

TEST(GatingTest, OnlyTheChosenBranchRuns) {
  auto package = GatedPackage();
  const std::vector<v1::Example> examples = Generate(1, 9);
  const FeatureMap* features = &examples[0].features();
  std::vector<int64_t> frames(3, 0);
  for (const auto& [name, seq] : *features) {
    frames[ModalityIndex(package->config, name)] = seq.frames();
  }
  for (int branch : {kTextBranch, kFullBranch}) {
    MacCounter counter;
    ASSERT_TRUE(PredictProbabilities(*package, absl::MakeConstSpan(&features, 1), branch).ok());
    // Every executed multiply-add belongs to the branch's expert: the other
    // experts and the skipped modalities' encoders never ran.
    EXPECT_EQ(counter.macs(), BranchMacs(package->config, branch, frames)) << "branch " << branch;
  }
  EXPECT_LT(BranchMacs(package->config, kTextBranch, frames),
            BranchMacs(package->config, kFullBranch, frames) / 2);
}

TEST(GatingTest, GateLogitsHaveOneColumnPerBranch) {
  auto package = GatedPackage();
  const std::vector<v1::Example> examples = Generate(3, 9);
  std::vector<const FeatureMap*> features;
  for (const auto& e : examples) features.push_back(&e.features());
  auto logits = GateLogits(*package, features);
  ASSERT_TRUE(logits.ok()) << logits.status();
  EXPECT_EQ(logits->size(), 3u * 4u);
}

TEST(GatingTest, LambdaTradesAccuracyForCompute) {
  const std::vector<v1::Example> train = Generate(800, 0);
  const std::vector<v1::Example> test = Generate(300, 1);
  auto package = GatedPackage();
  TrainOptions experts;
  experts.epochs = 3;
  experts.batch_size = 16;
  experts.learning_rate = 5e-3;
  ASSERT_TRUE(Train(package.get(), train, {}, experts).ok());

  auto gate_parameters = [&] {
    std::vector<torch::Tensor> copies;
    for (const auto& p : package->model->gate()->parameters()) copies.push_back(p.clone());
    return copies;
  };
  GateTrainOptions gate;
  gate.epochs = 8;
  std::vector<double> full_fraction, gflops;
  for (double lambda : {0.0, 5.0}) {
    const std::vector<torch::Tensor> before = gate_parameters();
    gate.lambda = lambda;
    auto result = TrainGate(package.get(), train, test, gate);
    ASSERT_TRUE(result.ok()) << result.status();
    // Straight-through gradients reached every gate parameter.
    const std::vector<torch::Tensor> after = gate_parameters();
    for (size_t i = 0; i < after.size(); ++i) EXPECT_FALSE(after[i].equal(before[i])) << i;
    full_fraction.push_back(result->branch_fraction[kFullBranch]);
    gflops.push_back(result->mean_gflops);
  }
  // Free compute: the full branch dominates. Costly compute: it recedes.
  EXPECT_GT(full_fraction[0], full_fraction[1]);
  EXPECT_GT(gflops[0], gflops[1]);
}

}  // namespace
}  // namespace mmfuse::model
