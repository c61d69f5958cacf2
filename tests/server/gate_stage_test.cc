// The gate as a batched stage: a request that needs the gate queues for it,
// the gate runs on a worker over a batch of such requests, and each request
// then runs its chosen branch's expert. The caller's thread (gRPC's, in the
// server) only validates and queues.
#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gtest/gtest.h"
#include "model/branch_policy.h"
#include "model/inference.h"
#include "model/model_package.h"
#include "server/served_model.h"
#include "tests/testing/small_model.h"

namespace mmfuse::server {
namespace {

class GateStageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::SmallModelConfig();
    model::AddDefaultBranches(&config_);
    model::SeedRandom(6);
    auto package = model::NewModelPackage(config_, data::GeneratedLabels());
    ASSERT_TRUE(package.ok()) << package.status();
    (*package)->model->eval();
    package_ = *std::move(package);
  }

  std::unique_ptr<ServedModel> Serve(int workers, int max_batch_size) {
    ServingOptions options;
    options.workers = workers;
    options.max_batch_size = max_batch_size;
    options.max_queue_delay_us = 0;
    auto served = ServedModel::Create(package_, options);
    EXPECT_TRUE(served.ok()) << served.status();
    return served.ok() ? *std::move(served) : nullptr;
  }

  // `n` requests with the BALANCED budget (the gate decides).
  void MakeRequests(int n) {
    data::Generator generator(testing::SmallGeneratorOptions(), 11);
    requests_.resize(n);
    responses_.resize(n);
    statuses_.resize(n);
    done_ = std::vector<absl::Notification>(n);
    for (int i = 0; i < n; ++i) {
      requests_[i] = client::RequestFromExample(generator.Next());
      requests_[i].mutable_budget()->set_level(v1::BUDGET_LEVEL_BALANCED);
    }
  }

  void SubmitAll(ServedModel& served) {
    for (size_t i = 0; i < requests_.size(); ++i) {
      served.Classify(&requests_[i], &responses_[i], CallContext{}, [this, i](absl::Status status) {
        statuses_[i] = status;
        done_[i].Notify();
      });
    }
  }

  void AwaitAll() {
    for (size_t i = 0; i < done_.size(); ++i) {
      ASSERT_TRUE(done_[i].WaitForNotificationWithTimeout(absl::Seconds(120))) << i;
    }
  }

  v1::ModelConfig config_;
  std::shared_ptr<model::ModelPackage> package_;
  std::vector<v1::ClassifyRequest> requests_;
  std::vector<v1::ClassifyResponse> responses_;
  std::vector<absl::Status> statuses_;
  std::vector<absl::Notification> done_;
};

TEST_F(GateStageTest, TheCallingThreadRunsNoForwardPassAndEachRequestGetsTheGatesChoice) {
  std::unique_ptr<ServedModel> served = Serve(/*workers=*/2, /*max_batch_size=*/8);
  ASSERT_NE(served, nullptr);
  constexpr int kRequests = 24;
  MakeRequests(kRequests);
  const int64_t passes_before = model::ForwardPassesOnThisThread();
  SubmitAll(*served);
  AwaitAll();
  EXPECT_EQ(model::ForwardPassesOnThisThread(), passes_before);
  EXPECT_EQ(served->Stats().requeued, kRequests);

  // Each answer is the one the gate and the expert give the request alone.
  const model::BranchPolicy policy(config_);
  const int branches = static_cast<int>(policy.branches().size());
  for (int i = 0; i < kRequests; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(statuses_[i].ok()) << statuses_[i];
    const model::FeatureMap* features = &requests_[i].features();
    auto logits = model::GateLogits(*package_, absl::MakeConstSpan(&features, 1));
    ASSERT_TRUE(logits.ok()) << logits.status();
    ASSERT_EQ(static_cast<int>(logits->size()), branches);
    const std::vector<int64_t> frames = model::FramesOf(config_, *features);
    auto choice = policy.Choose(frames, requests_[i].budget(), *logits, /*load_bias=*/0);
    ASSERT_TRUE(choice.ok()) << choice.status();
    ASSERT_TRUE(choice->gate_ran);
    EXPECT_EQ(responses_[i].branch(), policy.branches()[choice->branch].name);
    EXPECT_DOUBLE_EQ(responses_[i].gflops(), policy.Gflops(choice->branch, true, frames));
    auto alone = model::PredictProbabilities(*package_, absl::MakeConstSpan(&features, 1),
                                             choice->branch);
    ASSERT_TRUE(alone.ok()) << alone.status();
    ASSERT_EQ(responses_[i].top_k_size(), 1);
    const v1::ClassScore& top = responses_[i].top_k(0);
    EXPECT_NEAR(top.probability(), (*alone)[top.index()], 1e-5);
    for (float p : *alone) EXPECT_LE(p, top.probability() + 1e-5);
  }
}

TEST_F(GateStageTest, ShutdownAnswersEveryAcceptedRequestThroughBothStages) {
  std::unique_ptr<ServedModel> served = Serve(/*workers=*/1, /*max_batch_size=*/4);
  ASSERT_NE(served, nullptr);
  constexpr int kRequests = 16;
  MakeRequests(kRequests);
  SubmitAll(*served);
  served->Shutdown();  // Computes what still waits for either stage.
  AwaitAll();
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_TRUE(statuses_[i].ok()) << i << ": " << statuses_[i];
    EXPECT_FALSE(responses_[i].branch().empty()) << i;
  }
  const batching::BatcherStats stats = served->Stats();
  EXPECT_EQ(stats.requeued, kRequests);
  EXPECT_EQ(stats.completed, kRequests);
}

TEST_F(GateStageTest, ABudgetNoBranchFitsIsRefusedBeforeTheGate) {
  std::unique_ptr<ServedModel> served = Serve(/*workers=*/1, /*max_batch_size=*/4);
  ASSERT_NE(served, nullptr);
  MakeRequests(1);
  requests_[0].mutable_budget()->set_max_gflops(1e-9);
  SubmitAll(*served);
  // Refused on this thread, before Classify returns.
  ASSERT_TRUE(done_[0].HasBeenNotified());
  EXPECT_EQ(statuses_[0].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(served->Stats().requeued, 0);
}

TEST_F(GateStageTest, QueueDepthsNameEachBranchAndTheGate) {
  std::unique_ptr<ServedModel> served = Serve(/*workers=*/1, /*max_batch_size=*/4);
  ASSERT_NE(served, nullptr);
  const std::vector<std::pair<std::string, int64_t>> depths = served->QueueDepths();
  const model::BranchPolicy policy(config_);
  ASSERT_EQ(depths.size(), policy.branches().size() + 1);
  for (size_t b = 0; b < policy.branches().size(); ++b) {
    EXPECT_EQ(depths[b].first, policy.branches()[b].name);
  }
  EXPECT_EQ(depths.back().first, ServedModel::kGateStage);
}

}  // namespace
}  // namespace mmfuse::server
