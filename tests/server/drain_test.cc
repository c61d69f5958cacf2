// Shutdown with streams open on every front end: each stream stops reading,
// answers what it read and ends UNAVAILABLE "server is shutting down" at
// once, not at its idle timeout nor at the drain deadline (both set far
// beyond the test's bound on Shutdown), and nothing accepted is lost.
#include <grpcpp/grpcpp.h>

#include <future>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/classifier_client.h"
#include "client/bench/kserve_codec.h"
#include "data/generator.h"
#include "gtest/gtest.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "server/server.h"
#include "tests/server/loopback_server.h"
#include "tests/testing/test_package.h"

namespace mmfuse {
namespace {

constexpr char kShuttingDown[] = "server is shutting down";

class DrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options = testing::LoopbackServerOptions();
    options.metrics = false;
    // Far beyond any wait below: a stream that ended by timeout or at the
    // drain deadline would fail the test by its status, not by its time.
    options.stream_timeout = absl::Hours(1);
    options.stream_idle_timeout = absl::Hours(1);
    options.drain_timeout = absl::Hours(1);
    absl::StatusOr<std::unique_ptr<server::Server>> server = server::Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = testing::InsecureLoopbackChannel(*server_);
    v1_ = v1::MultimodalClassifier::NewStub(channel_);
    kserve_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  v1::ClassifyRequest Request(const std::string& id) {
    v1::ClassifyRequest request = client::RequestFromExample(generator_.Next());
    request.set_request_id(id);
    return request;
  }

  // Shuts the server down on another thread; get() returns once it is down.
  std::future<void> ShutdownAsync() {
    return std::async(std::launch::async, [this] { server_->Shutdown(); });
  }

  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> v1_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> kserve_;
  data::Generator generator_{testing::SmallGeneratorOptions(), 5};
};

// A header-only first chunk: the stream is open, its request not yet sent.
v1::FeatureChunk HeaderChunk(const std::string& id) {
  v1::FeatureChunk chunk;
  chunk.mutable_header()->set_request_id(id);
  return chunk;
}

TEST_F(DrainTest, OpenStreamsOfEveryKindEndUnavailableAtOnce) {
  // ClassifyStream and ModelStreamInfer: one request answered, the client
  // neither half-closes nor sends more.
  grpc::ClientContext classify_context;
  auto classify = v1_->ClassifyStream(&classify_context);
  ASSERT_TRUE(classify->Write(Request("c1")));
  v1::ClassifyResponse classified;
  ASSERT_TRUE(classify->Read(&classified));
  ASSERT_FALSE(classified.has_error()) << classified.error().message();

  grpc::ClientContext infer_context;
  auto infer = kserve_->ModelStreamInfer(&infer_context);
  inference::ModelInferRequest infer_request;
  ASSERT_TRUE(infer_request.ParseFromString(bench::SerializeAsModelInfer(Request("k1"))));
  ASSERT_TRUE(infer->Write(infer_request));
  inference::ModelStreamInferResponse inferred;
  ASSERT_TRUE(infer->Read(&inferred));
  ASSERT_TRUE(inferred.error_message().empty()) << inferred.error_message();

  // StreamFeatures and StreamFeaturesInteractive: still uploading.
  grpc::ClientContext upload_context;
  v1::ClassifyResponse uploaded;
  auto upload = v1_->StreamFeatures(&upload_context, &uploaded);
  ASSERT_TRUE(upload->Write(HeaderChunk("u1")));
  grpc::ClientContext interactive_context;
  auto interactive = v1_->StreamFeaturesInteractive(&interactive_context);
  ASSERT_TRUE(interactive->Write(HeaderChunk("i1")));
  ASSERT_TRUE(server_->AwaitOpenStreamingCallsAtLeast(4, absl::Seconds(60)));

  std::future<void> down = ShutdownAsync();

  v1::ClassifyResponse more;
  EXPECT_FALSE(classify->Read(&more));
  grpc::Status status = classify->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message(), kShuttingDown);

  inference::ModelStreamInferResponse more_inferred;
  EXPECT_FALSE(infer->Read(&more_inferred));
  status = infer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message(), kShuttingDown);

  status = upload->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message(), kShuttingDown);

  v1::ClassifyResponse interim;
  EXPECT_FALSE(interactive->Read(&interim));
  status = interactive->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_EQ(status.error_message(), kShuttingDown);

  // Bounded only so that a regression fails instead of hanging: with the
  // drain deadline an hour away, only the drain can end these streams.
  ASSERT_EQ(down.wait_for(std::chrono::minutes(5)), std::future_status::ready);
  EXPECT_EQ(server_->RequestCounts(), "accepted=2 answered=2 ok=2 undelivered=0");
}

TEST_F(DrainTest, StreamAnswersWhatItReadThenEndsUnavailable) {
  // Requests in flight at shutdown: every request the server read is
  // answered (computed, or refused in band as shutting down) before the
  // stream ends UNAVAILABLE; those it had not read get no answer and were
  // never computed.
  grpc::ClientContext context;
  auto stream = v1_->ClassifyStream(&context);
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) ASSERT_TRUE(stream->Write(Request(absl::StrCat("s", i))));
  ASSERT_TRUE(server_->AwaitOpenStreamingCallsAtLeast(1, absl::Seconds(60)));
  std::future<void> down = ShutdownAsync();
  int answered = 0;
  int computed = 0;
  v1::ClassifyResponse response;
  while (stream->Read(&response)) {
    ++answered;
    if (!response.has_error()) {
      ++computed;
    } else {
      EXPECT_EQ(response.error().code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
      EXPECT_EQ(response.error().message(), kShuttingDown);
    }
  }
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  ASSERT_EQ(down.wait_for(std::chrono::minutes(5)), std::future_status::ready);
  EXPECT_LE(answered, kRequests);
  // The client read every answer it was sent: nothing undelivered.
  EXPECT_EQ(server_->RequestCounts(), absl::StrCat("accepted=", computed, " answered=", computed,
                                                   " ok=", computed, " undelivered=0"));
}

}  // namespace
}  // namespace mmfuse
