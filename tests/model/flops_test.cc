#include "model/flops.h"

#include "gtest/gtest.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

TEST(FlopsTest, LayerCountMatchesHandDerivation) {
  // T=3, d=2, ff=5: qkv 3*3*2*2=36, out 3*2*2=12, scores 3*3*2=18,
  // weighted values 18, ff 3*2*5*2=60 -> 144.
  EXPECT_EQ(TransformerLayerMacs(3, 2, 5), 144);
}

TEST(FlopsTest, ForwardCountsEveryMatmul) {
  const v1::ModelConfig config = testing::SmallModelConfig();  // d 16, ff 32
  // audio 10 frames of dim 6, text 4 frames of dim 4, video absent. Each
  // modality runs its unimodal layer on its CLS and frames; concat fuses a
  // fusion CLS and both sequences in one layer, whose only output read is the
  // fusion CLS: k and v of its 17 tokens (17 * 2 * 16 * 16), the CLS's query
  // and output projection (2 * 16 * 16), scores and weighted values over 17
  // keys (2 * 17 * 16) and the feed-forward (2 * 16 * 32).
  const int64_t fusion = 17 * 2 * 16 * 16 + 2 * 16 * 16 + 2 * 17 * 16 + 2 * 16 * 32;
  EXPECT_EQ(ClassTokenLayersMacs(1, 17, 16, 32), fusion);
  const int64_t expected = 10 * 6 * 16 + TransformerLayerMacs(1 + 10, 16, 32) +  // audio
                           4 * 4 * 16 + TransformerLayerMacs(1 + 4, 16, 32) +    // text
                           fusion +                                               // fusion
                           16 * 10;                                              // head
  EXPECT_EQ(ForwardMacs(config, {10, 0, 4}), expected);
}

TEST(FlopsTest, OnlyTheLastLayerOfAClassTokenReadoutIsCut) {
  EXPECT_EQ(ClassTokenLayersMacs(0, 17, 16, 32), 0);
  EXPECT_EQ(ClassTokenLayersMacs(3, 17, 16, 32) - ClassTokenLayersMacs(1, 17, 16, 32),
            2 * TransformerLayerMacs(17, 16, 32));
  EXPECT_LT(ClassTokenLayersMacs(1, 17, 16, 32), TransformerLayerMacs(17, 16, 32) / 2);
}

TEST(FlopsTest, AbsentModalityCostsNothing) {
  const v1::ModelConfig config = testing::SmallModelConfig();
  EXPECT_LT(ForwardMacs(config, {10, 0, 0}), ForwardMacs(config, {10, 8, 0}));
  EXPECT_DOUBLE_EQ(MacsToGflops(500'000'000), 1.0);
}

TEST(FlopsTest, ReferenceFramesFallBackToMaxFrames) {
  v1::ModelConfig config = testing::SmallModelConfig();
  config.mutable_modalities(1)->set_reference_frames(7);
  EXPECT_EQ(ReferenceFrames(config), (std::vector<int64_t>{24, 7, 12}));
}

}  // namespace
}  // namespace mmfuse::model
