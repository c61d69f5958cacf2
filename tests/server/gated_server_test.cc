// A gated package served end to end: each response reports the branch that
// ran, the modalities it used and that branch's cost; budgets steer it.
#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/branch_policy.h"
#include "model/inference.h"
#include "model/model_package.h"
#include "server/server.h"
#include "tests/testing/small_model.h"

namespace mmfuse::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class GatedServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::SmallModelConfig();
    model::AddDefaultBranches(&config_);
    model::SeedRandom(2);
    auto package = model::NewModelPackage(config_, data::GeneratedLabels());
    ASSERT_TRUE(package.ok()) << package.status();
    (*package)->model->eval();
    ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics = false;
    options.packages.push_back(*package);
    auto server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<client::ClassifierClient>(absl::StrCat("127.0.0.1:", server_->port()));
  }

  absl::StatusOr<v1::ClassifyResponse> Classify(v1::ClassifyRequest request, v1::BudgetLevel level,
                                                double max_gflops = 0) {
    request.mutable_budget()->set_level(level);
    request.mutable_budget()->set_max_gflops(max_gflops);
    return client_->Classify(request, absl::Seconds(30));
  }

  v1::ClassifyRequest Request() { return client::RequestFromExample(generator_.Next()); }

  std::vector<int64_t> Frames(const v1::ClassifyRequest& request) {
    return model::FramesOf(config_, request.features());
  }

  v1::ModelConfig config_;
  data::Generator generator_{testing::SmallGeneratorOptions(), 5};
  std::unique_ptr<Server> server_;
  std::unique_ptr<client::ClassifierClient> client_;
};

TEST_F(GatedServerTest, AccurateRunsTheFullBranchAndReportsItsCost) {
  const v1::ClassifyRequest request = Request();
  auto response = Classify(request, v1::BUDGET_LEVEL_ACCURATE);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->branch(), "full");
  EXPECT_EQ(response->modalities_used_size(), request.features_size());
  model::BranchPolicy policy(config_);
  EXPECT_DOUBLE_EQ(response->gflops(), policy.Gflops(3, /*gate_ran=*/false, Frames(request)));
}

TEST_F(GatedServerTest, ReportsTheBranchAndModalitiesActuallyUsed) {
  model::BranchPolicy policy(config_);
  for (int i = 0; i < 20; ++i) {
    const v1::ClassifyRequest request = Request();
    auto response = Classify(request, v1::BUDGET_LEVEL_FAST);
    ASSERT_TRUE(response.ok()) << response.status();
    int branch = -1;
    for (int b = 0; b < static_cast<int>(policy.branches().size()); ++b) {
      if (policy.branches()[b].name == response->branch()) branch = b;
    }
    ASSERT_GE(branch, 0) << response->branch();
    // The modalities used are the branch's, as far as the request has them.
    std::vector<std::string> expected;
    for (int m : policy.branches()[branch].modalities) {
      if (request.features().count(config_.modalities(m).name()) > 0) {
        expected.push_back(config_.modalities(m).name());
      }
    }
    EXPECT_THAT(response->modalities_used(), ::testing::ElementsAreArray(expected));
    EXPECT_DOUBLE_EQ(response->gflops(), policy.Gflops(branch, /*gate_ran=*/true, Frames(request)));
  }
}

TEST_F(GatedServerTest, TextOnlyRequestCannotUseAudioOrVideoBranches) {
  v1::ClassifyRequest request = Request();
  v1::FeatureSequence text = request.features().at("text");
  request.mutable_features()->clear();
  (*request.mutable_features())["text"] = text;
  for (auto level : {v1::BUDGET_LEVEL_BALANCED, v1::BUDGET_LEVEL_FAST}) {
    auto response = Classify(request, level);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_THAT(response->branch(), ::testing::AnyOf("text", "full"));
    EXPECT_THAT(response->modalities_used(), ElementsAre("text"));
  }
}

TEST_F(GatedServerTest, MaxGflopsBelowEveryBranchIsInvalidArgument) {
  auto response = Classify(Request(), v1::BUDGET_LEVEL_BALANCED, 1e-9);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("budget.max_gflops"));
  EXPECT_TRUE(Classify(Request(), v1::BUDGET_LEVEL_BALANCED).ok());  // Still serving.
}

TEST_F(GatedServerTest, ModelInfoListsEveryBranchWithItsCost) {
  auto info = client_->GetModelInfo("", absl::Seconds(10));
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->branches_size(), 4);
  EXPECT_EQ(info->branches(0).name(), "text");
  EXPECT_THAT(info->branches(0).modalities(), ElementsAre("text"));
  EXPECT_EQ(info->branches(3).name(), "full");
  EXPECT_LT(info->branches(0).gflops(), info->branches(3).gflops());
}

}  // namespace
}  // namespace mmfuse::server
