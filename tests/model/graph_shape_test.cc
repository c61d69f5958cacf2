// The padding a CUDA graph's shape bucket adds does not change a batch's
// probabilities, for every fusion mode and branch. Checked on the CPU with
// the same model code a graph records on a GPU; the capture and replay
// themselves are checked in device_test on a GPU machine.
#include "model/graph_shape.h"

#include <algorithm>
#include <vector>

#include <ATen/ops/softmax.h>
#include <c10/core/InferenceMode.h>
#include <torch/utils.h>

#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/collate.h"
#include "model/cuda_graphs.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "tests/testing/every_fusion_mode.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

using ::testing::HasSubstr;

TEST(GraphBucketTest, BatchRoundsUpToAPowerOfTwo) {
  EXPECT_EQ(GraphBatchBucket(1), 1);
  EXPECT_EQ(GraphBatchBucket(3), 4);
  EXPECT_EQ(GraphBatchBucket(64), 64);
  EXPECT_EQ(GraphBatchBucket(65), 128);
}

TEST(GraphBucketTest, FramesRoundUpFromEightAndStopAtMaxFrames) {
  EXPECT_EQ(GraphFramesBucket(0, 24), 0);  // Absent stays absent.
  EXPECT_EQ(GraphFramesBucket(1, 24), 8);
  EXPECT_EQ(GraphFramesBucket(8, 24), 8);
  EXPECT_EQ(GraphFramesBucket(9, 24), 16);
  EXPECT_EQ(GraphFramesBucket(17, 24), 24);
  EXPECT_EQ(GraphFramesBucket(24, 24), 24);
  EXPECT_EQ(GraphFramesBucket(100, 512), 128);
}

TEST(GraphShapeTest, OrdersAndPrintsItsFields) {
  const GraphShape a{1, 8, {16, 0, 8}}, b{1, 8, {16, 8, 8}};
  EXPECT_TRUE(a < b);
  EXPECT_FALSE(b < a);
  EXPECT_FALSE(a == b);
  EXPECT_EQ(a.DebugString(), "branch 1, batch 8, frames 16/0/8");
}

TEST(CudaGraphsTest, RefusedWhereTheyCannotRun) {
  torch::manual_seed(1);
  v1::ModelConfig config = testing::SmallModelConfig();
  std::shared_ptr<ModelPackage> package = NewModelPackage(config).value();
  const absl::Status enabled = EnableCudaGraphs(package.get());
  EXPECT_EQ(enabled.code(), absl::StatusCode::kFailedPrecondition);
  // A CPU-only build says so first; a CUDA build names the CPU model.
  EXPECT_THAT(enabled.message(), CudaGraphsBuilt() ? HasSubstr("the model is on the CPU")
                                                   : HasSubstr("this one is CPU-only"));
  EXPECT_EQ(package->cuda_graphs, nullptr);
}

class PaddedBatchTest : public ::testing::TestWithParam<v1::FusionMode> {
 protected:
  void SetUp() override {
    config_ = testing::SmallModelConfig();
    config_.set_fusion_mode(GetParam());
    AddDefaultBranches(&config_);
    torch::manual_seed(7);
    package_ = NewModelPackage(config_, data::GeneratedLabels()).value();
    package_->model->eval();
    data::GeneratorOptions options = testing::SmallGeneratorOptions();
    options.missing_rate = 0.3;
    data::Generator generator(options, 3);
    for (int i = 0; i < 11; ++i) examples_.push_back(generator.Next());
  }

  std::vector<const FeatureMap*> Samples(int begin, int end) const {
    std::vector<const FeatureMap*> samples;
    for (int i = begin; i < end; ++i) samples.push_back(&examples_[i].features());
    return samples;
  }

  torch::Tensor Probabilities(const std::vector<ModalityInput>& batch, int branch) {
    return at::softmax(package_->model->forward(batch, branch), -1);
  }

  v1::ModelConfig config_;
  std::shared_ptr<ModelPackage> package_;
  std::vector<v1::Example> examples_;
};

TEST_P(PaddedBatchTest, PaddingChangesNoBranchsProbabilities) {
  c10::InferenceMode inference;
  const std::vector<Branch> branches = ResolveBranches(config_);
  for (int b = 0; b < static_cast<int>(branches.size()); ++b) {
    const std::vector<ModalityInput> batch = Collate(config_, Samples(0, 5), branches[b].modalities);
    const GraphShape shape = GraphShapeOf(config_, batch, b);
    EXPECT_EQ(shape.batch, 8);
    for (size_t m = 0; m < batch.size(); ++m) {
      EXPECT_EQ(shape.frames[m] == 0, !batch[m].features.defined()) << m;
      if (batch[m].features.defined()) EXPECT_GE(shape.frames[m], batch[m].features.size(1));
    }
    const std::vector<ModalityInput> padded = PaddedToShape(batch, shape, at::TensorOptions());
    const torch::Tensor expected = Probabilities(batch, b);
    const torch::Tensor got = Probabilities(padded, b).narrow(0, 0, 5);
    EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6))
        << branches[b].name << ": largest difference " << (got - expected).abs().max().item<float>();
  }
}

// A graph's buffers are refilled for every batch of its bucket: nothing of
// the previous, larger batch may leak into a smaller one.
TEST_P(PaddedBatchTest, RefilledBuffersServeTheNextBatchOfTheBucket) {
  c10::InferenceMode inference;
  const std::vector<int> all = AllModalities(config_);
  const std::vector<Branch> branches = ResolveBranches(config_);
  int full = 0;  // The branch that runs every modality.
  while (branches[full].modalities.size() != all.size()) ++full;
  const std::vector<ModalityInput> first = Collate(config_, Samples(0, 8), all);
  const std::vector<ModalityInput> second = Collate(config_, Samples(8, 11), all);
  // The bucket of both batches: the larger one's rows, the longer frames.
  GraphShape shape = GraphShapeOf(config_, first, full);
  const GraphShape second_shape = GraphShapeOf(config_, second, full);
  for (size_t m = 0; m < all.size(); ++m) {
    ASSERT_EQ(first[m].features.defined(), second[m].features.defined()) << m;
    shape.frames[m] = std::max(shape.frames[m], second_shape.frames[m]);
  }
  std::vector<ModalityInput> buffers = PaddedToShape(first, shape, at::TensorOptions());
  CopyIntoPadded(second, &buffers);
  const torch::Tensor expected = Probabilities(second, full);
  const torch::Tensor got = Probabilities(buffers, full).narrow(0, 0, 3);
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6))
      << "largest difference " << (got - expected).abs().max().item<float>();
  for (size_t m = 0; m < all.size(); ++m) {
    EXPECT_EQ(buffers[m].lengths.narrow(0, 3, shape.batch - 3).sum().item<int64_t>(), 0) << m;
  }
}

INSTANTIATE_TEST_SUITE_P(EveryFusionMode, PaddedBatchTest, testing::EveryFusionMode(),
                         testing::FusionModeTestName);

}  // namespace
}  // namespace mmfuse::model
