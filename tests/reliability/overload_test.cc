// Overload: mmfuse-server, as its own process with one worker and a small
// bounded queue, driven at many times its capacity. The excess is refused
// RESOURCE_EXHAUSTED at once (never left to time out), memory stays bounded,
// every accepted request is answered within the default timeout, and the
// server serves normally once the load drops.
#include <grpcpp/grpcpp.h>

#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "model/model_package.h"
#include "tests/reliability/server_process.h"
#include "tests/testing/test_package.h"

namespace mmfuse {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxQueueSize = 4;
constexpr int kDefaultTimeoutMs = 3000;
// Concurrent closed-loop clients: with one worker taking batches of at most
// 4 and a queue of 4, about 8 requests can be in the server at once; the
// rest of the 32 are excess at every moment.
constexpr int kClients = 32;
constexpr absl::Duration kBurst = absl::Seconds(3);
// RSS may grow this much over the burst: far more than the queue can hold
// (8 small requests), far less than unbounded growth under ~10^4 requests.
constexpr int64_t kRssGrowthBoundKib = 96 * 1024;

struct BurstResult {
  int64_t ok = 0;
  int64_t exhausted = 0;
  std::map<std::string, int64_t> other;  // "code: message" -> count
  absl::Duration slowest_answered = absl::ZeroDuration();
  std::string exhausted_message;  // One of the refusals'.
};

class OverloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / "mmfuse_overload";
    fs::remove_all(dir_);
    auto package = testing::SmallPackage();
    ASSERT_NE(package, nullptr);
    ASSERT_TRUE(model::SaveModelPackage(*package, (dir_ / "model").string()).ok());
    port_ = testing::FreePort();
    ASSERT_TRUE(server_.Start(
        MMFUSE_SERVER_BINARY,
        {"--host=127.0.0.1", absl::StrCat("--port=", port_), "--nometrics",
         absl::StrCat("--model_dir=", (dir_ / "model").string()), "--workers=1",
         "--max_batch_size=4", absl::StrCat("--max_queue_size=", kMaxQueueSize),
         absl::StrCat("--default_timeout_ms=", kDefaultTimeoutMs),
         // Client deadlines are capped at the default: the server alone
         // decides how long an accepted request may take.
         "--allow_timeout_override=false"},
        (dir_ / "server.log").string()));
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                   grpc::InsecureChannelCredentials());
    ASSERT_TRUE(channel_->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(60)))
        << server_.Log();
    stub_ = v1::MultimodalClassifier::NewStub(channel_);
    for (int i = 0; i < 64; ++i) requests_.push_back(client::RequestFromExample(generator_.Next()));
  }

  grpc::Status Classify(int i, absl::Duration* took) {
    grpc::ClientContext context;
    // Far beyond the server's cap: a stuck request would show as a slow
    // answer, not as a client-side timeout.
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ClassifyResponse response;
    const absl::Time start = absl::Now();
    const grpc::Status status = stub_->Classify(&context, requests_[i % requests_.size()], &response);
    *took = absl::Now() - start;
    return status;
  }

  // `clients` threads send back to back for `duration`.
  BurstResult Burst(int clients, absl::Duration duration) {
    BurstResult result;
    absl::Mutex mu;
    const absl::Time end = absl::Now() + duration;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        BurstResult mine;
        for (int i = c; absl::Now() < end; i += clients) {
          absl::Duration took;
          const grpc::Status status = Classify(i, &took);
          if (status.ok()) {
            ++mine.ok;
            mine.slowest_answered = std::max(mine.slowest_answered, took);
          } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
            ++mine.exhausted;
            mine.exhausted_message = status.error_message();
          } else {
            ++mine.other[absl::StrCat(status.error_code(), ": ", status.error_message())];
          }
        }
        absl::MutexLock lock(&mu);
        result.ok += mine.ok;
        result.exhausted += mine.exhausted;
        for (const auto& [what, n] : mine.other) result.other[what] += n;
        result.slowest_answered = std::max(result.slowest_answered, mine.slowest_answered);
        if (!mine.exhausted_message.empty()) result.exhausted_message = mine.exhausted_message;
      });
    }
    for (auto& t : threads) t.join();
    return result;
  }

  fs::path dir_;
  int port_ = 0;
  testing::ServerProcess server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> stub_;
  data::Generator generator_{testing::SmallGeneratorOptions(), 11};
  std::vector<v1::ClassifyRequest> requests_;
};

TEST_F(OverloadTest, ExcessIsRefusedAtOnceMemoryIsBoundedAndTheServerRecovers) {
  // Warm up (allocator arenas, gRPC buffers, LibTorch) at a load it carries.
  const BurstResult warm = Burst(2, absl::Seconds(1));
  ASSERT_GT(warm.ok, 0);
  ASSERT_EQ(warm.exhausted, 0);
  const int64_t rss_before = server_.RssKib();
  ASSERT_GT(rss_before, 0);

  const BurstResult burst = Burst(kClients, kBurst);
  const int64_t rss_after = server_.RssKib();

  // The excess is refused, and only refused: no timeouts, no other errors.
  EXPECT_GT(burst.ok, 0);
  EXPECT_GT(burst.exhausted, burst.ok) << "the load must be several times the capacity";
  EXPECT_TRUE(burst.other.empty()) << ::testing::PrintToString(burst.other);
  EXPECT_THAT(burst.exhausted_message,
              ::testing::HasSubstr(absl::StrCat("is full (max_queue_size=", kMaxQueueSize, ")")));
  // Accepted requests finish within the default timeout (the server's cap).
  EXPECT_LE(burst.slowest_answered, absl::Milliseconds(kDefaultTimeoutMs));
  // Memory: bounded by the queue, not by the offered load.
  EXPECT_LE(rss_after - rss_before, kRssGrowthBoundKib)
      << "RSS " << rss_before << " KiB -> " << rss_after << " KiB over " << burst.ok + burst.exhausted
      << " requests";

  // Load drops: everything is served again.
  const BurstResult after = Burst(1, absl::Seconds(1));
  EXPECT_GT(after.ok, 0);
  EXPECT_EQ(after.exhausted, 0);
  EXPECT_TRUE(after.other.empty()) << ::testing::PrintToString(after.other);

  // Nothing accepted was lost: the server answered every request it took,
  // and computed exactly the answers the clients received.
  const int exit_status = server_.Terminate();
  ASSERT_TRUE(WIFEXITED(exit_status));
  EXPECT_EQ(WEXITSTATUS(exit_status), 0);
  const int64_t ok = warm.ok + burst.ok + after.ok;
  const int64_t total = ok + warm.exhausted + burst.exhausted + after.exhausted;
  EXPECT_EQ(server_.ExitCounts(),
            absl::StrCat("accepted=", total, " answered=", total, " ok=", ok, " undelivered=0"));
  std::printf("overload: %lld ok, %lld RESOURCE_EXHAUSTED in %s with %d clients; slowest ok %s; "
              "RSS %lld -> %lld KiB\n",
              static_cast<long long>(burst.ok), static_cast<long long>(burst.exhausted),
              absl::FormatDuration(kBurst).c_str(), kClients,
              absl::FormatDuration(burst.slowest_answered).c_str(),
              static_cast<long long>(rss_before), static_cast<long long>(rss_after));
}

}  // namespace
}  // namespace mmfuse
