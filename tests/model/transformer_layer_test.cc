// The fused inference layer (ATen's encoder-layer kernel) against the
// op-by-op forward: same outputs within 1e-5 at every batch size, padded
// batches and a sample that lacks the input left to the op-by-op forward,
// and a whole model in every fusion mode with missing modalities; the same
// multiply-adds counted.
#include "model/transformer_layer.h"

#include <algorithm>
#include <vector>

#include <ATen/ops/abs.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/tensor.h>
#include <c10/core/InferenceMode.h>
#include <torch/utils.h>

#include "gtest/gtest.h"
#include "model/inference.h"
#include "model/mac_counter.h"
#include "model/model_package.h"
#include "tests/testing/every_fusion_mode.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

// Restores the process-wide switch at the end of a test.
class FusedSwitch {
 public:
  FusedSwitch() : saved_(FusedInferenceLayers()) {}
  ~FusedSwitch() { SetFusedInferenceLayers(saved_); }

 private:
  bool saved_;
};

struct LayerRun {
  at::Tensor output;
  int64_t macs = 0;
  int64_t fused_calls = 0;
};

LayerRun Forward(TransformerLayer& layer, const at::Tensor& x, const at::Tensor& padding, bool fused) {
  SetFusedInferenceLayers(fused);
  c10::InferenceMode inference;
  const int64_t calls = FusedInferenceLayerCalls();
  MacCounter counter;
  LayerRun run;
  run.output = layer->forward(x, padding);
  run.macs = counter.macs();
  run.fused_calls = FusedInferenceLayerCalls() - calls;
  return run;
}

// [B, T] true at positions >= length.
at::Tensor PaddingOf(const std::vector<int64_t>& lengths, int64_t tokens) {
  return at::arange(tokens).unsqueeze(0) >= at::tensor(lengths).unsqueeze(1);
}

// Largest difference over the tokens that are not padding.
float MaxRealDifference(const at::Tensor& a, const at::Tensor& b, const at::Tensor& padding) {
  at::Tensor diff = (a - b).abs().amax(-1);  // [B, T]
  if (padding.defined()) diff = diff.masked_fill(padding, 0);
  return diff.max().item<float>();
}

// A layer of width 32, 4 heads, feed-forward 64, in eval mode, its weights
// drawn from `seed`.
TransformerLayer EvalLayer(uint64_t seed) {
  torch::manual_seed(seed);
  TransformerLayerOptions options;
  options.d_model = 32;
  options.num_heads = 4;
  options.ff_dim = 64;
  TransformerLayer layer(options);
  layer->eval();
  return layer;
}

TEST(TransformerLayerTest, FusedKernelMatchesTheOpByOpForwardAtEveryBatchSize) {
  FusedSwitch restore;
  TransformerLayer layer = EvalLayer(5);
  // Batches without padding run the fused kernel; padded ones op by op.
  for (const std::vector<int64_t>& lengths :
       {std::vector<int64_t>{12}, {12, 12, 12}, std::vector<int64_t>(8, 12), {12, 7, 3},
        {12, 12, 1, 5, 9, 2, 11, 6}}) {
    const int64_t batch = static_cast<int64_t>(lengths.size());
    const bool padded = *std::min_element(lengths.begin(), lengths.end()) < 12;
    const at::Tensor x = at::randn({batch, 12, 32});
    const at::Tensor padding = PaddingOf(lengths, 12);
    const LayerRun reference = Forward(layer, x, padding, /*fused=*/false);
    const LayerRun fused = Forward(layer, x, padding, /*fused=*/true);
    EXPECT_EQ(reference.fused_calls, 0);
    EXPECT_EQ(fused.fused_calls, padded ? 0 : 1) << "batch " << batch;
    EXPECT_LT(MaxRealDifference(fused.output, reference.output, padding), 1e-5) << "batch " << batch;
    EXPECT_EQ(fused.macs, reference.macs) << "batch " << batch;
  }
  // No padding mask at all.
  const at::Tensor x = at::randn({2, 5, 32});
  const LayerRun fused = Forward(layer, x, {}, true);
  EXPECT_EQ(fused.fused_calls, 1);
  EXPECT_LT(MaxRealDifference(fused.output, Forward(layer, x, {}, false).output, {}), 1e-5);
}

TEST(TransformerLayerTest, ASampleWithEveryTokenMaskedRunsOpByOp) {
  FusedSwitch restore;
  torch::manual_seed(6);
  TransformerLayer layer(TransformerLayerOptions{});
  layer->eval();
  const at::Tensor x = at::randn({3, 6, 64});
  const at::Tensor padding = PaddingOf({6, 0, 4}, 6);
  const LayerRun reference = Forward(layer, x, padding, false);
  const LayerRun fused = Forward(layer, x, padding, true);
  EXPECT_EQ(fused.fused_calls, 0);
  EXPECT_TRUE(fused.output.equal(reference.output));
  EXPECT_TRUE(fused.output.isfinite().all().item<bool>());
}

TEST(TransformerLayerTest, FirstTokenMatchesTheWholeLayersFirstRow) {
  TransformerLayer layer = EvalLayer(7);
  c10::InferenceMode inference;
  // Batches of one and several, padded or not, one sample lacking the input
  // (every key masked: its first token gets zero attention either way).
  for (const std::vector<int64_t>& lengths :
       {std::vector<int64_t>{12}, std::vector<int64_t>(8, 12), {12, 7, 3},
        {12, 12, 1, 5, 9, 2, 11, 6}, {12, 0, 4}}) {
    const int64_t batch = static_cast<int64_t>(lengths.size());
    const at::Tensor x = at::randn({batch, 12, 32});
    const at::Tensor padding = PaddingOf(lengths, 12);
    const at::Tensor whole = layer->forward(x, padding).select(1, 0);
    MacCounter counter;
    const at::Tensor first = layer->ForwardFirstToken(x, padding);
    ASSERT_EQ(first.sizes(), whole.sizes());
    EXPECT_LT((first - whole).abs().max().item<float>(), 1e-5) << "batch " << batch;
    // k and v of 12 tokens, the first token's query and output projection,
    // scores and weighted values over 12 keys, its feed-forward.
    EXPECT_EQ(counter.macs(), batch * (12 * 2 * 32 * 32 + 2 * 32 * 32 + 2 * 12 * 32 + 2 * 32 * 64));
  }
  const at::Tensor x = at::randn({2, 5, 32});
  EXPECT_LT((layer->ForwardFirstToken(x, {}) - layer->forward(x, {}).select(1, 0)).abs().max().item<float>(),
            1e-5);
}

class FusedModelTest : public ::testing::TestWithParam<v1::FusionMode> {};

TEST_P(FusedModelTest, PredictionsMatchTheOpByOpModelWithMissingModalities) {
  FusedSwitch restore;
  SeedRandom(8);
  v1::ModelConfig config = testing::SmallModelConfig();
  config.set_fusion_mode(GetParam());
  auto package = NewModelPackage(config);
  ASSERT_TRUE(package.ok()) << package.status();
  data::GeneratorOptions generator = testing::SmallGeneratorOptions();
  generator.missing_rate = 0.3;
  data::Generator source(generator, 4);
  std::vector<v1::Example> examples;
  for (int i = 0; i < 16; ++i) examples.push_back(source.Next());
  for (size_t batch : {1u, 5u, 16u}) {
    std::vector<const FeatureMap*> samples;
    for (size_t i = 0; i < batch; ++i) samples.push_back(&examples[i].features());
    SetFusedInferenceLayers(false);
    auto reference = PredictProbabilities(**package, samples, 0);
    SetFusedInferenceLayers(true);
    auto fused = PredictProbabilities(**package, samples, 0);
    ASSERT_TRUE(reference.ok() && fused.ok());
    ASSERT_EQ(reference->size(), fused->size());
    for (size_t i = 0; i < fused->size(); ++i) {
      EXPECT_NEAR((*fused)[i], (*reference)[i], 1e-5) << "batch " << batch << " value " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryFusionMode, FusedModelTest, testing::EveryFusionMode(),
                         testing::FusionModeTestName);

}  // namespace
}  // namespace mmfuse::model
