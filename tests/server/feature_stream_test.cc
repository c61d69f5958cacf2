// StreamFeatures and StreamFeaturesInteractive end to end on a loopback port,
// in process.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "server/server.h"
#include "tests/server/loopback_server.h"
#include "tests/testing/test_package.h"

namespace mmfuse::server {
namespace {

using ::testing::HasSubstr;

// `request` cut into chunks of 1..5 frames, modalities interleaved at random
// (each modality's frames in order), its request-level fields in the first
// chunk's header.
std::vector<v1::FeatureChunk> Chunks(const v1::ClassifyRequest& request, uint32_t seed,
                                     uint32_t partial_every_frames = 0) {
  std::mt19937 rng(seed);
  std::map<std::string, uint32_t> sent;
  std::vector<v1::FeatureChunk> chunks;
  while (true) {
    std::vector<std::string> open;
    for (const auto& [name, seq] : request.features()) {
      if (sent[name] < seq.frames()) open.push_back(name);
    }
    if (open.empty()) break;
    std::sort(open.begin(), open.end());  // Map order is not deterministic.
    const std::string& name = open[rng() % open.size()];
    const v1::FeatureSequence& seq = request.features().at(name);
    const uint32_t n = std::min<uint32_t>(seq.frames() - sent[name], 1 + rng() % 5);
    v1::FeatureChunk chunk;
    chunk.set_modality(name);
    chunk.set_offset(sent[name]);
    chunk.set_frames(n);
    chunk.set_dim(seq.dim());
    for (uint32_t i = sent[name] * seq.dim(); i < (sent[name] + n) * seq.dim(); ++i) {
      chunk.add_data(seq.data(i));
    }
    sent[name] += n;
    chunks.push_back(std::move(chunk));
  }
  v1::StreamHeader* header = chunks.front().mutable_header();
  header->set_request_id(request.request_id());
  header->set_model(request.model());
  header->set_top_k(request.top_k());
  *header->mutable_budget() = request.budget();
  header->set_priority(request.priority());
  header->set_partial_every_frames(partial_every_frames);
  return chunks;
}

class FeatureStreamTest : public ::testing::Test {
 protected:
  // Starts the server; `adjust` may change the options first.
  void StartServer(const std::function<void(ServerOptions&)>& adjust = nullptr) {
    ServerOptions options = testing::LoopbackServerOptions();
    if (adjust) adjust(options);
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = testing::InsecureLoopbackChannel(*server_);
    stub_ = v1::MultimodalClassifier::NewStub(channel_);
  }

  v1::ClassifyRequest Request(int i) {
    v1::ClassifyRequest request = client::RequestFromExample(generator_.Next());
    request.set_request_id(absl::StrCat("req-", i));
    return request;
  }

  static void SetDeadline(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  grpc::Status Classify(const v1::ClassifyRequest& request, v1::ClassifyResponse* response) {
    grpc::ClientContext context;
    SetDeadline(&context);
    return stub_->Classify(&context, request, response);
  }

  // Sends `chunks` over StreamFeatures and half-closes (unless the server
  // ended the call first); returns the call's status.
  grpc::Status Stream(const std::vector<v1::FeatureChunk>& chunks,
                      v1::ClassifyResponse* response) {
    grpc::ClientContext context;
    SetDeadline(&context);
    std::unique_ptr<grpc::ClientWriter<v1::FeatureChunk>> writer =
        stub_->StreamFeatures(&context, response);
    for (const v1::FeatureChunk& chunk : chunks) {
      if (!writer->Write(chunk)) break;  // The server has ended the call.
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::string Metrics() {
    httplib::Client http("127.0.0.1", server_->metrics_port());
    auto result = http.Get("/metrics");
    return result ? result->body : "";
  }

  data::Generator generator_{testing::SmallGeneratorOptions(), 4};
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> stub_;
};

TEST_F(FeatureStreamTest, StreamedSampleGetsClassifysAnswer) {
  StartServer();
  constexpr int kSamples = 8;
  for (int i = 0; i < kSamples; ++i) {
    SCOPED_TRACE(absl::StrCat("sample ", i));
    v1::ClassifyRequest request = Request(i);
    request.set_top_k(10);  // Every class, to compare every probability.
    v1::ClassifyResponse whole, streamed;
    ASSERT_TRUE(Classify(request, &whole).ok());
    grpc::Status status = Stream(Chunks(request, 100 + i), &streamed);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(streamed.request_id(), request.request_id());
    EXPECT_EQ(streamed.model(), "small");
    EXPECT_EQ(streamed.branch(), whole.branch());
    EXPECT_FALSE(streamed.interim());
    ASSERT_EQ(streamed.top_k_size(), 10);
    std::map<uint32_t, float> expected;
    for (const v1::ClassScore& score : whole.top_k()) expected[score.index()] = score.probability();
    for (const v1::ClassScore& score : streamed.top_k()) {
      EXPECT_NEAR(score.probability(), expected[score.index()], 1e-6) << score.label();
    }
  }
  // The last stream's state goes after its answer (OnDone, timer drop).
  ASSERT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(
                           "mmfuse_requests_total{code=\"OK\",model=\"small\",protocol=\"mmfuse\"} ",
                           2 * kSamples)));
  EXPECT_THAT(metrics, HasSubstr("mmfuse_feature_streams_open 0"));
}

TEST_F(FeatureStreamTest, BadChunkEndsTheStreamNamingItAndServerGoesOn) {
  StartServer();
  v1::ClassifyRequest request = Request(1);
  std::vector<v1::FeatureChunk> chunks = Chunks(request, 7);
  ASSERT_GT(chunks.size(), 6u);
  // Chunk 5 skips ahead of where its modality stands.
  const uint32_t expected_offset = chunks[5].offset();
  chunks[5].set_offset(expected_offset + 3);
  v1::ClassifyResponse response;
  grpc::Status status = Stream(chunks, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr(absl::StrCat("chunk 5: features[\"", chunks[5].modality(),
                                     "\"] offset=", expected_offset + 3,
                                     " leaves a gap after frame ", expected_offset)));

  // Unknown modality, a later header, a model that is not loaded.
  chunks = Chunks(request, 8);
  chunks[2].set_modality("smell");
  status = Stream(chunks, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("chunk 2: features[\"smell\"]: unknown modality"));
  chunks = Chunks(request, 9);
  chunks[1].mutable_header()->set_top_k(1);
  status = Stream(chunks, &response);
  EXPECT_THAT(status.error_message(), HasSubstr("chunk 1: header is set"));
  chunks = Chunks(request, 10);
  chunks[0].mutable_header()->set_model("nope");
  status = Stream(chunks, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  // The server keeps serving, streams and unary calls alike.
  EXPECT_TRUE(Stream(Chunks(request, 11), &response).ok());
  EXPECT_TRUE(Classify(request, &response).ok());
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("mmfuse_rejected_total{model=\"small\",reason=\"invalid\"} 3"));
  EXPECT_THAT(metrics,
              HasSubstr("mmfuse_requests_total{code=\"INVALID_ARGUMENT\",model=\"small\","
                        "protocol=\"mmfuse\"} 3"));
}

TEST_F(FeatureStreamTest, StreamLimitsAreEnforcedPerChunk) {
  StartServer([](ServerOptions& options) {
    options.max_stream_bytes = 4 * 6 * 8;  // Eight audio frames.
    options.max_stream_chunks = 1000;
  });
  v1::ClassifyRequest request = Request(2);
  std::vector<v1::FeatureChunk> chunks;
  for (uint32_t offset = 0; offset < 12; offset += 4) {
    v1::FeatureChunk chunk;
    chunk.set_modality("audio");
    chunk.set_offset(offset);
    chunk.set_frames(4);
    chunk.set_dim(6);
    for (int i = 0; i < 24; ++i) chunk.add_data(0.25f);
    chunks.push_back(chunk);
  }
  v1::ClassifyResponse response;
  grpc::Status status = Stream(chunks, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("chunk 2: the stream's data would reach 288"));
  EXPECT_THAT(status.error_message(), HasSubstr("max_stream_bytes=192"));
  EXPECT_THAT(Metrics(),
              HasSubstr("mmfuse_rejected_total{model=\"small\",reason=\"stream_limit\"} 1"));
}

TEST_F(FeatureStreamTest, AbandonedStreamIsEndedByTheIdleTimeoutAndFreed) {
  StartServer([](ServerOptions& options) {
    options.stream_idle_timeout = absl::Milliseconds(200);
  });
  v1::ClassifyRequest request = Request(3);
  const std::vector<v1::FeatureChunk> chunks = Chunks(request, 12);
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ClassifyResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::FeatureChunk>> writer =
      stub_->StreamFeatures(&context, &response);
  ASSERT_TRUE(writer->Write(chunks[0]));
  // Neither another chunk nor a half-close: Finish waits for the server.
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("stream_idle_timeout_ms=200"));
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
  EXPECT_EQ(server_->OpenFeatureStreams(), 0);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("mmfuse_feature_streams_open 0"));
  EXPECT_THAT(metrics,
              HasSubstr("mmfuse_requests_total{code=\"DEADLINE_EXCEEDED\",model=\"small\","
                        "protocol=\"mmfuse\"} 1"));
  // Still serving.
  EXPECT_TRUE(Stream(chunks, &response).ok());
}

TEST_F(FeatureStreamTest, StreamOpenTooLongIsEndedByTheStreamTimeout) {
  StartServer([](ServerOptions& options) {
    options.stream_timeout = absl::Milliseconds(300);
    options.stream_idle_timeout = absl::Seconds(60);
  });
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::ClassifyResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::FeatureChunk>> writer =
      stub_->StreamFeatures(&context, &response);
  ASSERT_TRUE(writer->Write(Chunks(Request(4), 13)[0]));
  grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("stream_timeout_ms=300"));
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
}

TEST_F(FeatureStreamTest, StreamWithoutChunksIsInvalidArgument) {
  StartServer();
  v1::ClassifyResponse response;
  grpc::Status status = Stream({}, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("without frames"));
}

TEST_F(FeatureStreamTest, InteractiveStreamAnswersInterimsThenTheFinalAnswer) {
  StartServer();
  constexpr uint32_t kEvery = 7;
  v1::ClassifyRequest request = Request(5);
  request.set_top_k(10);
  v1::ClassifyResponse whole;
  ASSERT_TRUE(Classify(request, &whole).ok());
  const std::vector<v1::FeatureChunk> chunks = Chunks(request, 14, kEvery);
  // Interims the server owes: one each time kEvery new frames have arrived.
  int expected_interims = 0;
  int64_t frames = 0, at_last = 0;
  for (const v1::FeatureChunk& chunk : chunks) {
    frames += chunk.frames();
    if (frames - at_last >= kEvery) {
      ++expected_interims;
      at_last = frames;
    }
  }
  ASSERT_GT(expected_interims, 1);

  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = stub_->StreamFeaturesInteractive(&context);
  std::vector<v1::ClassifyResponse> responses;
  std::thread reader([&] {
    v1::ClassifyResponse response;
    while (stream->Read(&response)) responses.push_back(response);
  });
  for (const v1::FeatureChunk& chunk : chunks) ASSERT_TRUE(stream->Write(chunk));
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(responses.size(), static_cast<size_t>(expected_interims + 1));
  for (int i = 0; i < expected_interims; ++i) {
    EXPECT_TRUE(responses[i].interim()) << i;
    EXPECT_EQ(responses[i].error().code(), 0) << responses[i].error().message();
    EXPECT_EQ(responses[i].request_id(), "req-5");
  }
  const v1::ClassifyResponse& last = responses.back();
  EXPECT_FALSE(last.interim());
  ASSERT_EQ(last.top_k_size(), 10);
  std::map<uint32_t, float> expected;
  for (const v1::ClassScore& score : whole.top_k()) expected[score.index()] = score.probability();
  for (const v1::ClassScore& score : last.top_k()) {
    EXPECT_NEAR(score.probability(), expected[score.index()], 1e-6);
  }
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
}

TEST_F(FeatureStreamTest, InteractiveBadChunkEndsTheStream) {
  StartServer();
  std::vector<v1::FeatureChunk> chunks = Chunks(Request(6), 15, 3);
  chunks[4].set_dim(99);
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = stub_->StreamFeaturesInteractive(&context);
  std::thread reader([&] {
    v1::ClassifyResponse response;
    while (stream->Read(&response)) {
    }
  });
  for (const v1::FeatureChunk& chunk : chunks) {
    if (!stream->Write(chunk)) break;
  }
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("chunk 4: features["));
  EXPECT_THAT(status.error_message(), HasSubstr(".dim=99"));
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
}

TEST_F(FeatureStreamTest, ScrapeShowsQueueAndProcessMetrics) {
  StartServer();
  v1::ClassifyResponse response;
  ASSERT_TRUE(Classify(Request(7), &response).ok());
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("mmfuse_queue_depth{branch=\"full\",model=\"small\"} 0"));
  EXPECT_THAT(metrics, HasSubstr("mmfuse_queue_capacity{model=\"small\"} "));
  EXPECT_THAT(metrics, HasSubstr("process_cpu_seconds_total "));
  EXPECT_THAT(metrics, HasSubstr("process_resident_memory_bytes "));
  EXPECT_THAT(metrics, HasSubstr("process_threads "));
  EXPECT_THAT(metrics, HasSubstr("process_start_time_seconds "));
}

TEST(FeatureStreamOptionsTest, BadStreamOptionsFailAtStartNamingTheField) {
  ServerOptions options;
  options.port = 0;
  options.metrics = false;
  options.packages.push_back(testing::SmallPackage());
  options.stream_idle_timeout = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("--stream_idle_timeout_ms=0 is outside [1, 86400000]"));
  options.stream_idle_timeout = absl::Seconds(1);
  options.max_stream_chunks = 0;
  server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("--max_stream_chunks=0 is outside [1, 1000000000]"));
}

}  // namespace
}  // namespace mmfuse::server
