// ServingOptions::mixed_branch_queues: every branch shares one queue, so a
// batch mixes branches; each request must still get its own branch's answer,
// exactly as if that branch had run it alone.
#include <cmath>
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

TEST(MixedQueuesTest, OneBatchMixesBranchesAndEachRequestGetsItsOwnBranchAnswer) {
  v1::ModelConfig config = testing::SmallModelConfig();
  model::AddDefaultBranches(&config);
  model::SeedRandom(4);
  auto package = model::NewModelPackage(config, data::GeneratedLabels());
  ASSERT_TRUE(package.ok()) << package.status();
  (*package)->model->eval();

  ServingOptions options;
  options.workers = 1;
  options.max_batch_size = 8;
  // Long enough that the batch forms by size, never by delay.
  options.max_queue_delay_us = 30'000'000;
  options.mixed_branch_queues = true;
  auto served = ServedModel::Create(*package, options);
  ASSERT_TRUE(served.ok()) << served.status();

  // Half the requests ACCURATE (the full branch), half capped just above the
  // text branch's cost (a single-modality branch, never the full one).
  const model::BranchPolicy policy(config);
  const int text = 0, full = policy.full_branch();
  ASSERT_EQ(policy.branches()[text].name, "text");
  data::Generator generator(testing::SmallGeneratorOptions(), 9);
  constexpr int kRequests = 8;
  std::vector<v1::ClassifyRequest> requests(kRequests);
  std::vector<v1::ClassifyResponse> responses(kRequests);
  std::vector<absl::Status> statuses(kRequests);
  std::vector<absl::Notification> done(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    requests[i] = client::RequestFromExample(generator.Next());
    const std::vector<int64_t> frames = model::FramesOf(config, requests[i].features());
    if (i % 2 == 0) {
      requests[i].mutable_budget()->set_level(v1::BUDGET_LEVEL_ACCURATE);
    } else {
      requests[i].mutable_budget()->set_level(v1::BUDGET_LEVEL_BALANCED);
      requests[i].mutable_budget()->set_max_gflops(policy.Gflops(text, true, frames) * 1.0001);
    }
  }
  for (int i = 0; i < kRequests; ++i) {
    (*served)->Classify(&requests[i], &responses[i], CallContext{}, [&, i](absl::Status status) {
      statuses[i] = status;
      done[i].Notify();
    });
  }
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(done[i].WaitForNotificationWithTimeout(absl::Seconds(60)));
    ASSERT_TRUE(statuses[i].ok()) << i << ": " << statuses[i];
  }

  for (int i = 0; i < kRequests; ++i) {
    SCOPED_TRACE(i);
    int branch = -1;
    for (int b = 0; b < static_cast<int>(policy.branches().size()); ++b) {
      if (policy.branches()[b].name == responses[i].branch()) branch = b;
    }
    ASSERT_GE(branch, 0) << responses[i].branch();
    if (i % 2 == 0) {
      EXPECT_EQ(branch, full);
    } else {
      EXPECT_NE(branch, full);
    }
    EXPECT_EQ(responses[i].batch_size(), kRequests);  // One batch, several branches.
    const model::FeatureMap* features = &requests[i].features();
    auto alone = model::PredictProbabilities(**package, absl::MakeConstSpan(&features, 1), branch);
    ASSERT_TRUE(alone.ok()) << alone.status();
    ASSERT_EQ(responses[i].top_k_size(), 1);
    const v1::ClassScore& top = responses[i].top_k(0);
    EXPECT_NEAR(top.probability(), (*alone)[top.index()], 1e-5);
    for (float p : *alone) EXPECT_LE(p, top.probability() + 1e-5);
  }
}

}  // namespace
}  // namespace mmfuse::server
