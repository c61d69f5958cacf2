// The server end to end on a loopback port, in process.
#include "server/server.h"

#include <google/protobuf/descriptor.pb.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "server/reflection_v1.h"
#include "tests/server/loopback_server.h"
#include "tests/testing/test_package.h"

namespace mmfuse::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kMaxMessageBytes = 256 << 10;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options = testing::LoopbackServerOptions();
    options.max_receive_message_bytes = kMaxMessageBytes;
    absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    target_ = testing::LoopbackTarget(*server_);
    channel_ = testing::InsecureLoopbackChannel(*server_);
    stub_ = v1::MultimodalClassifier::NewStub(channel_);
  }

  v1::ClassifyRequest Request(int i) {
    v1::ClassifyRequest request = client::RequestFromExample(generator_.Next());
    request.set_request_id(absl::StrCat("req-", i));
    return request;
  }

  grpc::Status Classify(const v1::ClassifyRequest& request, v1::ClassifyResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->Classify(&context, request, response);
  }

  data::Generator generator_{testing::SmallGeneratorOptions(), 4};
  std::unique_ptr<Server> server_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> stub_;
};

TEST_F(ServerTest, ClassifyAnswersWithTopKCostAndTimings) {
  v1::ClassifyRequest request = Request(1);
  request.set_top_k(3);
  request.mutable_budget()->set_level(v1::BUDGET_LEVEL_FAST);
  v1::ClassifyResponse response;
  grpc::Status status = Classify(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.request_id(), "req-1");
  EXPECT_EQ(response.model(), "small");
  ASSERT_EQ(response.top_k_size(), 3);
  EXPECT_GE(response.top_k(0).probability(), response.top_k(1).probability());
  EXPECT_GE(response.top_k(1).probability(), response.top_k(2).probability());
  EXPECT_EQ(response.top_k(0).label(), data::GeneratedLabels()[response.top_k(0).index()]);
  EXPECT_EQ(response.branch(), "full");
  EXPECT_EQ(response.modalities_used_size(), static_cast<int>(request.features_size()));
  EXPECT_GT(response.gflops(), 0);
  EXPECT_EQ(response.batch_size(), 1u);
  EXPECT_EQ(response.budget().level(), v1::BUDGET_LEVEL_FAST);
  EXPECT_GE(response.timings().total_us(),
            response.timings().queue_us() + response.timings().compute_us());
}

TEST_F(ServerTest, HalfPrecisionInputGivesTheSameAnswer) {
  // Values exactly representable in fp16, so both encodings carry equal data.
  v1::ClassifyRequest fp32 = Request(2);
  v1::ClassifyRequest fp16 = fp32;
  for (auto& [name, seq] : *fp32.mutable_features()) {
    std::string bytes;
    v1::FeatureSequence& half = (*fp16.mutable_features())[name];
    half.clear_data();
    for (int i = 0; i < seq.data_size(); ++i) {
      const int q = static_cast<int>(std::lround(seq.data(i) * 4));  // Multiples of 1/4.
      seq.set_data(i, q / 4.0f);
      // Encode q/4 as a half: exact for |q| < 2048.
      uint16_t h = 0;
      if (q != 0) {
        const int a = std::abs(q);
        int exponent = 0;
        while ((a >> exponent) > 1) ++exponent;  // a in [2^e, 2^(e+1)).
        const int mantissa = ((a << 10) >> exponent) & 0x3FF;
        h = static_cast<uint16_t>((q < 0 ? 0x8000 : 0) | ((exponent - 2 + 15) << 10) | mantissa);
      }
      bytes.push_back(static_cast<char>(h & 0xFF));
      bytes.push_back(static_cast<char>(h >> 8));
    }
    half.set_data_fp16(bytes);
  }
  v1::ClassifyResponse a, b;
  ASSERT_TRUE(Classify(fp32, &a).ok());
  grpc::Status status = Classify(fp16, &b);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(a.top_k_size(), b.top_k_size());
  EXPECT_EQ(a.top_k(0).index(), b.top_k(0).index());
  EXPECT_NEAR(a.top_k(0).probability(), b.top_k(0).probability(), 1e-5);
}

TEST_F(ServerTest, BadRequestIsInvalidArgumentAndOthersStillServed) {
  v1::ClassifyRequest bad = Request(3);
  (*bad.mutable_features())["audio"].set_dim(99);
  v1::ClassifyResponse response;
  grpc::Status status = Classify(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("features[\"audio\"].dim=99"));
  v1::ClassifyRequest empty;
  status = Classify(empty, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("features is empty"));
  ASSERT_TRUE(Classify(Request(4), &response).ok());
  EXPECT_EQ(response.request_id(), "req-4");
}

TEST_F(ServerTest, OversizedMessageIsResourceExhausted) {
  v1::ClassifyRequest request = Request(5);
  v1::FeatureSequence& audio = (*request.mutable_features())["audio"];
  for (int i = 0; i < kMaxMessageBytes / 4; ++i) audio.add_data(0.5f);
  v1::ClassifyResponse response;
  EXPECT_EQ(Classify(request, &response).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Classify(Request(6), &response).ok());
}

TEST_F(ServerTest, UnknownModelIsNotFound) {
  v1::ClassifyRequest request = Request(7);
  request.set_model("nonexistent");
  v1::ClassifyResponse response;
  grpc::Status status = Classify(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("\"nonexistent\""));
}

TEST_F(ServerTest, ExpiredDeadlineIsNeverComputed) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() - std::chrono::seconds(1));
  v1::ClassifyResponse response;
  EXPECT_EQ(stub_->Classify(&context, Request(8), &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(ServerTest, StreamAnswersEveryRequestExactlyOnce) {
  constexpr int kSamples = 100;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->ClassifyStream(&context);
  std::map<std::string, int> answers;
  std::map<std::string, v1::ClassifyResponse> last;
  std::thread reader([&] {
    v1::ClassifyResponse response;
    while (stream->Read(&response)) {
      ++answers[response.request_id()];
      last[response.request_id()] = response;
    }
  });
  for (int i = 0; i < kSamples; ++i) {
    v1::ClassifyRequest request = Request(i);
    if (i % 10 == 3) (*request.mutable_features())["text"].set_frames(1000);  // Invalid.
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  reader.join();
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), static_cast<size_t>(kSamples));
  for (int i = 0; i < kSamples; ++i) {
    const std::string id = absl::StrCat("req-", i);
    EXPECT_EQ(answers[id], 1) << id;
    if (i % 10 == 3) {
      EXPECT_EQ(last[id].error().code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      EXPECT_THAT(last[id].error().message(), HasSubstr("features[\"text\"].frames=1000"));
    } else {
      EXPECT_EQ(last[id].error().code(), 0) << last[id].error().message();
      EXPECT_EQ(last[id].top_k_size(), 1) << id;
    }
  }
}

TEST_F(ServerTest, StreamOfUnknownModelAnswersEachRequest) {
  grpc::ClientContext context;
  auto stream = stub_->ClassifyStream(&context);
  v1::ClassifyRequest request = Request(1);
  request.set_model("nope");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  v1::ClassifyResponse response;
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.error().code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, GetModelInfoDescribesThePackage) {
  client::ClassifierClient client(target_);
  absl::StatusOr<v1::ModelInfo> info = client.GetModelInfo("", absl::Seconds(10));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->name(), "small");
  ASSERT_EQ(info->modalities_size(), 3);
  EXPECT_EQ(info->modalities(0).name(), "audio");
  EXPECT_EQ(info->modalities(0).feature_dim(), 6u);
  EXPECT_EQ(info->modalities(0).max_frames(), 24u);
  EXPECT_EQ(info->labels_size(), 10);
  EXPECT_EQ(info->fusion_mode(), "concat");
  ASSERT_EQ(info->branches_size(), 1);
  EXPECT_GT(info->branches(0).gflops(), 0);
  EXPECT_GT(info->num_parameters(), 1000u);
}

TEST_F(ServerTest, HealthIsServing) {
  client::ClassifierClient client(target_);
  absl::StatusOr<std::string> overall = client.CheckHealth("", absl::Seconds(10));
  ASSERT_TRUE(overall.ok()) << overall.status();
  EXPECT_EQ(*overall, "SERVING");
  absl::StatusOr<std::string> service =
      client.CheckHealth("mmfuse.v1.MultimodalClassifier", absl::Seconds(10));
  ASSERT_TRUE(service.ok()) << service.status();
  EXPECT_EQ(*service, "SERVING");
}

// Sends one ServerReflectionRequest{list_services: ""} as raw bytes and
// collects the raw response: the test needs no reflection stubs.
class ReflectionProbe : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `version`: "v1alpha" or "v1".
  ReflectionProbe(grpc::GenericStub* stub, const std::string& version) {
    const std::string request("\x3a\x00", 2);  // Field 7 (list_services), empty.
    grpc::Slice slice(request);
    request_ = grpc::ByteBuffer(&slice, 1);
    stub->PrepareBidiStreamingCall(
        &context_, absl::StrCat("/grpc.reflection.", version, ".ServerReflection/ServerReflectionInfo"),
        {}, this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool) override { StartWritesDone(); }
  void OnReadDone(bool ok) override {
    if (ok) {
      std::vector<grpc::Slice> slices;
      (void)response_.Dump(&slices);
      for (const auto& s : slices) text_.append(reinterpret_cast<const char*>(s.begin()), s.size());
      StartRead(&response_);
    }
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_.Notify();
  }
  std::string Await() {
    done_.WaitForNotification();
    return text_;
  }
  const grpc::Status& status() const { return status_; }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_, response_;
  std::string text_;
  grpc::Status status_;
  absl::Notification done_;
};

TEST_F(ServerTest, ReflectionListsTheServicesOnV1AndV1alpha) {
  for (const std::string version : {"v1alpha", "v1"}) {
    SCOPED_TRACE(version);
    grpc::GenericStub stub(channel_);
    ReflectionProbe probe(&stub, version);
    const std::string response = probe.Await();
    EXPECT_TRUE(probe.status().ok()) << probe.status().error_message();
    EXPECT_THAT(response, HasSubstr("mmfuse.v1.MultimodalClassifier"));
    EXPECT_THAT(response, HasSubstr("inference.GRPCInferenceService"));
    EXPECT_THAT(response, HasSubstr("grpc.health.v1.Health"));
  }
}

TEST(ReflectionV1Test, AnswersFilesSymbolsAndErrorsFromTheCompiledDescriptors) {
  using grpc::reflection::v1::ServerReflectionRequest;
  server::ReflectionV1Service service({"mmfuse.v1.MultimodalClassifier"});
  auto files_of = [](const grpc::reflection::v1::ServerReflectionResponse& response) {
    std::vector<std::string> names;
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      google::protobuf::FileDescriptorProto file;
      EXPECT_TRUE(file.ParseFromString(bytes));
      names.push_back(file.name());
    }
    return names;
  };

  ServerReflectionRequest request;
  request.set_host("h");
  request.set_file_containing_symbol("mmfuse.v1.MultimodalClassifier.Classify");
  auto response = service.Answer(request);
  EXPECT_EQ(response.valid_host(), "h");
  EXPECT_EQ(response.original_request().file_containing_symbol(), request.file_containing_symbol());
  // The file first, then what it imports: a client can build the service's
  // types from this response alone.
  const std::vector<std::string> files = files_of(response);
  ASSERT_FALSE(files.empty());
  EXPECT_EQ(files.front(), "mmfuse/v1/classifier.proto");
  EXPECT_THAT(files, ::testing::Contains("mmfuse/v1/features.proto"));

  request.set_file_containing_symbol("grpc.health.v1.Health");
  EXPECT_THAT(files_of(service.Answer(request)), ElementsAre("grpc/health/v1/health.proto"));

  request.set_file_by_filename("inference/grpc_predict_v2.proto");
  EXPECT_EQ(files_of(service.Answer(request)).front(), "inference/grpc_predict_v2.proto");

  request.set_file_containing_symbol("no.such.Service");
  response = service.Answer(request);
  EXPECT_EQ(response.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(response.error_response().error_message(), "symbol \"no.such.Service\" not found");

  request.set_all_extension_numbers_of_type("mmfuse.v1.ClassifyRequest");
  response = service.Answer(request);
  EXPECT_EQ(response.all_extension_numbers_response().base_type_name(), "mmfuse.v1.ClassifyRequest");
  EXPECT_EQ(response.all_extension_numbers_response().extension_number_size(), 0);

  request.set_list_services("");
  response = service.Answer(request);
  ASSERT_EQ(response.list_services_response().service_size(), 1);
  EXPECT_EQ(response.list_services_response().service(0).name(), "mmfuse.v1.MultimodalClassifier");

  response = service.Answer(ServerReflectionRequest());
  EXPECT_EQ(response.error_response().error_code(),
            static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
}

TEST_F(ServerTest, MetricsCountRequestsByCode) {
  v1::ClassifyResponse response;
  ASSERT_TRUE(Classify(Request(1), &response).ok());
  ASSERT_TRUE(Classify(Request(2), &response).ok());
  v1::ClassifyRequest bad = Request(3);
  bad.set_top_k(50);
  ASSERT_FALSE(Classify(bad, &response).ok());
  httplib::Client http("127.0.0.1", server_->metrics_port());
  auto result = http.Get("/metrics");
  ASSERT_TRUE(result) << "metrics endpoint unreachable";
  EXPECT_EQ(result->status, 200);
  EXPECT_THAT(result->body, HasSubstr("mmfuse_requests_total{code=\"OK\",model=\"small\","
                                      "protocol=\"mmfuse\"} 2"));
  EXPECT_THAT(result->body,
              HasSubstr("mmfuse_requests_total{code=\"INVALID_ARGUMENT\",model=\"small\","
                        "protocol=\"mmfuse\"} 1"));
  EXPECT_THAT(result->body, HasSubstr("mmfuse_rejected_total{model=\"small\",reason=\"invalid\"} 1"));
  EXPECT_THAT(result->body, HasSubstr("mmfuse_model_loaded{model=\"small\"} 1"));
  // Sequential requests each ran in a batch of one.
  EXPECT_THAT(result->body, HasSubstr("mmfuse_batch_size_count{model=\"small\"} 2"));
  EXPECT_THAT(result->body, HasSubstr("mmfuse_batch_size_bucket{model=\"small\",le=\"1\"} 2"));
}

TEST_F(ServerTest, ShutdownAnswersLaterRequestsUnavailable) {
  server_->Shutdown();
  v1::ClassifyResponse response;
  EXPECT_EQ(Classify(Request(9), &response).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST(ServerStartTest, MissingModelFailsAtStartNamingIt) {
  ServerOptions options;
  options.port = 0;
  options.metrics = false;
  options.model_dirs = {"/nonexistent/model"};
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("/nonexistent/model"));
}

TEST(ServerStartTest, PortInUseFailsAtStartNamingIt) {
  absl::StatusOr<std::unique_ptr<Server>> first = Server::Start(testing::LoopbackServerOptions());
  ASSERT_TRUE(first.ok()) << first.status();
  ServerOptions options = testing::LoopbackServerOptions();
  options.port = (*first)->port();
  absl::StatusOr<std::unique_ptr<Server>> second = Server::Start(options);
  ASSERT_FALSE(second.ok()) << "a second server started on port " << options.port;
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:", options.port, " (in use?)")));
}

TEST(ServerStartTest, CudaGraphsWhereTheyCannotRunFailAtStartSayingWhy) {
  ServerOptions options = testing::LoopbackServerOptions();  // A model on the CPU.
  options.serving.cuda_graphs = true;
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(server.status().message()), HasSubstr("CUDA graphs need"));
}

}  // namespace
}  // namespace mmfuse::server
