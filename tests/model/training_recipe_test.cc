// The training recipe's parts: best-epoch selection, auxiliary heads that
// never reach a package, partial initialisation by parameter prefix, option
// validation, and the two modes that train through per-modality losses
// (late fusion as a product of experts, MBT's per-modality class tokens).
#include <algorithm>
#include <string>
#include <vector>

#include <ATen/ops/allclose.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/randn.h>
#include <ATen/ops/softmax.h>
#include <ATen/ops/tensor.h>
#include <c10/core/InferenceMode.h>
#include <torch/utils.h>

#include "data/generator.h"
#include "gtest/gtest.h"
#include "model/fusion_transformer.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "model/trainer.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

std::shared_ptr<ModelPackage> FreshPackage(uint64_t seed, v1::FusionMode mode = v1::FUSION_MODE_CONCAT) {
  SeedRandom(seed);
  v1::ModelConfig config = testing::SmallModelConfig();
  config.set_fusion_mode(mode);
  auto package = NewModelPackage(config);
  EXPECT_TRUE(package.ok()) << package.status();
  return *package;
}

TrainOptions Short(int epochs) {
  TrainOptions options;
  options.epochs = epochs;
  options.batch_size = 16;
  options.learning_rate = 5e-3;
  options.seed = 11;
  return options;
}

TEST(TrainingRecipeTest, KeepsTheWeightsOfTheBestEvaluatedEpoch) {
  const std::vector<v1::Example> train = testing::SmallExamples(300, 0);
  const std::vector<v1::Example> eval = testing::SmallExamples(120, 1);
  auto package = FreshPackage(3);
  auto result = Train(package.get(), train, eval, Short(4));
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->epoch_accuracy.size(), 4u);
  const auto best = std::max_element(result->epoch_accuracy.begin(), result->epoch_accuracy.end());
  // The first best epoch is kept, and the package evaluates to its accuracy.
  EXPECT_EQ(result->best_epoch, 1 + (best - result->epoch_accuracy.begin()));
  EXPECT_DOUBLE_EQ(result->accuracy, *best);
  auto again = Evaluate(*package, eval);
  ASSERT_TRUE(again.ok());
  EXPECT_DOUBLE_EQ(again->accuracy, *best);
}

TEST(TrainingRecipeTest, EarlyStoppingEndsAfterThePatienceRunsOut) {
  const std::vector<v1::Example> train = testing::SmallExamples(64, 0);
  const std::vector<v1::Example> eval = testing::SmallExamples(40, 1);
  auto package = FreshPackage(3);
  TrainOptions options = Short(10);
  options.learning_rate = 1e-12;  // Nothing improves after the first epoch.
  options.early_stopping_patience = 2;
  auto result = Train(package.get(), train, eval, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->best_epoch, 1);
  EXPECT_EQ(result->epoch_accuracy.size(), 3u);
}

// `examples` with each text sequence cut to its first token.
std::vector<v1::Example> FirstTextTokenOnly(std::vector<v1::Example> examples) {
  for (v1::Example& example : examples) {
    auto it = example.mutable_features()->find("text");
    if (it == example.mutable_features()->end()) continue;
    it->second.set_frames(1);
    it->second.mutable_data()->Truncate(it->second.dim());
  }
  return examples;
}

TEST(TrainingRecipeTest, AugmentationReachesTrainingBatchesButNeverEvaluation) {
  const std::vector<v1::Example> train = testing::SmallExamples(300, 0);
  const std::vector<v1::Example> eval = testing::SmallExamples(120, 1);
  SeedRandom(5);
  v1::ModelConfig config = testing::SmallModelConfig();
  config.mutable_modalities(2)->mutable_featurizer()->mutable_text()->set_dim(4);
  auto created = NewModelPackage(config);
  ASSERT_TRUE(created.ok()) << created.status();
  std::shared_ptr<ModelPackage> package = *created;
  ASSERT_TRUE(Train(package.get(), train, {}, Short(3)).ok());
  auto reference = Evaluate(*package, eval);
  ASSERT_TRUE(reference.ok());
  // The trained model reads the text tokens, so evaluation would show
  // dropped ones.
  auto truncated = Evaluate(*package, FirstTextTokenOnly(eval));
  ASSERT_TRUE(truncated.ok());
  ASSERT_NE(truncated->accuracy, reference->accuracy);

  // Heavy token dropout with weights that cannot move: every epoch's
  // evaluation sees the features as they are.
  TrainOptions options = Short(3);
  options.learning_rate = 1e-12;
  options.weight_decay = 0;
  options.augment = true;
  options.augmentation.token_dropout = 0.9;
  auto result = Train(package.get(), train, eval, options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->epoch_accuracy.size(), 3u);
  for (double accuracy : result->epoch_accuracy) EXPECT_DOUBLE_EQ(accuracy, reference->accuracy);
}

TEST(TrainingRecipeTest, AuxiliaryHeadsReachNeitherThePackageNorItsCost) {
  const std::vector<v1::Example> train = testing::SmallExamples(64, 0);
  const std::vector<v1::Example> eval = testing::SmallExamples(40, 1);
  auto with_aux = FreshPackage(4);
  auto without = FreshPackage(4);
  TrainOptions options = Short(1);
  options.aux_loss_weight = 1;
  ASSERT_TRUE(Train(with_aux.get(), train, {}, options).ok());
  options.aux_loss_weight = 0;
  ASSERT_TRUE(Train(without.get(), train, {}, options).ok());
  std::vector<std::string> a, b;
  for (const auto& p : with_aux->model->named_parameters()) a.push_back(p.key());
  for (const auto& p : without->model->named_parameters()) b.push_back(p.key());
  EXPECT_EQ(a, b);
  auto ea = Evaluate(*with_aux, eval);
  auto eb = Evaluate(*without, eval);
  ASSERT_TRUE(ea.ok() && eb.ok());
  EXPECT_DOUBLE_EQ(ea->mean_gflops, eb->mean_gflops);
  // The auxiliary loss did train something: the weights differ.
  bool differ = false;
  const auto pb = without->model->named_parameters();
  for (const auto& p : with_aux->model->named_parameters()) {
    differ |= !p.value().equal(*pb.find(p.key()));
  }
  EXPECT_TRUE(differ);
}

TEST(TrainingRecipeTest, InitFromPrefixCopiesOnlyThoseParameters) {
  auto from = FreshPackage(1);
  auto to = FreshPackage(2);
  const auto before = to->model->named_parameters();
  std::vector<torch::Tensor> snapshot;
  for (const auto& p : before) snapshot.push_back(p.value().clone());
  ASSERT_TRUE(CopyWeights(*from, to.get(), {"expert_full.audio_"}).ok());
  const auto source = from->model->named_parameters();
  int copied = 0, i = 0;
  for (const auto& p : to->model->named_parameters()) {
    const bool audio = p.key().rfind("expert_full.audio_", 0) == 0;
    if (audio) {
      ++copied;
      EXPECT_TRUE(p.value().equal(*source.find(p.key()))) << p.key();
    } else {
      EXPECT_TRUE(p.value().equal(snapshot[i])) << p.key();
    }
    ++i;
  }
  EXPECT_GT(copied, 3);  // Projection, CLS, positions, layers.
  // Under another name: a gated package's audio expert from the full one.
  SeedRandom(6);
  v1::ModelConfig gated_config = testing::SmallModelConfig();
  AddDefaultBranches(&gated_config);
  auto gated = NewModelPackage(gated_config);
  ASSERT_TRUE(gated.ok()) << gated.status();
  ASSERT_TRUE(CopyWeights(*from, gated->get(), {"expert_full.audio_=expert_audio.audio_"}).ok());
  const auto renamed = (*gated)->model->named_parameters();
  EXPECT_TRUE(renamed.find("expert_audio.audio_projection.weight")
                  ->equal(*source.find("expert_full.audio_projection.weight")));
  absl::Status unknown = CopyWeights(*from, to.get(), {"expert_full.smell_"});
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.message().find("expert_full.smell_"), std::string::npos) << unknown;
}

TEST(TrainingRecipeTest, OptionsOutOfRangeNameTheField) {
  TrainOptions options;
  options.label_smoothing = 1;
  absl::Status status = ValidateTrainOptions(options);
  EXPECT_NE(status.message().find("label_smoothing=1"), std::string::npos) << status;
  options = TrainOptions();
  options.warmup_fraction = -0.5;
  status = ValidateTrainOptions(options);
  EXPECT_NE(status.message().find("warmup_fraction"), std::string::npos) << status;
  options = TrainOptions();
  options.augmentation.image_erase_probability = 2;
  status = ValidateTrainOptions(options);
  EXPECT_NE(status.message().find("image_erase_probability"), std::string::npos) << status;
  EXPECT_TRUE(ValidateTrainOptions(TrainOptions()).ok());
}

// Three modalities for sample 0, audio only for sample 1.
std::vector<ModalityInput> MixedBatch() {
  torch::manual_seed(5);
  std::vector<ModalityInput> inputs(3);
  inputs[0] = {at::randn({2, 6, 6}), at::tensor({6L, 4L})};
  inputs[1] = {at::randn({2, 3, 5}), at::tensor({3L, 0L})};
  inputs[2] = {at::randn({2, 2, 4}), at::tensor({2L, 0L})};
  return inputs;
}

FusionTransformer ModeModel(v1::FusionMode mode) {
  torch::manual_seed(8);
  v1::ModelConfig config = testing::SmallModelConfig();
  config.set_fusion_mode(mode);
  FusionTransformer model(config);
  model->eval();
  if (mode == v1::FUSION_MODE_MBT) {  // Its head starts at zero.
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().rfind("fusion.head", 0) == 0) p.value().normal_();
    }
  }
  return model;
}

TEST(LateFusionTest, IsAProductOfTheExpertsOfThePresentModalities) {
  FusionTransformer model = ModeModel(v1::FUSION_MODE_LATE);
  c10::InferenceMode guard;
  const auto out = model->ForwardForTraining(MixedBatch());
  EXPECT_FALSE(out.fusion.fused_loss);
  ASSERT_EQ(out.fusion.stream_logits.size(), 3u);
  const torch::Tensor fused = at::softmax(out.fusion.logits, -1);
  // Sample 0: the normalised product of the three experts' probabilities.
  torch::Tensor product = at::softmax(out.fusion.stream_logits[0][0], -1);
  for (int m : {1, 2}) product = product * at::softmax(out.fusion.stream_logits[m][0], -1);
  EXPECT_TRUE(at::allclose(fused[0], product / product.sum(), 1e-5, 1e-6));
  // Sample 1 has audio alone: the audio expert's answer.
  EXPECT_TRUE(at::allclose(fused[1], at::softmax(out.fusion.stream_logits[0][1], -1), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(model->forward(MixedBatch()), out.fusion.logits));
}

TEST(MbtFusionTest, AveragesTheSharedHeadOverPresentModalityClassTokens) {
  FusionTransformer model = ModeModel(v1::FUSION_MODE_MBT);
  c10::InferenceMode guard;
  const auto out = model->ForwardForTraining(MixedBatch());
  EXPECT_FALSE(out.fusion.fused_loss);
  const auto& s = out.fusion.stream_logits;
  EXPECT_TRUE(at::allclose(out.fusion.logits[0], (s[0][0] + s[1][0] + s[2][0]) / 3, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(out.fusion.logits[1], s[0][1], 1e-5, 1e-6));
}

}  // namespace
}  // namespace mmfuse::model
