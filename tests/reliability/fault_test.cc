// Faults a client can inflict, against the server in process: clients that
// vanish mid-stream or cancel mid-batch, deadlines already expired, streams
// held idle, and slow scrapers of the metrics endpoint. After each, the
// server has answered (or released) everything it took and serves normally.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
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

// `request` as feature chunks of at most 2 frames, modalities in turn, the
// header on chunk 0.
std::vector<v1::FeatureChunk> Chunks(const v1::ClassifyRequest& request) {
  std::vector<v1::FeatureChunk> chunks;
  std::map<std::string, uint32_t> sent;
  bool more = true;
  while (more) {
    more = false;
    for (const auto& [name, seq] : request.features()) {
      if (sent[name] >= seq.frames()) continue;
      const uint32_t n = std::min<uint32_t>(2, seq.frames() - sent[name]);
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
      more = true;
    }
  }
  chunks.front().mutable_header()->set_request_id(request.request_id());
  return chunks;
}

// Parses Server::RequestCounts() ("accepted=A answered=B ok=C undelivered=U").
std::map<std::string, int64_t> ParseCounts(const std::string& text) {
  std::map<std::string, int64_t> counts;
  for (absl::string_view field : absl::StrSplit(text, ' ')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(field, '=');
    int64_t n = 0;
    if (absl::SimpleAtoi(kv.second, &n)) counts[kv.first] = n;
  }
  return counts;
}

class FaultTest : public ::testing::Test {
 protected:
  void StartServer(const std::function<void(ServerOptions&)>& adjust = nullptr) {
    ServerOptions options = testing::LoopbackServerOptions();
    options.serving.workers = 1;
    options.serving.max_batch_size = 4;
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

  grpc::Status Classify(int i) {
    grpc::ClientContext context;
    SetDeadline(&context);
    v1::ClassifyResponse response;
    return stub_->Classify(&context, Request(i), &response);
  }

  absl::StatusOr<std::string> Scrape(int timeout_s = 10) {
    httplib::Client http("127.0.0.1", server_->metrics_port());
    http.set_connection_timeout(timeout_s);
    http.set_read_timeout(timeout_s);
    auto result = http.Get("/metrics");
    if (!result) return absl::UnavailableError(httplib::to_string(result.error()));
    if (result->status != 200) return absl::InternalError(absl::StrCat("HTTP ", result->status));
    return result->body;
  }

  // Waits until every request the server accepted is answered; returns the
  // counts then.
  std::map<std::string, int64_t> AwaitAllAnswered() {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::map<std::string, int64_t> counts = ParseCounts(server_->RequestCounts());
    while (counts["accepted"] != counts["answered"] && absl::Now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      counts = ParseCounts(server_->RequestCounts());
    }
    return counts;
  }

  data::Generator generator_{testing::SmallGeneratorOptions(), 6};
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> stub_;
};

TEST_F(FaultTest, ClientVanishingMidClassifyStreamLeavesNothingBehind) {
  StartServer();
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext context;
    SetDeadline(&context);
    auto stream = stub_->ClassifyStream(&context);
    for (int i = 0; i < 64; ++i) {
      if (!stream->Write(Request(i))) break;
    }
    v1::ClassifyResponse response;
    ASSERT_TRUE(stream->Read(&response));  // Mid-stream: answers are flowing.
    context.TryCancel();  // What the server sees of a client that is gone.
    while (stream->Read(&response)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  const std::map<std::string, int64_t> counts = AwaitAllAnswered();
  EXPECT_EQ(counts.at("accepted"), counts.at("answered"));
  EXPECT_GT(counts.at("accepted"), 0);
  EXPECT_TRUE(Classify(1).ok());
}

TEST_F(FaultTest, ClientVanishingMidFeatureStreamFreesIt) {
  StartServer();
  const std::vector<v1::FeatureChunk> chunks = Chunks(Request(1));
  ASSERT_GT(chunks.size(), 4u);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  v1::ClassifyResponse response;
  for (int i = 0; i < 8; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    SetDeadline(contexts.back().get());
    if (i % 2 == 0) {
      auto writer = stub_->StreamFeatures(contexts.back().get(), &response);
      for (int c = 0; c < 3; ++c) ASSERT_TRUE(writer->Write(chunks[c]));
      contexts.back()->TryCancel();
      EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::CANCELLED);
    } else {
      auto stream = stub_->StreamFeaturesInteractive(contexts.back().get());
      for (int c = 0; c < 3; ++c) ASSERT_TRUE(stream->Write(chunks[c]));
      contexts.back()->TryCancel();
      while (stream->Read(&response)) {
      }
      EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
    }
  }
  // The server may see a cancelled stream after the client gave up on it:
  // wait until it has counted all 8 as CANCELLED, then until all are freed.
  const std::regex all_cancelled("mmfuse_requests_total\\{code=\"CANCELLED\"[^}]*\\} 8\n");
  std::string metrics;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  do {
    absl::StatusOr<std::string> scraped = Scrape();
    ASSERT_TRUE(scraped.ok()) << scraped.status();
    metrics = *scraped;
    if (std::regex_search(metrics, all_cancelled)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  } while (absl::Now() < deadline);
  ASSERT_TRUE(std::regex_search(metrics, all_cancelled)) << metrics;
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
  EXPECT_EQ(server_->OpenFeatureStreams(), 0);
  absl::StatusOr<std::string> after = Scrape();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_THAT(*after, HasSubstr("mmfuse_feature_streams_open 0"));
  // A whole stream still works.
  grpc::ClientContext context;
  SetDeadline(&context);
  auto writer = stub_->StreamFeatures(&context, &response);
  for (const auto& chunk : chunks) ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  EXPECT_TRUE(writer->Finish().ok());
}

TEST_F(FaultTest, CancelMidBatchAnswersEveryOtherCallAndLosesNothing) {
  StartServer();
  constexpr int kCalls = 48;
  absl::Mutex mu;
  std::vector<grpc::ClientContext*> contexts(kCalls, nullptr);
  std::vector<grpc::Status> statuses(kCalls);
  int started = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kCalls; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext context;
      SetDeadline(&context);
      const v1::ClassifyRequest request = [&] {
        absl::MutexLock lock(&mu);
        contexts[i] = &context;
        ++started;
        return Request(i);
      }();
      v1::ClassifyResponse response;
      const grpc::Status status = stub_->Classify(&context, request, &response);
      absl::MutexLock lock(&mu);
      contexts[i] = nullptr;  // The context dies with this thread.
      statuses[i] = status;
    });
  }
  {
    // With one worker most calls are queued or in a batch now: cancel every
    // other one still open.
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(+[](int* n) { return *n == kCalls; }, &started));
    for (int i = 0; i < kCalls; i += 2) {
      if (contexts[i] != nullptr) contexts[i]->TryCancel();
    }
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCalls; ++i) {
    if (i % 2 == 0) {
      EXPECT_THAT(statuses[i].error_code(),
                  ::testing::AnyOf(grpc::StatusCode::OK, grpc::StatusCode::CANCELLED))
          << i << ": " << statuses[i].error_message();
    } else {
      EXPECT_TRUE(statuses[i].ok()) << i << ": " << statuses[i].error_message();
    }
  }
  const std::map<std::string, int64_t> counts = AwaitAllAnswered();
  EXPECT_EQ(counts.at("accepted"), counts.at("answered"));
  EXPECT_TRUE(Classify(100).ok());
}

TEST_F(FaultTest, AlreadyExpiredDeadlineIsRefusedOnEveryRpcAndNeverComputed) {
  StartServer();
  const auto expired = [](grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  };
  v1::ClassifyResponse response;
  {
    grpc::ClientContext context;
    expired(&context);
    EXPECT_EQ(stub_->Classify(&context, Request(1), &response).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  {
    grpc::ClientContext context;
    expired(&context);
    auto stream = stub_->ClassifyStream(&context);
    stream->Write(Request(2));
    stream->WritesDone();
    while (stream->Read(&response)) {
    }
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  {
    grpc::ClientContext context;
    expired(&context);
    auto writer = stub_->StreamFeatures(&context, &response);
    for (const auto& chunk : Chunks(Request(3))) {
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  // None of them reached a model.
  EXPECT_EQ(server_->RequestCounts(), "accepted=0 answered=0 ok=0 undelivered=0");
  EXPECT_TRUE(Classify(4).ok());
}

TEST_F(FaultTest, DeadlineExpiringInTheQueueIsDeadlineExceeded) {
  StartServer();
  // 1 ms cannot cover a queue behind a busy worker; a few of these expire
  // queued and are answered DEADLINE_EXCEEDED, or are refused at admission
  // because the queue's estimated wait already exceeds their deadline
  // (RESOURCE_EXHAUSTED naming the estimate, docs/RELIABILITY.md
  // "Overload"); the rest are computed.
  // The requests are made first: the generator is not thread-safe
  // (ThreadSanitizer caught the threads sharing it).
  std::vector<v1::ClassifyRequest> requests;
  for (int i = 0; i < 32; ++i) requests.push_back(Request(i));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, expired{0}, other{0};
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i] {
      const bool short_deadline = i % 2 == 0;
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::milliseconds(short_deadline ? 1 : 30000));
      v1::ClassifyResponse response;
      const grpc::Status status = stub_->Classify(&context, requests[i], &response);
      if (status.ok()) {
        ++ok;
      } else if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        ++expired;
      } else if (short_deadline && status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
                 absl::StrContains(status.error_message(), "before the request's deadline")) {
        ++expired;  // shed: it could not have made its deadline
      } else {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GE(ok.load(), 16);  // Every call with a 30 s deadline.
  const std::map<std::string, int64_t> counts = AwaitAllAnswered();
  EXPECT_EQ(counts.at("accepted"), counts.at("answered"));
  EXPECT_TRUE(Classify(100).ok());
}

TEST_F(FaultTest, IdleFeatureStreamsOfBothKindsAreDeadlineExceededAndFreed) {
  // StreamFeatures alone is pinned by tests/server/feature_stream_test.cc;
  // here many idle streams of both kinds at once, while others are served.
  StartServer([](ServerOptions& options) {
    options.stream_idle_timeout = absl::Milliseconds(300);
  });
  const std::vector<v1::FeatureChunk> chunks = Chunks(Request(1));
  constexpr int kIdle = 6;
  std::vector<std::thread> idle;
  std::vector<grpc::Status> statuses(2 * kIdle);
  for (int i = 0; i < 2 * kIdle; ++i) {
    idle.emplace_back([&, i] {
      grpc::ClientContext context;
      SetDeadline(&context);
      v1::ClassifyResponse response;
      if (i % 2 == 0) {
        auto writer = stub_->StreamFeatures(&context, &response);
        writer->Write(chunks[0]);
        statuses[i] = writer->Finish();  // Never half-closes.
      } else {
        auto stream = stub_->StreamFeaturesInteractive(&context);
        stream->Write(chunks[0]);
        while (stream->Read(&response)) {
        }
        statuses[i] = stream->Finish();
      }
    });
  }
  // Served meanwhile.
  EXPECT_TRUE(Classify(2).ok());
  for (auto& t : idle) t.join();
  for (const grpc::Status& status : statuses) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
    EXPECT_THAT(status.error_message(), HasSubstr("stream_idle_timeout_ms=300"));
  }
  EXPECT_TRUE(server_->AwaitOpenFeatureStreamsAtMost(0, absl::Seconds(30)));
  EXPECT_TRUE(Classify(3).ok());
}

// A TCP connection to the metrics port, driven by hand.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& bytes) { (void)!send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }

 private:
  int fd_;
  bool connected_ = false;
};

TEST_F(FaultTest, MetricsEndpointServesScrapesWhileSlowClientsHoldConnections) {
  StartServer();
  // Four that connect and send nothing, two that trickle a request a byte
  // at a time: fewer than the endpoint's handler threads (8).
  std::vector<std::unique_ptr<RawConnection>> silent;
  for (int i = 0; i < 4; ++i) {
    silent.push_back(std::make_unique<RawConnection>(server_->metrics_port()));
    ASSERT_TRUE(silent.back()->connected());
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> tricklers;
  for (int i = 0; i < 2; ++i) {
    tricklers.emplace_back([&] {
      RawConnection connection(server_->metrics_port());
      const std::string request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
      for (size_t at = 0; !stop.load(); ++at) {
        connection.Send(std::string(1, at < request.size() ? request[at] : 'x'));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // All parked on the server.
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::string> metrics = Scrape();
    ASSERT_TRUE(metrics.ok()) << "scrape " << i << ": " << metrics.status();
    EXPECT_THAT(*metrics, HasSubstr("mmfuse_build_info"));
  }
  EXPECT_TRUE(Classify(1).ok());
  stop.store(true);
  for (auto& t : tricklers) t.join();
  silent.clear();
  EXPECT_TRUE(Scrape().ok());
}

}  // namespace
}  // namespace mmfuse::server
