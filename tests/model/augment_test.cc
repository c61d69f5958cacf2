#include "model/augment.h"

#include <random>
#include <vector>

#include <ATen/ops/allclose.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/full.h>
#include <ATen/ops/randn.h>
#include <torch/utils.h>

#include "gtest/gtest.h"

namespace mmfuse::model {
namespace {

// Audio: 8 mel bands, 2 frames stacked (dim 16); image: 4x4 gray, 2x2
// patches (4 tokens of 4); text: dim 3, one token per word; "plain": no
// featurizer.
v1::ModelConfig MediaConfig() {
  v1::ModelConfig config;
  v1::ModalityConfig* audio = config.add_modalities();
  audio->set_name("audio");
  audio->set_feature_dim(16);
  audio->set_max_frames(20);
  v1::AudioFeaturizer* a = audio->mutable_featurizer()->mutable_audio();
  a->set_n_mels(8);
  a->set_stack_frames(2);
  v1::ModalityConfig* image = config.add_modalities();
  image->set_name("video");
  image->set_feature_dim(4);
  image->set_max_frames(4);
  v1::ImageFeaturizer* i = image->mutable_featurizer()->mutable_image();
  i->set_width(4);
  i->set_height(4);
  i->set_patch_size(2);
  i->set_color(v1::ImageFeaturizer::COLOR_GRAY);
  i->set_resize(v1::ImageFeaturizer::RESIZE_NONE);
  i->add_mean(0.5);
  i->add_std(0.5);
  v1::ModalityConfig* text = config.add_modalities();
  text->set_name("text");
  text->set_feature_dim(3);
  text->set_max_frames(10);
  text->mutable_featurizer()->mutable_text()->set_dim(3);
  v1::ModalityConfig* plain = config.add_modalities();
  plain->set_name("plain");
  plain->set_feature_dim(2);
  plain->set_max_frames(5);
  config.set_num_classes(2);
  return config;
}

std::vector<ModalityInput> Batch() {
  torch::manual_seed(3);
  std::vector<ModalityInput> inputs(4);
  inputs[0].features = at::randn({2, 10, 16});
  inputs[0].lengths = torch::tensor({10, 6}, torch::kLong);
  inputs[0].features.slice(0, 1, 2).slice(1, 6).zero_();
  // Image pixels in [0.1, 0.9] after (x - 0.5) / 0.5, never the black value -1.
  inputs[1].features = (at::rand({2, 4, 4}) * 0.8 + 0.1 - 0.5) / 0.5;
  inputs[1].lengths = torch::tensor({4, 4}, torch::kLong);
  // Text token t of sample b has every value 1 + t.
  inputs[2].features = (at::arange(10, torch::kFloat) + 1).view({1, 10, 1}).expand({2, 10, 3}).clone();
  inputs[2].lengths = torch::tensor({10, 4}, torch::kLong);
  inputs[2].features.slice(0, 1, 2).slice(1, 4).zero_();
  inputs[3].features = at::randn({2, 5, 2});
  inputs[3].lengths = torch::tensor({5, 5}, torch::kLong);
  return inputs;
}

std::vector<ModalityInput> Clone(const std::vector<ModalityInput>& inputs) {
  std::vector<ModalityInput> copy;
  for (const ModalityInput& in : inputs) copy.push_back({in.features.clone(), in.lengths.clone()});
  return copy;
}

bool Same(const ModalityInput& a, const ModalityInput& b) {
  return a.features.equal(b.features) && a.lengths.equal(b.lengths);
}

TEST(AugmentTest, RedrawnOnEveryCallAndReproducibleFromTheSeed) {
  const v1::ModelConfig config = MediaConfig();
  std::mt19937_64 rng(7), same_seed(7);
  std::vector<ModalityInput> first = Batch(), second = Batch(), replay = Batch();
  Augment(config, AugmentOptions(), &rng, &first);
  Augment(config, AugmentOptions(), &rng, &second);  // The next epoch's draw.
  Augment(config, AugmentOptions(), &same_seed, &replay);
  bool any_differs = false;
  for (int m = 0; m < 3; ++m) {
    any_differs |= !Same(first[m], second[m]);
    EXPECT_TRUE(Same(first[m], replay[m])) << "modality " << m;
  }
  EXPECT_TRUE(any_differs);
}

TEST(AugmentTest, ModalitiesWithoutAFeaturizerAndPaddingAreLeftAlone) {
  const v1::ModelConfig config = MediaConfig();
  const std::vector<ModalityInput> before = Batch();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<ModalityInput> after = Clone(before);
    Augment(config, AugmentOptions(), &rng, &after);
    EXPECT_TRUE(Same(after[3], before[3])) << "seed " << seed;
    // Audio sample 1 has 6 frames: its padding stays zero.
    EXPECT_EQ(after[0].features[1].slice(0, 6).abs().sum().item<float>(), 0) << "seed " << seed;
  }
}

TEST(AugmentTest, AudioMasksFillWithTheSampleMeanAlongTimeAndBands) {
  v1::ModelConfig config = MediaConfig();
  AugmentOptions options;
  options.time_masks = 0;
  options.freq_masks = 1;
  options.freq_mask_bands = 8;
  const std::vector<ModalityInput> before = Batch();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<ModalityInput> after = Clone(before);
    Augment(config, options, &rng, &after);
    // A band masked in one stacked frame is masked in both halves of every
    // row: columns b and 8 + b change together.
    const torch::Tensor changed = after[0].features[0].ne(before[0].features[0]);
    EXPECT_TRUE(changed.slice(1, 0, 8).equal(changed.slice(1, 8, 16))) << "seed " << seed;
    const float mean = before[0].features[0].mean().item<float>();
    const torch::Tensor filled = after[0].features[0].masked_select(changed);
    if (filled.numel() > 0) {
      EXPECT_TRUE(at::allclose(filled, at::full_like(filled, mean))) << "seed " << seed;
    }
  }
}

TEST(AugmentTest, TextTokenDropoutClosesUpAndKeepsOneToken) {
  v1::ModelConfig config = MediaConfig();
  AugmentOptions options;
  options.token_dropout = 0.9;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<ModalityInput> inputs = Batch();
    Augment(config, options, &rng, &inputs);
    for (int b = 0; b < 2; ++b) {
      const int64_t length = inputs[2].lengths[b].item<int64_t>();
      ASSERT_GE(length, 1) << "seed " << seed;
      // Kept tokens keep their order and values; everything after is zero.
      float previous = 0;
      for (int64_t t = 0; t < length; ++t) {
        const float v = inputs[2].features[b][t][0].item<float>();
        EXPECT_GT(v, previous) << "seed " << seed;
        previous = v;
      }
      EXPECT_EQ(inputs[2].features[b].slice(0, length).abs().sum().item<float>(), 0);
    }
  }
}

TEST(AugmentTest, ImageShiftAndErasingFillWithBlack) {
  v1::ModelConfig config = MediaConfig();
  AugmentOptions options;
  options.image_shift_px = 1;
  options.image_erase_probability = 1;
  const std::vector<ModalityInput> before = Batch();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<ModalityInput> after = Clone(before);
    Augment(config, options, &rng, &after);
    const torch::Tensor changed = after[1].features.ne(before[1].features);
    ASSERT_GT(changed.sum().item<int64_t>(), 0) << "seed " << seed;
    // Every value is either an original pixel or black ((0 - 0.5) / 0.5).
    const torch::Tensor black = after[1].features.eq(-1);
    EXPECT_GT(black.sum().item<int64_t>(), 0) << "seed " << seed;
    const torch::Tensor pixels = after[1].features.masked_select(~black);
    for (int64_t i = 0; i < pixels.numel(); ++i) {
      EXPECT_TRUE(before[1].features.eq(pixels[i]).any().item<bool>()) << "seed " << seed;
    }
  }
}

TEST(AugmentTest, OptionsOutOfRangeNameTheField) {
  AugmentOptions options;
  options.token_dropout = 1;
  absl::Status status = ValidateAugmentOptions(options);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("token_dropout=1"), std::string::npos) << status;
  options = AugmentOptions();
  options.time_mask_fraction = -0.1;
  status = ValidateAugmentOptions(options);
  EXPECT_NE(status.message().find("time_mask_fraction"), std::string::npos) << status;
  EXPECT_TRUE(ValidateAugmentOptions(AugmentOptions()).ok());
}

}  // namespace
}  // namespace mmfuse::model
