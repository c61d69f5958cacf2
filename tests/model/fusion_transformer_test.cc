// Every fusion mode: shapes, padding and batch invariance, missing
// modalities, gradients, and FLOP accounting against executed matmuls.
#include "model/fusion_transformer.h"

#include <regex>
#include <string>
#include <vector>

#include <ATen/ops/allclose.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <ATen/ops/zeros.h>
#include <c10/core/InferenceMode.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include "gtest/gtest.h"
#include "model/flops.h"
#include "model/mac_counter.h"
#include "model/model_config.h"
#include "tests/testing/every_fusion_mode.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

constexpr int kAudio = 0, kVideo = 1, kText = 2;

v1::ModelConfig ModeConfig(v1::FusionMode mode) {
  v1::ModelConfig config = testing::SmallModelConfig();
  config.set_fusion_mode(mode);
  config.mutable_transformer()->set_fusion_layers(2);
  config.mutable_transformer()->set_num_heads(4);
  config.mutable_mbt()->set_num_bottlenecks(3);
  (*config.mutable_sft()->mutable_kernel())["audio"] = 4;
  config.mutable_sft()->set_default_kernel(3);
  config.mutable_pmf()->set_num_prompts(2);
  return config;
}

class FusionModeTest : public ::testing::TestWithParam<v1::FusionMode> {
 protected:
  void SetUp() override {
    torch::manual_seed(7);
    config_ = ModeConfig(GetParam());
    ASSERT_TRUE(ValidateModelConfig(config_).ok()) << ValidateModelConfig(config_);
    model_ = FusionTransformer(config_);
    model_->eval();
  }

  torch::Tensor Features(int m, int64_t frames) {
    return at::randn({1, frames, config_.modalities(m).feature_dim()});
  }
  static torch::Tensor Pad(const torch::Tensor& x, int64_t extra) {
    return at::cat({x, at::zeros({x.size(0), extra, x.size(2)})}, 1);
  }
  static ModalityInput Input(const torch::Tensor& features, std::vector<int64_t> lengths) {
    return ModalityInput{features, at::tensor(lengths, at::kLong)};
  }
  torch::Tensor Run(const std::vector<ModalityInput>& inputs) {
    c10::InferenceMode guard;
    return model_->forward(inputs);
  }

  v1::ModelConfig config_;
  FusionTransformer model_{nullptr};
};

TEST_P(FusionModeTest, LogitsHaveOneFiniteRowPerSample) {
  std::vector<ModalityInput> inputs(3);
  inputs[kAudio] = Input(at::randn({4, 9, 6}), {9, 3, 1, 5});
  inputs[kText] = Input(at::randn({4, 2, 4}), {2, 2, 1, 1});
  const torch::Tensor logits = Run(inputs);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{4, 10}));
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
}

TEST_P(FusionModeTest, PaddingNeverChangesAResult) {
  const torch::Tensor audio = Features(kAudio, 7), video = Features(kVideo, 5);
  std::vector<ModalityInput> plain(3), padded(3);
  plain[kAudio] = Input(audio, {7});
  plain[kVideo] = Input(video, {5});
  torch::Tensor noisy = Pad(audio, 6);
  noisy.slice(1, 7).normal_();  // Garbage in the padding must not leak.
  padded[kAudio] = Input(noisy, {7});
  padded[kVideo] = Input(Pad(video, 9), {5});
  EXPECT_TRUE(at::allclose(Run(plain), Run(padded), 1e-5, 1e-5));
}

TEST_P(FusionModeTest, SampleInABatchEqualsSampleAlone) {
  const torch::Tensor a0 = Features(kAudio, 5), a1 = Features(kAudio, 11);
  const torch::Tensor v0 = Features(kVideo, 4), v1t = Features(kVideo, 2);
  const torch::Tensor t0 = Features(kText, 3), t1 = Features(kText, 8);
  std::vector<ModalityInput> alone(3), batch(3);
  alone[kAudio] = Input(a0, {5});
  alone[kVideo] = Input(v0, {4});
  alone[kText] = Input(t0, {3});
  batch[kAudio] = Input(at::cat({Pad(a0, 6), a1}, 0), {5, 11});
  batch[kVideo] = Input(at::cat({v0, Pad(v1t, 2)}, 0), {4, 2});
  batch[kText] = Input(at::cat({Pad(t0, 5), t1}, 0), {3, 8});
  EXPECT_TRUE(at::allclose(Run(alone), Run(batch).slice(0, 0, 1), 1e-5, 1e-5));
}

TEST_P(FusionModeTest, AbsentModalityEqualsZeroLengthModality) {
  // Absent from the whole batch (encoder skipped) or from this sample only
  // (length 0 beside a sample that has it): the same answer.
  const torch::Tensor text = Features(kText, 6), audio = Features(kAudio, 4);
  std::vector<ModalityInput> skipped(3), masked(3);
  skipped[kText] = Input(text, {6});
  skipped[kAudio] = Input(audio, {4});
  masked[kText] = Input(at::cat({text, Features(kText, 6)}, 0), {6, 6});
  masked[kAudio] = Input(at::cat({audio, Features(kAudio, 4)}, 0), {4, 4});
  torch::Tensor junk = Features(kVideo, 4);
  masked[kVideo] = Input(at::cat({junk, Features(kVideo, 4)}, 0), {0, 4});
  const torch::Tensor logits = Run(masked);
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
  EXPECT_TRUE(at::allclose(Run(skipped), logits.slice(0, 0, 1), 1e-5, 1e-5));
}

TEST_P(FusionModeTest, SingleModalityAnswers) {
  for (int m : {kAudio, kVideo, kText}) {
    std::vector<ModalityInput> inputs(3);
    inputs[m] = Input(Features(m, 3), {3});
    EXPECT_TRUE(Run(inputs).isfinite().all().item<bool>()) << "modality " << m;
  }
}

TEST_P(FusionModeTest, GradientsReachEveryTrainableParameter) {
  model_->train();
  std::vector<ModalityInput> inputs(3);
  inputs[kAudio] = Input(at::randn({3, 9, 6}), {9, 2, 4});
  inputs[kVideo] = Input(at::randn({3, 5, 5}), {5, 5, 1});
  inputs[kText] = Input(at::randn({3, 4, 4}), {4, 3, 2});
  const torch::Tensor labels = at::tensor({1L, 2L, 3L});
  torch::nn::functional::cross_entropy(model_->forward(inputs), labels).backward();
  if (GetParam() == v1::FUSION_MODE_MBT) {
    // MBT's head starts at zero, so nothing below it has a gradient on the
    // first step; the head itself must.
    for (const auto& p : model_->named_parameters()) {
      if (p.key().find("fusion.head") == 0) {
        EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
      }
    }
    torch::NoGradGuard no_grad;
    for (const auto& p : model_->named_parameters()) {
      if (p.key().find("fusion.head.weight") == 0) p.value().normal_();
      p.value().mutable_grad() = torch::Tensor();
    }
    torch::AutoGradMode grad(true);
    torch::nn::functional::cross_entropy(model_->forward(inputs), labels).backward();
  }
  for (const auto& p : model_->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
  }
}

TEST_P(FusionModeTest, FlopCountMatchesExecutedMatmuls) {
  // Two sets of lengths, one with a modality missing; batch of one, no
  // padding, so every executed multiply-add is the sample's.
  for (const std::vector<int64_t>& frames : {std::vector<int64_t>{9, 5, 7},
                                             std::vector<int64_t>{20, 0, 3}}) {
    std::vector<ModalityInput> inputs(3);
    for (int m = 0; m < 3; ++m) {
      if (frames[m] > 0) inputs[m] = Input(Features(m, frames[m]), {frames[m]});
    }
    MacCounter counter;
    Run(inputs);
    EXPECT_EQ(counter.macs(), ForwardMacs(config_, frames))
        << "lengths " << frames[0] << "," << frames[1] << "," << frames[2];
  }
}

INSTANTIATE_TEST_SUITE_P(AllModes, FusionModeTest, testing::EveryFusionMode(),
                         testing::FusionModeTestName);

TEST(SftPoolingTest, EveryPoolingKindKeepsPaddingInvariance) {
  for (auto pooling : {v1::SftConfig::POOLING_AVG, v1::SftConfig::POOLING_ATTN_TOPK}) {
    torch::manual_seed(3);
    v1::ModelConfig config = ModeConfig(v1::FUSION_MODE_SFT);
    config.mutable_sft()->set_pooling(pooling);
    FusionTransformer model(config);
    model->eval();
    const torch::Tensor audio = at::randn({1, 10, 6});
    std::vector<ModalityInput> plain(3), padded(3);
    plain[kAudio] = ModalityInput{audio, at::tensor({10L})};
    padded[kAudio] = ModalityInput{at::cat({audio, at::randn({1, 7, 6})}, 1), at::tensor({10L})};
    c10::InferenceMode guard;
    EXPECT_TRUE(at::allclose(model->forward(plain), model->forward(padded), 1e-5, 1e-5))
        << v1::SftConfig::Pooling_Name(pooling);
  }
}

TEST(LocomtTest, CostsLessAttentionThanConcat) {
  v1::ModelConfig concat = ModeConfig(v1::FUSION_MODE_CONCAT);
  v1::ModelConfig locomt = ModeConfig(v1::FUSION_MODE_LOCOMT);
  const std::vector<int64_t> frames = {20, 16, 12};
  // Against concat with every fusion layer whole: concat's last layer
  // computes its class token alone at inference (ClassTokenLayersMacs),
  // which is not about attention patterns.
  const v1::TransformerConfig& t = concat.transformer();
  const int64_t tokens = 1 + (1 + 20) + (1 + 16) + (1 + 12);
  const int64_t concat_whole =
      ForwardMacs(concat, frames) -
      ClassTokenLayersMacs(t.fusion_layers(), tokens, t.d_model(), t.ff_dim()) +
      t.fusion_layers() * TransformerLayerMacs(tokens, t.d_model(), t.ff_dim());
  EXPECT_LT(ForwardMacs(locomt, frames), concat_whole);
}

TEST(LocomtTest, BadHeadViewIsRefusedNamingIt) {
  v1::ModelConfig config = ModeConfig(v1::FUSION_MODE_LOCOMT);
  for (int l = 0; l < 2; ++l) {
    v1::LocomtLayer* layer = config.mutable_locomt()->add_layers();
    for (const char* v : {"self:audio", "self:video", "cross:audio:text", "self:text"}) {
      layer->add_head_views(v);
    }
  }
  EXPECT_TRUE(ValidateModelConfig(config).ok());
  config.mutable_locomt()->mutable_layers(1)->set_head_views(2, "cross:audio:smell");
  absl::Status status = ValidateModelConfig(config);
  EXPECT_NE(status.message().find("locomt.layers[1].head_views[2]"), std::string::npos) << status;
}

TEST(PmfTest, TrainPromptsOnlyFreezesEverythingElse) {
  v1::ModelConfig config = ModeConfig(v1::FUSION_MODE_PMF);
  config.mutable_pmf()->set_train_prompts_only(true);
  FusionTransformer model(config);
  model->train();
  std::vector<ModalityInput> inputs(3);
  inputs[kAudio] = ModalityInput{at::randn({2, 5, 6}), at::tensor({5L, 3L})};
  inputs[kVideo] = ModalityInput{at::randn({2, 4, 5}), at::tensor({4L, 4L})};
  inputs[kText] = ModalityInput{at::randn({2, 3, 4}), at::tensor({3L, 2L})};
  torch::nn::functional::cross_entropy(model->forward(inputs), at::tensor({1L, 2L})).backward();
  int trainable = 0;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    // Prompts, adapters, and each stream's head (its norm and linear).
    const bool should_train = std::regex_search(
        name, std::regex(R"(prompts|adapter|^fusion\.[a-z]+_(head|norm)\.)"));
    EXPECT_EQ(p.value().requires_grad(), should_train) << name;
    if (p.value().requires_grad()) {
      ++trainable;
      EXPECT_TRUE(p.value().grad().defined()) << name;
    } else {
      EXPECT_FALSE(p.value().grad().defined()) << name;
    }
  }
  EXPECT_GT(trainable, 0);
  EXPECT_LT(CountParameters(*model), CountParameters(*FusionTransformer(ModeConfig(v1::FUSION_MODE_PMF))));
}

}  // namespace
}  // namespace mmfuse::model
