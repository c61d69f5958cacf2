// The Runner against fake MultimodalClassifier servers on loopback: exact
// counts and bounds, no timing asserts.
#include "client/bench/runner.h"

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "client/bench/channel_pool.h"
#include "client/bench/workload.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "tests/testing/small_model.h"

namespace mmfuse::bench {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

v1::ModelInfo SmallInfo() {
  v1::ModelInfo info;
  info.set_name("fake");
  const v1::ModelConfig config = testing::SmallModelConfig();
  for (const auto& m : config.modalities()) {
    v1::ModalityInfo* out = info.add_modalities();
    out->set_name(m.name());
    out->set_feature_dim(m.feature_dim());
    out->set_max_frames(m.max_frames());
  }
  return info;
}

// How a FakeClassifier fails.
enum class FakeFailure { kNone, kAllUnavailable };

// Answers at once: FAST-budget requests fail RESOURCE_EXHAUSTED (a stream
// answers them with a SampleError), the others succeed with branch = the
// sorted modality names, batch_size 2, queue 5 us, compute 7 us. With
// kAllUnavailable every Classify fails UNAVAILABLE and every stream ends
// UNAVAILABLE at its first request. Thread-safe.
class FakeClassifier final : public v1::MultimodalClassifier::CallbackService {
 public:
  explicit FakeClassifier(FakeFailure failure) : failure_(failure) {}

  grpc::ServerUnaryReactor* Classify(grpc::CallbackServerContext* context,
                                     const v1::ClassifyRequest* request,
                                     v1::ClassifyResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(failure_ == FakeFailure::kAllUnavailable
                        ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake is down")
                        : Answer(*request, response));
    return reactor;
  }

  grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse>* ClassifyStream(
      grpc::CallbackServerContext* /*context*/) override {
    return new Stream(this);
  }

  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* /*request*/,
                                         v1::ModelInfo* response) override {
    *response = SmallInfo();
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  int64_t answered_ok() {
    absl::MutexLock lock(&mu_);
    return answered_ok_;
  }
  int64_t received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  // Serial: reads one request, writes its answer, reads the next.
  class Stream final : public grpc::ServerBidiReactor<v1::ClassifyRequest, v1::ClassifyResponse> {
   public:
    explicit Stream(FakeClassifier* service) : service_(service) { StartRead(&request_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      if (service_->failure_ == FakeFailure::kAllUnavailable) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake stream is down"));
        return;
      }
      response_.Clear();
      const grpc::Status status = service_->Answer(request_, &response_);
      if (!status.ok()) {
        response_.Clear();
        response_.set_request_id(request_.request_id());
        response_.mutable_error()->set_code(status.error_code());
        response_.mutable_error()->set_message(status.error_message());
      }
      StartWrite(&response_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
        return;
      }
      StartRead(&request_);
    }
    void OnDone() override { delete this; }

   private:
    FakeClassifier* const service_;
    v1::ClassifyRequest request_;
    v1::ClassifyResponse response_;
  };

  grpc::Status Answer(const v1::ClassifyRequest& request, v1::ClassifyResponse* response) {
    absl::MutexLock lock(&mu_);
    ++received_;
    if (request.budget().level() == v1::BUDGET_LEVEL_FAST) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "fake queue is full");
    }
    ++answered_ok_;
    std::vector<std::string> names;
    for (const auto& [name, features] : request.features()) names.push_back(name);
    std::sort(names.begin(), names.end());
    response->set_request_id(request.request_id());
    response->set_model("fake");
    response->set_branch(absl::StrJoin(names, "+"));
    response->set_batch_size(2);
    response->mutable_timings()->set_queue_us(5);
    response->mutable_timings()->set_compute_us(7);
    response->mutable_timings()->set_total_us(20);
    return grpc::Status::OK;
  }

  const FakeFailure failure_;
  absl::Mutex mu_;
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t answered_ok_ ABSL_GUARDED_BY(mu_) = 0;
};

struct FakeServer {
  explicit FakeServer(FakeFailure failure) : service(failure) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
  }
  ~FakeServer() { server->Shutdown(); }
  std::string target() const { return absl::StrCat("127.0.0.1:", port); }

  FakeClassifier service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

// Response ids seen by RunnerOptions::on_response.
class ResponseLog {
 public:
  void Add(const v1::ClassifyResponse& response) {
    absl::MutexLock lock(&mu_);
    (response.has_error() ? error_ids_ : ok_ids_).push_back(response.request_id());
  }
  std::vector<std::string> ok_ids() {
    absl::MutexLock lock(&mu_);
    return ok_ids_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> ok_ids_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> error_ids_ ABSL_GUARDED_BY(mu_);
};

class BenchRunnerTest : public ::testing::Test {
 protected:
  void StartServers(int n, FakeFailure failure = FakeFailure::kNone) {
    for (int i = 0; i < n; ++i) {
      servers_.push_back(std::make_unique<FakeServer>(failure));
      ASSERT_NE(servers_.back()->port, 0);
    }
  }

  void Connect(int channels_per_target) {
    ChannelPoolOptions options;
    for (const auto& server : servers_) options.targets.push_back(server->target());
    options.channels_per_target = channels_per_target;
    absl::StatusOr<std::unique_ptr<ChannelPool>> pool = ChannelPool::Connect(options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
  }

  // 10 generated requests (seed 1); `budget_mix` as for --budget_mix.
  void BuildRequests(const std::string& budget_mix = "") {
    WorkloadOptions options;
    options.samples = 10;
    if (!budget_mix.empty()) options.budget_mix = *ParseBudgetMix(budget_mix);
    absl::StatusOr<Workload> workload = BuildWorkload(options, SmallInfo());
    ASSERT_TRUE(workload.ok()) << workload.status();
    workload_ = std::move(*workload);
  }

  RunnerOptions Closed(int concurrency, RpcKind rpc) {
    RunnerOptions options;
    options.load.concurrency = concurrency;
    options.load.rpc = rpc;
    options.request_id_prefix = "t-";
    options.duration = absl::InfiniteDuration();
    return options;
  }

  RunnerOptions Open(double rate, RpcKind rpc) {
    RunnerOptions options = Closed(1, rpc);
    options.load.mode = LoadMode::kOpenLoop;
    options.load.rate_rps = rate;
    return options;
  }

  StepResult Run(RunnerOptions options) {
    options.on_response = [this](const v1::ClassifyResponse& r) { log_.Add(r); };
    absl::StatusOr<std::unique_ptr<Runner>> runner =
        Runner::Create(options, pool_.get(), workload_);
    EXPECT_TRUE(runner.ok()) << runner.status();
    if (!runner.ok()) return StepResult();
    return (*runner)->Run();
  }

  int64_t ServerOk() {
    int64_t n = 0;
    for (const auto& server : servers_) n += server->service.answered_ok();
    return n;
  }

  // Every step's invariant, plus: each ok response id is distinct and ours.
  void ExpectConsistent(const StepResult& result) {
    EXPECT_EQ(result.sent, result.ok + result.error_count());
    EXPECT_EQ(result.latency_us.count(), result.ok);
    EXPECT_EQ(result.unmatched, 0);
    const std::vector<std::string> ids = log_.ok_ids();
    const std::set<std::string> distinct(ids.begin(), ids.end());
    EXPECT_EQ(distinct.size(), ids.size());
    for (const std::string& id : ids) EXPECT_TRUE(absl::StartsWith(id, "t-")) << id;
  }

  std::vector<std::unique_ptr<FakeServer>> servers_;
  std::unique_ptr<ChannelPool> pool_;
  Workload workload_;
  ResponseLog log_;
};

// Each behaviour, checked for unary and stream RPCs.
class BenchRunnerRpcTest : public BenchRunnerTest {
 protected:
  void ClosedLoopSendsExactlyMaxRequestsAndCountsEveryAnswer(RpcKind rpc) {
    StartServers(1);
    Connect(2);
    BuildRequests();
    RunnerOptions options = Closed(3, rpc);
    options.max_requests = 25;
    const StepResult result = Run(options);
    ExpectConsistent(result);
    EXPECT_TRUE(result.aborted.empty()) << result.aborted;
    EXPECT_EQ(result.sent, 25);
    EXPECT_EQ(result.ok, 25);
    EXPECT_TRUE(result.errors.empty());
    EXPECT_EQ(ServerOk(), 25);
    EXPECT_EQ(log_.ok_ids().size(), 25u);
    EXPECT_THAT(result.branches, ElementsAre(Pair("audio+text+video", 25)));
    EXPECT_DOUBLE_EQ(result.mean_batch_size(), 2);
    EXPECT_DOUBLE_EQ(result.mean_queue_us(), 5);
    EXPECT_DOUBLE_EQ(result.mean_compute_us(), 7);
  }

  void FailedRequestsAreCountedByCode(RpcKind rpc) {
    StartServers(1);
    Connect(1);
    BuildRequests("fast=0.5,accurate=0.5");  // Exactly 5 of the 10 fail.
    RunnerOptions options = Closed(2, rpc);
    options.max_requests = 20;
    const StepResult result = Run(options);
    ExpectConsistent(result);
    EXPECT_EQ(result.sent, 20);
    EXPECT_EQ(result.ok, 10);
    EXPECT_THAT(result.errors, ElementsAre(Pair("RESOURCE_EXHAUSTED", 10)));
    EXPECT_EQ(ServerOk(), 10);
  }

  void OpenLoopRequestBoundSchedulesExactlyN(RpcKind rpc) {
    StartServers(1);
    Connect(1);
    BuildRequests();
    RunnerOptions options = Open(2000, rpc);
    options.max_requests = 30;
    const StepResult result = Run(options);
    ExpectConsistent(result);
    EXPECT_EQ(result.sent + result.unsent, 30);
    EXPECT_EQ(ServerOk(), result.ok);
    EXPECT_EQ(result.ok, result.sent);
  }

  void RequestsGoRoundRobinOverServersAndChannels(RpcKind rpc) {
    StartServers(2);
    Connect(2);  // 4 channels: a, b, a, b.
    BuildRequests();
    RunnerOptions options = Closed(4, rpc);
    options.max_requests = 40;
    const StepResult result = Run(options);
    ExpectConsistent(result);
    EXPECT_EQ(result.ok, 40);
    EXPECT_EQ(servers_[0]->service.answered_ok(), 20);
    EXPECT_EQ(servers_[1]->service.answered_ok(), 20);
  }
};

TEST_F(BenchRunnerRpcTest, ClosedLoopSendsExactlyMaxRequestsAndCountsEveryAnswerUnary) {
  ClosedLoopSendsExactlyMaxRequestsAndCountsEveryAnswer(RpcKind::kUnary);
}
TEST_F(BenchRunnerRpcTest, ClosedLoopSendsExactlyMaxRequestsAndCountsEveryAnswerStream) {
  ClosedLoopSendsExactlyMaxRequestsAndCountsEveryAnswer(RpcKind::kStream);
}

TEST_F(BenchRunnerRpcTest, FailedRequestsAreCountedByCodeUnary) {
  FailedRequestsAreCountedByCode(RpcKind::kUnary);
}
TEST_F(BenchRunnerRpcTest, FailedRequestsAreCountedByCodeStream) {
  FailedRequestsAreCountedByCode(RpcKind::kStream);
}

TEST_F(BenchRunnerRpcTest, OpenLoopRequestBoundSchedulesExactlyNUnary) {
  OpenLoopRequestBoundSchedulesExactlyN(RpcKind::kUnary);
}
TEST_F(BenchRunnerRpcTest, OpenLoopRequestBoundSchedulesExactlyNStream) {
  OpenLoopRequestBoundSchedulesExactlyN(RpcKind::kStream);
}

TEST_F(BenchRunnerRpcTest, RequestsGoRoundRobinOverServersAndChannelsUnary) {
  RequestsGoRoundRobinOverServersAndChannels(RpcKind::kUnary);
}
TEST_F(BenchRunnerRpcTest, RequestsGoRoundRobinOverServersAndChannelsStream) {
  RequestsGoRoundRobinOverServersAndChannels(RpcKind::kStream);
}

TEST_F(BenchRunnerTest, OpenLoopDurationBoundSchedulesRateTimesDuration) {
  StartServers(1);
  Connect(1);
  BuildRequests();
  RunnerOptions options = Open(1000, RpcKind::kUnary);
  options.duration = absl::Milliseconds(50);  // Intended times 0, 1, ..., 49 ms.
  const StepResult result = Run(options);
  ExpectConsistent(result);
  EXPECT_EQ(result.sent + result.unsent, 50);
  EXPECT_EQ(ServerOk(), result.ok);
}

TEST_F(BenchRunnerTest, ClosedLoopDurationBoundEndsTheStep) {
  StartServers(1);
  Connect(1);
  BuildRequests();
  RunnerOptions options = Closed(2, RpcKind::kStream);
  options.duration = absl::Milliseconds(100);
  const StepResult result = Run(options);  // Returns: the bound ended it.
  ExpectConsistent(result);
  EXPECT_GT(result.sent, 0);
  EXPECT_EQ(ServerOk(), result.ok);
}

TEST_F(BenchRunnerTest, WarmupRequestsAreSentButNotCounted) {
  StartServers(1);
  Connect(1);
  BuildRequests();
  RunnerOptions options = Closed(1, RpcKind::kUnary);
  options.warmup = absl::Milliseconds(30);
  options.max_requests = 5;
  const StepResult result = Run(options);
  ExpectConsistent(result);
  EXPECT_EQ(result.sent, 5);
  EXPECT_EQ(result.ok, 5);
  EXPECT_GE(ServerOk(), 5);  // Plus the warm-up requests.
}

TEST_F(BenchRunnerTest, StopsWhenEveryRequestIsUnavailable) {
  StartServers(1, FakeFailure::kAllUnavailable);
  Connect(1);
  BuildRequests();
  RunnerOptions options = Closed(1, RpcKind::kUnary);
  options.max_requests = 1000000;
  options.max_consecutive_unavailable = 5;
  const StepResult result = Run(options);
  ExpectConsistent(result);
  EXPECT_EQ(result.sent, 5);
  EXPECT_THAT(result.errors, ElementsAre(Pair("UNAVAILABLE", 5)));
  EXPECT_THAT(result.aborted, HasSubstr("5 requests in a row failed UNAVAILABLE"));
}

TEST_F(BenchRunnerTest, StopsWhenAStreamEndsEarly) {
  StartServers(1, FakeFailure::kAllUnavailable);
  Connect(1);
  BuildRequests();
  RunnerOptions options = Closed(1, RpcKind::kStream);
  options.max_requests = 1000000;
  const StepResult result = Run(options);
  ExpectConsistent(result);
  EXPECT_GE(result.sent, 1);
  EXPECT_EQ(result.ok, 0);
  EXPECT_THAT(result.aborted, HasSubstr("ClassifyStream on " + servers_[0]->target() +
                                        " ended early: UNAVAILABLE: fake stream is down"));
}

TEST_F(BenchRunnerTest, CreateRejectsBadOptionsNamingTheField) {
  StartServers(1);
  Connect(1);
  BuildRequests();
  RunnerOptions options = Closed(1, RpcKind::kUnary);  // No bound at all.
  absl::StatusOr<std::unique_ptr<Runner>> runner = Runner::Create(options, pool_.get(), workload_);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(runner.status().message(), HasSubstr("needs a time or a request bound"));

  options.max_requests = 1;
  options.load.concurrency = 0;
  runner = Runner::Create(options, pool_.get(), workload_);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(runner.status().message(), HasSubstr("load.concurrency=0 must be >= 1"));

  options = Open(0, RpcKind::kUnary);
  options.max_requests = 1;
  runner = Runner::Create(options, pool_.get(), workload_);
  ASSERT_FALSE(runner.ok());
  EXPECT_THAT(runner.status().message(), HasSubstr("load.rate_rps=0"));
}

TEST(BenchChannelPoolTest, FailsClearlyWhenTheServerIsUnreachable) {
  std::string target;
  {
    FakeServer gone(FakeFailure::kNone);
    target = gone.target();
  }  // Shut down: nothing listens on its port now.
  ChannelPoolOptions options;
  options.targets = {target};
  options.connect_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<ChannelPool>> pool = ChannelPool::Connect(options);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(pool.status().message(), HasSubstr("cannot connect to server " + target));
}

}  // namespace
}  // namespace mmfuse::bench
