// mmfuse-bench's Runner against a live in-process mmfuse server (small
// model, random weights) on loopback: every request sent is accounted for,
// and the server answered exactly the ones reported ok. No timing asserts.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/bench/channel_pool.h"
#include "client/bench/runner.h"
#include "client/bench/workload.h"
#include "gtest/gtest.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/test_package.h"

namespace mmfuse::bench {
namespace {

class BenchLiveServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.metrics = false;
    options.packages.push_back(testing::SmallPackage(/*seed=*/3));
    options.serving.workers = 2;
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);

    ChannelPoolOptions pool_options;
    pool_options.targets = {absl::StrCat("127.0.0.1:", server_->port())};
    absl::StatusOr<std::unique_ptr<ChannelPool>> pool = ChannelPool::Connect(pool_options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);

    // The workload is shaped by what the server reports, as in mmfuse-bench.
    auto stub = v1::MultimodalClassifier::NewStub(pool_->channels()[0]);
    grpc::ClientContext context;
    v1::ModelInfo info;
    const grpc::Status status = stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    ASSERT_TRUE(status.ok()) << status.error_message();
    WorkloadOptions workload_options;
    workload_options.samples = 16;
    workload_options.top_k = 2;
    workload_options.modality_mix =
        *ParseModalityMix("text=0.25,audio+video=0.25,all=0.5", {"audio", "video", "text"});
    workload_options.budget_mix = *ParseBudgetMix("fast=0.5,accurate=0.5");
    absl::StatusOr<Workload> workload = BuildWorkload(workload_options, info);
    ASSERT_TRUE(workload.ok()) << workload.status();
    workload_ = std::move(*workload);
  }

  StepResult Run(RunnerOptions options, RpcKind rpc) {
    options.load.rpc = rpc;
    options.request_id_prefix = "live-";
    options.on_response = [this](const v1::ClassifyResponse& response) {
      absl::MutexLock lock(&mu_);
      if (!response.has_error()) ok_ids_.push_back(response.request_id());
    };
    absl::StatusOr<std::unique_ptr<Runner>> runner =
        Runner::Create(options, pool_.get(), workload_);
    EXPECT_TRUE(runner.ok()) << runner.status();
    if (!runner.ok()) return StepResult();
    return (*runner)->Run();
  }

  // The server's own count of answered requests: distinct ids it echoed.
  void ExpectServerAnsweredExactly(const StepResult& result) {
    absl::MutexLock lock(&mu_);
    const std::set<std::string> distinct(ok_ids_.begin(), ok_ids_.end());
    EXPECT_EQ(distinct.size(), ok_ids_.size());
    EXPECT_EQ(static_cast<int64_t>(distinct.size()), result.ok);
    for (const std::string& id : distinct) EXPECT_TRUE(absl::StartsWith(id, "live-")) << id;
  }

  // 48 requests, 4 in flight: all answered (the small model accepts every
  // generated sample and budget), each by its own id.
  void ExpectClosedLoopAccountsForEveryRequest(RpcKind rpc) {
    RunnerOptions options;
    options.load.concurrency = 4;
    options.duration = absl::InfiniteDuration();
    options.max_requests = 48;
    const StepResult result = Run(options, rpc);
    EXPECT_TRUE(result.aborted.empty()) << result.aborted;
    EXPECT_EQ(result.sent, 48);
    EXPECT_EQ(result.sent, result.ok + result.error_count());
    EXPECT_EQ(result.ok, 48) << "first error: "
                             << (result.errors.empty() ? "" : result.errors.begin()->first);
    EXPECT_EQ(result.unmatched, 0);
    EXPECT_EQ(result.latency_us.count(), result.ok);
    ExpectServerAnsweredExactly(result);
    int64_t branch_total = 0;
    for (const auto& [branch, count] : result.branches) branch_total += count;
    EXPECT_EQ(branch_total, result.ok);
    EXPECT_GE(result.mean_batch_size(), 1.0);
  }

  // 40 scheduled Poisson arrivals (seed 1): each sent one accounted for.
  void ExpectOpenLoopAccountsForEveryRequest(RpcKind rpc) {
    RunnerOptions options;
    options.load.mode = LoadMode::kOpenLoop;
    options.load.rate_rps = 400;
    options.load.arrival = Arrival::kPoisson;
    options.duration = absl::InfiniteDuration();
    options.max_requests = 40;
    const StepResult result = Run(options, rpc);
    EXPECT_TRUE(result.aborted.empty()) << result.aborted;
    EXPECT_EQ(result.sent + result.unsent, 40);
    EXPECT_EQ(result.sent, result.ok + result.error_count());
    EXPECT_EQ(result.unmatched, 0);
    ExpectServerAnsweredExactly(result);
  }

  std::unique_ptr<server::Server> server_;
  std::unique_ptr<ChannelPool> pool_;
  Workload workload_;
  absl::Mutex mu_;
  std::vector<std::string> ok_ids_ ABSL_GUARDED_BY(mu_);
};

TEST_F(BenchLiveServerTest, ClosedLoopUnaryReportsExactlyTheRequestsItSent) {
  ExpectClosedLoopAccountsForEveryRequest(RpcKind::kUnary);
}

TEST_F(BenchLiveServerTest, ClosedLoopStreamReportsExactlyTheRequestsItSent) {
  ExpectClosedLoopAccountsForEveryRequest(RpcKind::kStream);
}

TEST_F(BenchLiveServerTest, OpenLoopUnaryReportsExactlyTheRequestsItSent) {
  ExpectOpenLoopAccountsForEveryRequest(RpcKind::kUnary);
}

TEST_F(BenchLiveServerTest, OpenLoopStreamReportsExactlyTheRequestsItSent) {
  ExpectOpenLoopAccountsForEveryRequest(RpcKind::kStream);
}

}  // namespace
}  // namespace mmfuse::bench
