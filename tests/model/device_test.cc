// Device selection, and the same predictions wherever the model runs. The
// CUDA half needs a CUDA LibTorch and a GPU: it skips elsewhere (CI has
// none) and runs on the GPU machine (docs/GPU.md).
#include "model/device.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include <torch/cuda.h>
#include <torch/utils.h>

#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/collate.h"
#include "model/cuda_graphs.h"
#include "model/inference.h"
#include "model/model_config.h"
#include "model/model_package.h"
#include "tests/testing/every_fusion_mode.h"
#include "tests/testing/small_model.h"

namespace mmfuse::model {
namespace {

using ::testing::HasSubstr;

TEST(ResolveDeviceTest, CpuOnlyMachine) {
  const DeviceSupport none{0};
  EXPECT_EQ(ResolveDevice("cpu", none).value(), "cpu");
  EXPECT_EQ(ResolveDevice("auto", none).value(), "cpu");
  for (const char* cuda : {"cuda", "cuda:0", "cuda:3"}) {
    absl::StatusOr<std::string> device = ResolveDevice(cuda, none);
    EXPECT_EQ(device.status().code(), absl::StatusCode::kFailedPrecondition) << cuda;
    EXPECT_THAT(device.status().message(), HasSubstr("sees no CUDA device"));
    EXPECT_THAT(device.status().message(), HasSubstr(cuda));
  }
}

TEST(ResolveDeviceTest, MachineWithTwoGpus) {
  const DeviceSupport two{2};
  EXPECT_EQ(ResolveDevice("auto", two).value(), "cuda:0");
  EXPECT_EQ(ResolveDevice("cuda", two).value(), "cuda:0");
  EXPECT_EQ(ResolveDevice("cuda:1", two).value(), "cuda:1");
  EXPECT_EQ(ResolveDevice("cpu", two).value(), "cpu");
  absl::StatusOr<std::string> missing = ResolveDevice("cuda:2", two);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("only 2 CUDA device(s)"));
}

TEST(ResolveDeviceTest, MalformedSpecsNameTheChoices) {
  for (const char* spec : {"", "gpu", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2", "mps"}) {
    absl::StatusOr<std::string> device = ResolveDevice(spec, DeviceSupport{2});
    EXPECT_EQ(device.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_THAT(device.status().message(), HasSubstr("auto, cpu, cuda, cuda:N"));
  }
}

TEST(ResolveDeviceTest, AutoFollowsTheLinkedLibTorch) {
  const std::string expected = torch::cuda::is_available() ? "cuda:0" : "cpu";
  EXPECT_EQ(ResolveDevice("auto").value(), expected);
}

TEST(CheckPrecisionTest, Fp16OnlyOnAGpu) {
  EXPECT_TRUE(CheckPrecision("fp32", "cpu").ok());
  EXPECT_TRUE(CheckPrecision("bf16", "cpu").ok());
  EXPECT_TRUE(CheckPrecision("fp16", "cuda:0").ok());
  const absl::Status half_on_cpu = CheckPrecision("fp16", "cpu");
  EXPECT_EQ(half_on_cpu.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(half_on_cpu.message(), HasSubstr("fp16 needs a GPU"));
  for (const char* spec : {"", "float32", "FP32", "int8"}) {
    const absl::Status bad = CheckPrecision(spec, "cpu");
    EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_THAT(bad.message(), HasSubstr("fp32, bf16, fp16"));
  }
}

class DevicePredictionTest : public ::testing::TestWithParam<v1::FusionMode> {
 protected:
  void SetUp() override {
    config_ = testing::SmallModelConfig();
    config_.set_fusion_mode(GetParam());
    AddDefaultBranches(&config_);
    torch::manual_seed(5);
    absl::StatusOr<std::shared_ptr<ModelPackage>> package =
        NewModelPackage(config_, data::GeneratedLabels());
    ASSERT_TRUE(package.ok()) << package.status();
    package_ = *package;
    package_->model->eval();
    data::GeneratorOptions options = testing::SmallGeneratorOptions();
    options.missing_rate = 0.3;  // Batches with absent modalities too.
    data::Generator generator(options, 1);
    for (int i = 0; i < 7; ++i) examples_.push_back(generator.Next());
    for (const v1::Example& e : examples_) samples_.push_back(&e.features());
  }

  // Every branch's probabilities and the gate's logits, concatenated.
  std::vector<float> Outputs() {
    std::vector<float> out;
    for (int b = 0; b < static_cast<int>(ResolveBranches(config_).size()); ++b) {
      absl::StatusOr<std::vector<float>> p = PredictProbabilities(*package_, samples_, b);
      EXPECT_TRUE(p.ok()) << p.status();
      if (p.ok()) out.insert(out.end(), p->begin(), p->end());
    }
    absl::StatusOr<std::vector<float>> gate = GateLogits(*package_, samples_);
    EXPECT_TRUE(gate.ok()) << gate.status();
    if (gate.ok()) out.insert(out.end(), gate->begin(), gate->end());
    return out;
  }

  v1::ModelConfig config_;
  std::shared_ptr<ModelPackage> package_;
  std::vector<v1::Example> examples_;
  std::vector<const FeatureMap*> samples_;
};

TEST_P(DevicePredictionTest, ExplicitCpuIsTheDefault) {
  const std::vector<float> before = Outputs();
  ASSERT_TRUE(MoveToDevice(package_.get(), "cpu").ok());
  EXPECT_EQ(DeviceName(*package_), "cpu");
  EXPECT_EQ(Outputs(), before);
}

// bf16 keeps 8 bits of mantissa: probabilities move by about 1e-2 at most
// on this small model, and the arg max of a confident row does not move.
void ExpectCloseInLowPrecision(const std::vector<float>& low, const std::vector<float>& fp32) {
  ASSERT_EQ(low.size(), fp32.size());
  for (size_t i = 0; i < fp32.size(); ++i) {
    EXPECT_TRUE(std::isfinite(low[i])) << i;
    EXPECT_NEAR(low[i], fp32[i], 0.05 + 0.05 * std::abs(fp32[i])) << i;
  }
}

TEST_P(DevicePredictionTest, Bf16OnTheCpuStaysCloseToFp32) {
  const std::vector<float> fp32 = Outputs();
  ASSERT_TRUE(MoveToDevice(package_.get(), "cpu", "bf16").ok());
  EXPECT_EQ(PrecisionName(*package_), "bf16");
  ExpectCloseInLowPrecision(Outputs(), fp32);
}

TEST_P(DevicePredictionTest, Fp16OnTheCpuIsRefused) {
  const absl::Status moved = MoveToDevice(package_.get(), "cpu", "fp16");
  EXPECT_EQ(moved.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(PrecisionName(*package_), "fp32");  // Left as it was.
}

TEST_P(DevicePredictionTest, HalfPrecisionOnTheGpuStaysCloseToFp32) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const std::vector<float> fp32 = Outputs();
  for (const char* precision : {"fp16", "bf16"}) {
    ASSERT_TRUE(MoveToDevice(package_.get(), "cuda:0", precision).ok()) << precision;
    ExpectCloseInLowPrecision(Outputs(), fp32);
  }
}

TEST_P(DevicePredictionTest, CudaMatchesTheCpu) {
  if (!torch::cuda::is_available()) {
    // The refusal is what a CPU-only LibTorch must give.
    const absl::Status moved = MoveToDevice(package_.get(), "cuda:0");
    EXPECT_EQ(moved.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(moved.message(), HasSubstr("cannot move the model to cuda:0"));
    GTEST_SKIP() << "no CUDA device: the comparison runs on a GPU machine";
  }
  const std::vector<float> on_cpu = Outputs();
  ASSERT_TRUE(MoveToDevice(package_.get(), "cuda:0").ok());
  EXPECT_EQ(DeviceName(*package_), "cuda:0");
  const std::vector<float> on_gpu = Outputs();
  ASSERT_EQ(on_gpu.size(), on_cpu.size());
  for (size_t i = 0; i < on_cpu.size(); ++i) EXPECT_NEAR(on_gpu[i], on_cpu[i], 1e-4) << i;
}

TEST_P(DevicePredictionTest, PinnedBatchesCopyToTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "pinned memory needs a CUDA LibTorch";
  std::vector<ModalityInput> host = Collate(config_, samples_, AllModalities(config_), true);
  std::vector<ModalityInput> device = ToDevice(host, torch::Device("cuda:0"));
  for (size_t m = 0; m < host.size(); ++m) {
    if (!host[m].features.defined()) continue;
    EXPECT_TRUE(host[m].features.is_pinned());
    EXPECT_TRUE(device[m].features.is_cuda());
    EXPECT_TRUE(torch::equal(device[m].features.cpu(), host[m].features));
    EXPECT_TRUE(torch::equal(device[m].lengths.cpu(), host[m].lengths));
  }
}

// Every branch's probabilities of samples [begin, end).
std::vector<float> BranchProbabilities(const ModelPackage& package,
                                       const std::vector<const FeatureMap*>& samples) {
  std::vector<float> out;
  for (int b = 0; b < static_cast<int>(ResolveBranches(package.config).size()); ++b) {
    absl::StatusOr<std::vector<float>> p = PredictProbabilities(package, samples, b);
    EXPECT_TRUE(p.ok()) << p.status();
    if (p.ok()) out.insert(out.end(), p->begin(), p->end());
  }
  return out;
}

void ExpectNear(const std::vector<float>& got, const std::vector<float>& expected, float tolerance) {
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_NEAR(got[i], expected[i], tolerance) << i;
}

TEST_P(DevicePredictionTest, CudaGraphsMatchEagerOnTheGpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(MoveToDevice(package_.get(), "cuda:0").ok());
  const std::vector<float> eager = BranchProbabilities(*package_, samples_);
  ASSERT_TRUE(EnableCudaGraphs(package_.get()).ok());
  const std::vector<float> captured = BranchProbabilities(*package_, samples_);  // Captures.
  const std::vector<float> replayed = BranchProbabilities(*package_, samples_);  // Replays.
  ExpectNear(captured, eager, 1e-5);
  ExpectNear(replayed, eager, 1e-5);
  // A smaller batch of the same bucket refills the graph's buffers.
  const std::vector<const FeatureMap*> fewer(samples_.begin(), samples_.begin() + 5);
  ASSERT_TRUE(EnableCudaGraphs(package_.get()).ok());
  const std::vector<float> fewer_eager = [&] {
    ModelPackage eager_package = *package_;
    eager_package.cuda_graphs = nullptr;
    return BranchProbabilities(eager_package, fewer);
  }();
  BranchProbabilities(*package_, samples_);
  ExpectNear(BranchProbabilities(*package_, fewer), fewer_eager, 1e-5);
  const CudaGraphStats stats = StatsOf(*package_->cuda_graphs);
  const int branches = static_cast<int>(ResolveBranches(config_).size());
  EXPECT_EQ(stats.failed, 0);
  // 7 and 5 samples share the batch bucket of 8; their frames may not.
  EXPECT_GE(stats.captured, branches);
  EXPECT_LE(stats.captured, 2 * branches);
  EXPECT_EQ(stats.replays, 2 * branches);
}

TEST_P(DevicePredictionTest, CudaGraphsServeConcurrentWorkers) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  ASSERT_TRUE(MoveToDevice(package_.get(), "cuda:0").ok());
  const std::vector<float> eager = BranchProbabilities(*package_, samples_);
  ASSERT_TRUE(EnableCudaGraphs(package_.get()).ok());
  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> workers;
  for (size_t w = 0; w < results.size(); ++w) {
    workers.emplace_back([&, w] {
      for (int round = 0; round < 10; ++round) results[w] = BranchProbabilities(*package_, samples_);
    });
  }
  for (std::thread& t : workers) t.join();
  for (const std::vector<float>& result : results) ExpectNear(result, eager, 1e-5);
  EXPECT_EQ(StatsOf(*package_->cuda_graphs).failed, 0);
}

INSTANTIATE_TEST_SUITE_P(EveryFusionMode, DevicePredictionTest, testing::EveryFusionMode(),
                         testing::FusionModeTestName);

}  // namespace
}  // namespace mmfuse::model
