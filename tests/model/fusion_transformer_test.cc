#include "model/fusion_transformer.h"

#include <vector>

#include <ATen/ops/allclose.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include "gtest/gtest.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

constexpr int64_t kAudio = 0, kVideo = 1, kText = 2;

class FusionTransformerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    config_ = testing::SmallModelConfig();
    model_ = FusionTransformer(config_);
    model_->eval();
  }

  // One sample's features for modality m: [1, frames, dim].
  torch::Tensor Features(int m, int64_t frames) {
    return at::randn({1, frames, config_.modalities(m).feature_dim()});
  }

  // Pads [1, T, D] to [1, T + extra, D] with zeros.
  static torch::Tensor Pad(const torch::Tensor& x, int64_t extra) {
    return at::cat({x, at::zeros({1, extra, x.size(2)})}, 1);
  }

  torch::Tensor Run(const std::vector<ModalityInput>& inputs) {
    c10::InferenceMode guard;
    return model_->forward(inputs);
  }

  v1::ModelConfig config_;
  FusionTransformer model_{nullptr};
};

ModalityInput Input(const torch::Tensor& features, std::vector<int64_t> lengths) {
  return ModalityInput{features, at::tensor(lengths, at::kLong)};
}

TEST_F(FusionTransformerTest, LogitsHaveOneRowPerSample) {
  std::vector<ModalityInput> inputs(3);
  inputs[kAudio] = Input(at::randn({4, 9, 6}), {9, 3, 1, 5});
  inputs[kText] = Input(at::randn({4, 2, 4}), {2, 2, 1, 1});
  const torch::Tensor logits = Run(inputs);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{4, 10}));
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
}

TEST_F(FusionTransformerTest, PaddingNeverChangesAResult) {
  const torch::Tensor audio = Features(kAudio, 7);
  const torch::Tensor video = Features(kVideo, 4);
  std::vector<ModalityInput> plain(3), padded(3);
  plain[kAudio] = Input(audio, {7});
  plain[kVideo] = Input(video, {4});
  // Garbage in the padding must not leak either.
  torch::Tensor noisy_pad = Pad(audio, 5);
  noisy_pad.slice(1, 7).normal_();
  padded[kAudio] = Input(noisy_pad, {7});
  padded[kVideo] = Input(Pad(video, 9), {4});
  EXPECT_TRUE(at::allclose(Run(plain), Run(padded), 1e-5, 1e-5));
}

TEST_F(FusionTransformerTest, SampleInABatchEqualsSampleAlone) {
  const torch::Tensor a0 = Features(kAudio, 5), a1 = Features(kAudio, 11);
  const torch::Tensor t0 = Features(kText, 3), t1 = Features(kText, 8);
  std::vector<ModalityInput> alone(3), batch(3);
  alone[kAudio] = Input(a0, {5});
  alone[kText] = Input(t0, {3});
  batch[kAudio] = Input(at::cat({Pad(a0, 6), a1}, 0), {5, 11});
  batch[kText] = Input(at::cat({Pad(t0, 5), t1}, 0), {3, 8});
  const torch::Tensor batched = Run(batch);
  EXPECT_TRUE(at::allclose(Run(alone), batched.slice(0, 0, 1), 1e-5, 1e-5));
}

TEST_F(FusionTransformerTest, AbsentModalityEqualsZeroLengthModality) {
  // A modality absent from the whole batch (encoder skipped) and one absent
  // from this sample only (length 0 beside a sample that has it) must give
  // the sample the same answer.
  const torch::Tensor text = Features(kText, 6);
  std::vector<ModalityInput> skipped(3), masked(3);
  skipped[kText] = Input(text, {6});
  masked[kText] = Input(at::cat({text, Features(kText, 6)}, 0), {6, 6});
  masked[kVideo] = Input(at::cat({at::zeros({1, 4, 5}), Features(kVideo, 4)}, 0), {0, 4});
  const torch::Tensor logits = Run(masked);
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  EXPECT_TRUE(at::allclose(Run(skipped), logits.slice(0, 0, 1), 1e-5, 1e-5));
}

TEST_F(FusionTransformerTest, EveryModalityInfluencesTheAnswer) {
  std::vector<ModalityInput> inputs(3);
  inputs[kAudio] = Input(Features(kAudio, 5), {5});
  inputs[kVideo] = Input(Features(kVideo, 5), {5});
  inputs[kText] = Input(Features(kText, 5), {5});
  const torch::Tensor base = Run(inputs);
  for (int m : {kAudio, kVideo, kText}) {
    std::vector<ModalityInput> changed = inputs;
    changed[m] = Input(Features(m, 5), {5});
    EXPECT_FALSE(at::allclose(base, Run(changed), 1e-4, 1e-4)) << "modality " << m;
  }
}

TEST_F(FusionTransformerTest, GradientsReachEveryParameter) {
  model_->train();
  std::vector<ModalityInput> inputs(3);
  inputs[kAudio] = Input(at::randn({3, 6, 6}), {6, 2, 4});
  inputs[kVideo] = Input(at::randn({3, 5, 5}), {5, 5, 1});
  inputs[kText] = Input(at::randn({3, 4, 4}), {4, 3, 2});
  const torch::Tensor loss =
      torch::nn::functional::cross_entropy(model_->forward(inputs), at::tensor({1L, 2L, 3L}));
  loss.backward();
  for (const auto& p : model_->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

TEST_F(FusionTransformerTest, CountParametersCountsEveryTensor) {
  int64_t expected = 0;
  for (const torch::Tensor& p : model_->parameters()) expected += p.numel();
  EXPECT_EQ(CountParameters(*model_), expected);
  EXPECT_GT(expected, 1000);
}

}  // namespace
}  // namespace mmfuse::model
