// SIGTERM under load: mmfuse-server, run as its own process, finishes every
// request it accepted before it exits 0.
#include <signal.h>
#include <sys/wait.h>

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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

class ShutdownTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("shutdown_", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto package = testing::SmallPackage();
    ASSERT_NE(package, nullptr);
    ASSERT_TRUE(model::SaveModelPackage(*package, (dir_ / "model").string()).ok());
    port_ = testing::FreePort();
    ASSERT_TRUE(server_.Start(
        MMFUSE_SERVER_BINARY,
        {"--host=127.0.0.1", absl::StrCat("--port=", port_), "--nometrics",
         absl::StrCat("--model_dir=", (dir_ / "model").string()),
         // One worker and a deep queue, so work piles up to be drained.
         "--workers=1", "--max_batch_size=4"},
        (dir_ / "server.log").string()));
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                   grpc::InsecureChannelCredentials());
    // Generous: a ThreadSanitizer build on a busy machine starts slowly.
    ASSERT_TRUE(channel_->WaitForConnected(std::chrono::system_clock::now() +
                                           std::chrono::seconds(300)))
        << "server did not start on port " << port_;
    stub_ = v1::MultimodalClassifier::NewStub(channel_);
  }

  v1::ClassifyRequest Request(int i) {
    v1::ClassifyRequest request = client::RequestFromExample(generator_.Next());
    request.set_request_id(absl::StrCat("r", i));
    return request;
  }

  fs::path dir_;
  int port_ = 0;
  testing::ServerProcess server_;  // SIGKILLed at the end if still running.
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> stub_;
  data::Generator generator_{testing::SmallGeneratorOptions(), 9};
};

TEST_F(ShutdownTest, SigtermDrainsEveryRequestOfAStream) {
  constexpr int kSamples = 300;
  grpc::ClientContext context;
  auto stream = stub_->ClassifyStream(&context);
  std::vector<v1::ClassifyRequest> requests;
  for (int i = 0; i < kSamples; ++i) requests.push_back(Request(i));

  absl::Mutex mu;
  int answered = 0;
  std::map<std::string, int> answers;
  std::map<std::string, v1::ClassifyResponse> responses;
  std::thread reader([&] {
    v1::ClassifyResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      ++answered;
      ++answers[response.request_id()];
      responses[response.request_id()] = response;
    }
  });
  for (const auto& request : requests) ASSERT_TRUE(stream->Write(request));
  {
    // Stop while most requests are still queued behind the single worker.
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* n) { return *n >= 10; }, &answered));
  }
  kill(server_.pid(), SIGTERM);
  stream->WritesDone();
  reader.join();
  const grpc::Status status = stream->Finish();
  ASSERT_TRUE(server_.WaitForExit(absl::Minutes(5))) << "no exit after SIGTERM";
  const int exit_status = server_.exit_status();

  ASSERT_TRUE(WIFEXITED(exit_status));
  EXPECT_EQ(WEXITSTATUS(exit_status), 0);
  // The stream ends OK if the server read the half-close before its drain
  // ended the stream, else UNAVAILABLE as shutting down. Every request it
  // read is answered exactly once, computed or refused as shutting down;
  // the ones it had not read are unanswered and were never computed.
  if (status.ok()) {
    EXPECT_EQ(answers.size(), static_cast<size_t>(kSamples));
  } else {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status.error_message(), "server is shutting down");
  }
  int ok = 0;
  for (const auto& [id, count] : answers) {
    EXPECT_EQ(count, 1) << id;
    const v1::ClassifyResponse& r = responses[id];
    if (r.error().code() == 0) {
      ++ok;
      EXPECT_EQ(r.top_k_size(), 1) << id;
    } else {
      EXPECT_EQ(r.error().code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE)) << id;
      EXPECT_EQ(r.error().message(), "server is shutting down") << id;
    }
  }
  EXPECT_GT(ok, 10) << "requests queued at SIGTERM must still be computed";
  EXPECT_EQ(server_.ExitCounts(),
            absl::StrCat("accepted=", ok, " answered=", ok, " ok=", ok, " undelivered=0"));
}

TEST_F(ShutdownTest, SigtermUnderUnaryLoadLosesNoAcceptedRequest) {
  constexpr int kClients = 8;
  std::atomic<int> ok{0};
  absl::Mutex mu;
  std::map<std::string, int> failures;  // "code: message" -> count
  std::vector<std::thread> clients;
  std::vector<v1::ClassifyRequest> requests;
  for (int i = 0; i < kClients; ++i) requests.push_back(Request(i));
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      while (true) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        v1::ClassifyResponse response;
        const grpc::Status status = stub_->Classify(&context, requests[c], &response);
        if (status.ok()) {
          ok.fetch_add(1);
          continue;
        }
        absl::MutexLock lock(&mu);
        ++failures[absl::StrCat(status.error_code(), ": ", status.error_message())];
        return;  // The server refused: it is going away.
      }
    });
  }
  while (ok.load() < 50) std::this_thread::yield();
  const int exit_status = server_.Terminate();
  for (auto& t : clients) t.join();

  ASSERT_TRUE(WIFEXITED(exit_status));
  EXPECT_EQ(WEXITSTATUS(exit_status), 0);
  // Every request the server accepted was answered, and every answer it
  // computed reached its client.
  EXPECT_EQ(server_.ExitCounts(), absl::StrCat("accepted=", ok.load(), " answered=", ok.load(),
                                               " ok=", ok.load(), " undelivered=0"))
      << "the clients' failures: " << absl::StrJoin(failures, "; ", absl::PairFormatter(" x"));
  // Each client stops at its first failure, and every one is the server's
  // refusal: the server keeps refusing until its clients have stopped
  // calling, and only then lets gRPC shut down (which would cancel, bare
  // CANCELLED, the calls it had not yet handed over).
  int failed = 0;
  for (const auto& [what, count] : failures) {
    failed += count;
    EXPECT_EQ(what, "14: server is shutting down");
  }
  EXPECT_EQ(failed, kClients);
}

}  // namespace
}  // namespace mmfuse
