// Gated packages (DynMM): only the chosen expert runs, the gate learns
// through the straight-through estimator, and lambda trades accuracy for
// compute.
#include <cmath>
#include <string>
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

std::shared_ptr<ModelPackage> GatedPackage(
    v1::GatePooling pooling = v1::GATE_POOLING_UNSPECIFIED) {
  v1::ModelConfig config = testing::SmallModelConfig();
  AddDefaultBranches(&config);
  config.mutable_gate()->set_pooling(pooling);
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

// A text-only sample of two frames (text dim 4).
FeatureMap TwoTextFrames(const std::vector<float>& values) {
  FeatureMap features;
  v1::FeatureSequence& text = features["text"];
  text.set_frames(2);
  text.set_dim(4);
  for (float v : values) text.add_data(v);
  return features;
}

TEST(GatingTest, MeanMaxPoolingSeesACueTheMeanBlurs) {
  // Same mean frame, different extremes: a one-frame cue.
  const FeatureMap flat = TwoTextFrames({1, 1, 1, 1, 1, 1, 1, 1});
  const FeatureMap cue = TwoTextFrames({3, -1, 1, 1, -1, 3, 1, 1});
  const std::vector<const FeatureMap*> both = {&flat, &cue};
  for (v1::GatePooling pooling : {v1::GATE_POOLING_MEAN, v1::GATE_POOLING_MEAN_MAX}) {
    SCOPED_TRACE(v1::GatePooling_Name(pooling));
    auto logits = GateLogits(*GatedPackage(pooling), both);
    ASSERT_TRUE(logits.ok()) << logits.status();
    ASSERT_EQ(logits->size(), 8u);
    float difference = 0;
    for (int b = 0; b < 4; ++b) difference += std::abs((*logits)[b] - (*logits)[4 + b]);
    if (pooling == v1::GATE_POOLING_MEAN) {
      EXPECT_LT(difference, 1e-5);
    } else {
      EXPECT_GT(difference, 1e-3);
    }
  }
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

std::vector<torch::Tensor> Parameters(torch::nn::Module& module) {
  std::vector<torch::Tensor> copies;
  for (const auto& p : module.parameters()) copies.push_back(p.detach().clone());
  return copies;
}

bool AnyChanged(const std::vector<torch::Tensor>& before, const std::vector<torch::Tensor>& after) {
  for (size_t i = 0; i < before.size(); ++i) {
    if (!before[i].equal(after[i])) return true;
  }
  return false;
}

TEST(GatingTest, JointFinetuneTrainsGateAndExpertsDeterministically) {
  const std::vector<v1::Example> train = Generate(200, 0);
  std::vector<std::vector<torch::Tensor>> finals;
  for (int run = 0; run < 2; ++run) {
    auto package = GatedPackage(v1::GATE_POOLING_MEAN_MAX);
    TrainOptions experts;
    experts.epochs = 1;
    ASSERT_TRUE(Train(package.get(), train, {}, experts).ok());
    const std::vector<torch::Tensor> gate_before = Parameters(*package->model->gate());
    const std::vector<torch::Tensor> full_before =
        Parameters(*package->model->expert(kFullBranch));
    JointTrainOptions joint;
    joint.epochs = 1;
    joint.lambda = 0;  // Free compute: the gate sends samples to the full branch.
    auto result = FinetuneJointly(package.get(), train, {}, joint);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->examples, 200);
    EXPECT_TRUE(AnyChanged(gate_before, Parameters(*package->model->gate())));
    EXPECT_TRUE(AnyChanged(full_before, Parameters(*package->model->expert(kFullBranch))));
    finals.push_back(Parameters(*package->model));
  }
  ASSERT_EQ(finals[0].size(), finals[1].size());
  for (size_t i = 0; i < finals[0].size(); ++i) EXPECT_TRUE(finals[0][i].equal(finals[1][i])) << i;
}

TEST(GatingTest, JointFinetuneRefusesAnUngatedPackageAndBadOptions) {
  v1::ModelConfig config = testing::SmallModelConfig();
  SeedRandom(1);
  auto single = NewModelPackage(config);
  ASSERT_TRUE(single.ok());
  const std::vector<v1::Example> train = Generate(4, 0);
  EXPECT_EQ(FinetuneJointly(single->get(), train, {}, {}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  JointTrainOptions bad;
  bad.temperature = 0;
  auto status = FinetuneJointly(GatedPackage().get(), train, {}, bad).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("temperature=0"), std::string::npos) << status;
}

TEST(GatingTest, LambdaSweepGivesOneRowPerLambdaAndLeavesThePackageAlone) {
  const std::vector<v1::Example> train = Generate(600, 0);
  const std::vector<v1::Example> test = Generate(200, 1);
  auto package = GatedPackage(v1::GATE_POOLING_MEAN_MAX);
  TrainOptions experts;
  experts.epochs = 2;
  experts.batch_size = 16;
  experts.learning_rate = 5e-3;
  ASSERT_TRUE(Train(package.get(), train, {}, experts).ok());
  const std::vector<torch::Tensor> before = Parameters(*package->model);
  GateTrainOptions gate;
  gate.epochs = 6;
  auto rows = SweepLambda(*package, train, test, {0.0, 5.0}, gate);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].lambda, 0.0);
  EXPECT_EQ((*rows)[1].lambda, 5.0);
  EXPECT_FALSE(AnyChanged(before, Parameters(*package->model)));
  // The same experts and the same initial gate: only lambda differs.
  EXPECT_GT((*rows)[0].result.mean_gflops, (*rows)[1].result.mean_gflops);
  EXPECT_GT((*rows)[0].result.branch_fraction[kFullBranch],
            (*rows)[1].result.branch_fraction[kFullBranch]);
  EXPECT_EQ(SweepLambda(*package, train, test, {-1.0}, gate).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mmfuse::model
