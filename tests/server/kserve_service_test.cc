// The Open Inference Protocol (inference.GRPCInferenceService) end to end on
// a loopback port, in process, with a client built from our proto copy:
// every RPC, agreement with the native Classify, half precision, every bad
// input, the bidirectional stream, readiness during the drain and the
// metrics' protocol label.
#include "server/kserve_service.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/bench/kserve_codec.h"
#include "client/classifier_client.h"
#include "data/generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "inference/grpc_predict_v2.grpc.pb.h"
#include "mmfuse/v1/classifier.grpc.pb.h"
#include "prometheus/text_serializer.h"
#include "server/classifier_service.h"
#include "server/metrics.h"
#include "server/server.h"
#include "tests/server/loopback_server.h"
#include "tests/testing/test_package.h"

namespace mmfuse::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kModalities[] = {"audio", "video", "text"};

enum class Encoding { kRaw, kTyped };

std::string Fp32Bytes(const google::protobuf::RepeatedField<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  for (int i = 0; i < values.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &values[i], 4);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xFF);
  }
  return bytes;
}

// The v2 request carrying `native`'s sample, one input per modality.
inference::ModelInferRequest ToInfer(const v1::ClassifyRequest& native, Encoding encoding) {
  inference::ModelInferRequest request;
  request.set_model_name("small");
  request.set_id(native.request_id());
  for (const char* name : kModalities) {
    auto it = native.features().find(name);
    if (it == native.features().end()) continue;
    const v1::FeatureSequence& seq = it->second;
    auto* input = request.add_inputs();
    input->set_name(name);
    input->set_datatype("FP32");
    input->add_shape(seq.frames());
    input->add_shape(seq.dim());
    if (encoding == Encoding::kRaw) {
      request.add_raw_input_contents(Fp32Bytes(seq.data()));
    } else {
      *input->mutable_contents()->mutable_fp32_contents() = seq.data();
    }
  }
  return request;
}

const inference::ModelInferResponse::InferOutputTensor* FindOutput(
    const inference::ModelInferResponse& response, const std::string& name, int* index) {
  for (int i = 0; i < response.outputs_size(); ++i) {
    if (response.outputs(i).name() == name) {
      *index = i;
      return &response.outputs(i);
    }
  }
  return nullptr;
}

std::vector<float> Fp32Output(const inference::ModelInferResponse& response,
                              const std::string& name) {
  int index = -1;
  if (FindOutput(response, name, &index) == nullptr) return {};
  const std::string& raw = response.raw_output_contents(index);
  std::vector<float> values(raw.size() / 4);
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) {
      bits |= uint32_t{static_cast<unsigned char>(raw[4 * i + b])} << (8 * b);
    }
    std::memcpy(&values[i], &bits, 4);
  }
  return values;
}

std::vector<std::string> BytesOutput(const inference::ModelInferResponse& response,
                                     const std::string& name) {
  int index = -1;
  if (FindOutput(response, name, &index) == nullptr) return {};
  const std::string& raw = response.raw_output_contents(index);
  std::vector<std::string> values;
  size_t at = 0;
  while (at + 4 <= raw.size()) {
    uint32_t size = 0;
    for (int b = 0; b < 4; ++b) {
      size |= uint32_t{static_cast<unsigned char>(raw[at + b])} << (8 * b);
    }
    values.push_back(raw.substr(at + 4, size));
    at += 4 + size;
  }
  return values;
}

class KServeServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(testing::LoopbackServerOptions());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    channel_ = testing::InsecureLoopbackChannel(*server_);
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
    native_ = v1::MultimodalClassifier::NewStub(channel_);
  }

  v1::ClassifyRequest Sample(int i) {
    v1::ClassifyRequest request = client::RequestFromExample(generator_.Next());
    request.set_request_id(absl::StrCat("req-", i));
    return request;
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->ModelInfer(&context, request, response);
  }

  // Every class's probability from the native API, by index.
  std::vector<float> NativeProbabilities(v1::ClassifyRequest request) {
    request.set_top_k(10);
    v1::ClassifyResponse response;
    grpc::ClientContext context;
    grpc::Status status = native_->Classify(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<float> probabilities(10, -1.0f);
    for (const v1::ClassScore& score : response.top_k()) {
      probabilities[score.index()] = score.probability();
    }
    return probabilities;
  }

  std::string Scrape() {
    httplib::Client http("127.0.0.1", server_->metrics_port());
    auto result = http.Get("/metrics");
    return result ? result->body : "";
  }

  data::Generator generator_{testing::SmallGeneratorOptions(), 4};
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::unique_ptr<v1::MultimodalClassifier::Stub> native_;
};

TEST_F(KServeServiceTest, LivenessReadinessAndServerMetadata) {
  {
    grpc::ClientContext context;
    inference::ServerLiveResponse response;
    ASSERT_TRUE(stub_->ServerLive(&context, {}, &response).ok());
    EXPECT_TRUE(response.live());
  }
  {
    grpc::ClientContext context;
    inference::ServerReadyResponse response;
    ASSERT_TRUE(stub_->ServerReady(&context, {}, &response).ok());
    EXPECT_TRUE(response.ready());
  }
  {
    grpc::ClientContext context;
    inference::ServerMetadataResponse response;
    ASSERT_TRUE(stub_->ServerMetadata(&context, {}, &response).ok());
    EXPECT_EQ(response.name(), "mmfuse");
    EXPECT_THAT(response.extensions(), ElementsAre("parameters", "model_stream_infer"));
  }
  for (const char* version : {"", "test"}) {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("small");
    request.set_version(version);
    inference::ModelReadyResponse response;
    ASSERT_TRUE(stub_->ModelReady(&context, request, &response).ok()) << version;
    EXPECT_TRUE(response.ready());
  }
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("small");
    request.set_version("7");
    inference::ModelReadyResponse response;
    grpc::Status status = stub_->ModelReady(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(status.error_message(), HasSubstr("no version \"7\""));
  }
  {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("nope");
    inference::ModelReadyResponse response;
    EXPECT_EQ(stub_->ModelReady(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(KServeServiceTest, ModelMetadataListsInputsOutputsAndVersion) {
  grpc::ClientContext context;
  inference::ModelMetadataRequest request;
  request.set_name("small");
  inference::ModelMetadataResponse response;
  grpc::Status status = stub_->ModelMetadata(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.name(), "small");
  EXPECT_THAT(response.versions(), ElementsAre("test"));
  ASSERT_EQ(response.inputs_size(), 3);
  EXPECT_EQ(response.inputs(0).name(), "audio");
  EXPECT_EQ(response.inputs(0).datatype(), "FP32");
  EXPECT_THAT(response.inputs(0).shape(), ElementsAre(-1, 6));
  EXPECT_THAT(response.inputs(2).shape(), ElementsAre(-1, 4));
  std::map<std::string, std::string> outputs;
  for (const auto& output : response.outputs()) outputs[output.name()] = output.datatype();
  EXPECT_EQ(outputs, (std::map<std::string, std::string>{{"branch", "BYTES"},
                                                         {"gflops", "FP32"},
                                                         {"label", "BYTES"},
                                                         {"labels", "BYTES"},
                                                         {"probabilities", "FP32"}}));
  // The labels themselves: the `labels` output, asked for by name.
  inference::ModelInferRequest infer = ToInfer(Sample(1), Encoding::kRaw);
  infer.add_outputs()->set_name("labels");
  inference::ModelInferResponse labels;
  ASSERT_TRUE(Infer(infer, &labels).ok());
  std::vector<std::string> expected(data::GeneratedLabels().begin(), data::GeneratedLabels().end());
  EXPECT_EQ(BytesOutput(labels, "labels"), expected);
}

TEST_F(KServeServiceTest, RawAndTypedContentsGiveNativeClassifysProbabilities) {
  const v1::ClassifyRequest sample = Sample(2);
  const std::vector<float> native = NativeProbabilities(sample);
  for (Encoding encoding : {Encoding::kRaw, Encoding::kTyped}) {
    inference::ModelInferResponse response;
    grpc::Status status = Infer(ToInfer(sample, encoding), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model_name(), "small");
    EXPECT_EQ(response.model_version(), "test");
    EXPECT_EQ(response.id(), "req-2");
    ASSERT_EQ(response.outputs_size(), 4);
    EXPECT_THAT(response.outputs(0).shape(), ElementsAre(10));
    const std::vector<float> probabilities = Fp32Output(response, "probabilities");
    ASSERT_EQ(probabilities.size(), 10u);
    for (int c = 0; c < 10; ++c) EXPECT_NEAR(probabilities[c], native[c], 1e-6) << c;
    const int best =
        static_cast<int>(std::max_element(native.begin(), native.end()) - native.begin());
    EXPECT_THAT(BytesOutput(response, "label"), ElementsAre(data::GeneratedLabels()[best]));
    EXPECT_THAT(BytesOutput(response, "branch"), ElementsAre("full"));
    ASSERT_EQ(Fp32Output(response, "gflops").size(), 1u);
    EXPECT_GT(Fp32Output(response, "gflops")[0], 0);
    const auto& params = response.parameters();
    EXPECT_EQ(params.at("modalities").string_param(), "audio,video,text");
    EXPECT_EQ(params.at("batch_size").int64_param(), 1);
    EXPECT_GE(params.at("queue_us").int64_param(), 0);
    EXPECT_GE(params.at("compute_us").int64_param(), 0);
  }
}

TEST_F(KServeServiceTest, HalfPrecisionRawInputGivesTheFp32Answer) {
  // Values exactly representable in fp16 (multiples of 1/4, |q| < 2048).
  v1::ClassifyRequest sample = Sample(3);
  inference::ModelInferRequest fp16 = ToInfer(sample, Encoding::kRaw);
  fp16.clear_raw_input_contents();
  int input = 0;
  for (const char* name : kModalities) {
    auto it = sample.mutable_features()->find(name);
    if (it == sample.mutable_features()->end()) continue;
    std::string bytes;
    for (int i = 0; i < it->second.data_size(); ++i) {
      const int q = static_cast<int>(std::lround(it->second.data(i) * 4));
      it->second.set_data(i, q / 4.0f);
      uint16_t h = 0;
      if (q != 0) {
        const int a = std::abs(q);
        int exponent = 0;
        while ((a >> exponent) > 1) ++exponent;
        const int mantissa = ((a << 10) >> exponent) & 0x3FF;
        h = static_cast<uint16_t>((q < 0 ? 0x8000 : 0) | ((exponent - 2 + 15) << 10) | mantissa);
      }
      bytes.push_back(static_cast<char>(h & 0xFF));
      bytes.push_back(static_cast<char>(h >> 8));
    }
    fp16.mutable_inputs(input++)->set_datatype("FP16");
    fp16.add_raw_input_contents(bytes);
  }
  inference::ModelInferResponse a, b;
  ASSERT_TRUE(Infer(ToInfer(sample, Encoding::kRaw), &a).ok());
  grpc::Status status = Infer(fp16, &b);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const std::vector<float> pa = Fp32Output(a, "probabilities");
  const std::vector<float> pb = Fp32Output(b, "probabilities");
  ASSERT_EQ(pa.size(), 10u);
  ASSERT_EQ(pb.size(), 10u);
  for (int c = 0; c < 10; ++c) EXPECT_NEAR(pa[c], pb[c], 1e-5) << c;
}

TEST_F(KServeServiceTest, ShapeWithBatchDimensionAndOneModalityAreAccepted) {
  v1::ClassifyRequest sample = Sample(4);
  inference::ModelInferRequest request = ToInfer(sample, Encoding::kRaw);
  // Keep text only, shaped [1, frames, dim].
  inference::ModelInferRequest text;
  text.set_model_name("small");
  text.set_model_version("test");
  for (int i = 0; i < request.inputs_size(); ++i) {
    if (request.inputs(i).name() != "text") continue;
    auto* input = text.add_inputs();
    *input = request.inputs(i);
    input->clear_shape();
    input->add_shape(1);
    input->add_shape(request.inputs(i).shape(0));
    input->add_shape(request.inputs(i).shape(1));
    text.add_raw_input_contents(request.raw_input_contents(i));
  }
  ASSERT_EQ(text.inputs_size(), 1);
  inference::ModelInferResponse response;
  grpc::Status status = Infer(text, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.parameters().at("modalities").string_param(), "text");
}

TEST_F(KServeServiceTest, ParametersAndRequestedOutputsAreHonoured) {
  inference::ModelInferRequest request = ToInfer(Sample(5), Encoding::kTyped);
  (*request.mutable_parameters())["budget"].set_string_param("fast");
  (*request.mutable_parameters())["top_k"].set_int64_param(3);
  (*request.mutable_parameters())["priority"].set_uint64_param(0);
  (*request.mutable_parameters())["max_gflops"].set_double_param(100.0);
  (*request.mutable_parameters())["sequence_id"].set_int64_param(9);  // Not ours: ignored.
  request.add_outputs()->set_name("label");
  request.add_outputs()->set_name("gflops");
  inference::ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.outputs_size(), 2);
  EXPECT_EQ(response.outputs(0).name(), "label");
  EXPECT_EQ(response.outputs(1).name(), "gflops");
  EXPECT_EQ(response.raw_output_contents_size(), 2);
  EXPECT_THAT(response.outputs(0).shape(), ElementsAre(3));
  EXPECT_EQ(BytesOutput(response, "label").size(), 3u);
}

struct BadCase {
  std::string name;
  std::function<void(inference::ModelInferRequest*)> mutate;
  grpc::StatusCode code;
  std::string message;
};

TEST_F(KServeServiceTest, BadRequestsGetClearErrorsAndTheServerGoesOn) {
  const std::vector<BadCase> cases = {
      {"wrong datatype", [](auto* r) { r->mutable_inputs(0)->set_datatype("INT32"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "inputs[0] (\"audio\"): datatype \"INT32\" is not supported; use FP32 or FP16"},
      {"shape disagrees with bytes",
       [](auto* r) { r->mutable_inputs(1)->set_shape(0, r->inputs(1).shape(0) + 1); },
       grpc::StatusCode::INVALID_ARGUMENT, "inputs[1] (\"video\"): raw_input_contents[1] has"},
      {"rank 1 shape", [](auto* r) { r->mutable_inputs(0)->clear_shape(); },
       grpc::StatusCode::INVALID_ARGUMENT, "must be [frames, dim] or [1, frames, dim]"},
      {"negative dimension", [](auto* r) { r->mutable_inputs(0)->set_shape(1, -6); },
       grpc::StatusCode::INVALID_ARGUMENT, "has a dimension outside [0, 4294967295]"},
      {"raw and typed both",
       [](auto* r) { r->mutable_inputs(2)->mutable_contents()->add_fp32_contents(1.0f); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "inputs[2] (\"text\"): has contents while raw_input_contents is given"},
      {"unknown input", [](auto* r) { r->mutable_inputs(0)->set_name("depth"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "inputs[0] (\"depth\"): unknown input; the model takes audio, video, text"},
      {"duplicate input", [](auto* r) { r->mutable_inputs(1)->set_name("audio"); },
       grpc::StatusCode::INVALID_ARGUMENT, "inputs[1] (\"audio\"): input \"audio\" is given twice"},
      {"unknown output", [](auto* r) { r->add_outputs()->set_name("logits"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "outputs[0]: \"logits\" is not an output of the model; it has probabilities, label"},
      {"version not loaded", [](auto* r) { r->set_model_version("2"); },
       grpc::StatusCode::NOT_FOUND, "model \"small\" has no version \"2\" loaded"},
      {"unknown model", [](auto* r) { r->set_model_name("large"); }, grpc::StatusCode::NOT_FOUND,
       "model \"large\" is not loaded"},
      {"raw count disagrees with inputs",
       [](auto* r) { r->mutable_raw_input_contents()->RemoveLast(); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "raw_input_contents has 2 entries for 3 inputs; give one per input"},
      {"dim differs from the model's",
       [](auto* r) {
         // Same bytes, reshaped: the shared validator's feature_dim check.
         auto* input = r->mutable_inputs(0);
         const int64_t values = input->shape(0) * input->shape(1);
         input->set_shape(0, values / 3);
         input->set_shape(1, 3);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "features[\"audio\"]"},
      {"bad budget",
       [](auto* r) { (*r->mutable_parameters())["budget"].set_string_param("cheap"); },
       grpc::StatusCode::INVALID_ARGUMENT,
       "parameters[\"budget\"]=\"cheap\" is not a budget; use accurate, balanced or fast"},
      {"top_k above the classes",
       [](auto* r) { (*r->mutable_parameters())["top_k"].set_int64_param(11); },
       grpc::StatusCode::INVALID_ARGUMENT, "parameters[\"top_k\"]=11 must be in [1, 10]"},
      {"priority above the levels",
       [](auto* r) { (*r->mutable_parameters())["priority"].set_int64_param(5); },
       grpc::StatusCode::INVALID_ARGUMENT, "priority=5 exceeds the model's priority levels"},
      {"negative max_gflops",
       [](auto* r) { (*r->mutable_parameters())["max_gflops"].set_double_param(-1); },
       grpc::StatusCode::INVALID_ARGUMENT, "budget.max_gflops=-1 must be finite and >= 0"},
      {"no inputs",
       [](auto* r) {
         r->clear_inputs();
         r->clear_raw_input_contents();
       },
       grpc::StatusCode::INVALID_ARGUMENT,
       "inputs is empty: send at least one input (the model takes audio, video, text)"},
  };
  const v1::ClassifyRequest sample = Sample(6);
  for (const BadCase& bad : cases) {
    inference::ModelInferRequest request = ToInfer(sample, Encoding::kRaw);
    bad.mutate(&request);
    inference::ModelInferResponse response;
    grpc::Status status = Infer(request, &response);
    EXPECT_EQ(status.error_code(), bad.code) << bad.name << ": " << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr(bad.message)) << bad.name;
  }
  // Typed-only errors.
  {
    inference::ModelInferRequest request = ToInfer(sample, Encoding::kTyped);
    request.mutable_inputs(0)->set_datatype("FP16");
    inference::ModelInferResponse response;
    grpc::Status status = Infer(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("inputs[0] (\"audio\"): FP16 data must come in raw_input_contents"));
  }
  {
    inference::ModelInferRequest request = ToInfer(sample, Encoding::kTyped);
    request.mutable_inputs(1)->mutable_contents()->add_fp32_contents(0.5f);
    inference::ModelInferResponse response;
    grpc::Status status = Infer(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("inputs[1] (\"video\"): contents.fp32_contents has"));
  }
  // Nothing above disturbed the server.
  inference::ModelInferResponse response;
  grpc::Status status = Infer(ToInfer(sample, Encoding::kRaw), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(KServeServiceTest, StreamInferAnswersEveryIdExactlyOnce) {
  constexpr int kRequests = 100;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->ModelStreamInfer(&context);
  std::vector<v1::ClassifyRequest> samples;
  for (int i = 0; i < 8; ++i) samples.push_back(Sample(100 + i));
  std::thread writer([&] {
    for (int i = 0; i < kRequests; ++i) {
      inference::ModelInferRequest request =
          ToInfer(samples[i % samples.size()], i % 2 == 0 ? Encoding::kRaw : Encoding::kTyped);
      request.set_id(absl::StrCat("s-", i));
      if (i % 10 == 7) request.mutable_inputs(0)->set_datatype("INT8");  // Fails alone.
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
  });
  std::map<std::string, int> answers;
  int errors = 0;
  inference::ModelStreamInferResponse response;
  while (stream->Read(&response)) {
    ++answers[response.infer_response().id()];
    if (!response.error_message().empty()) {
      ++errors;
      EXPECT_THAT(response.error_message(), HasSubstr("INVALID_ARGUMENT: inputs[0]"));
    } else {
      EXPECT_EQ(Fp32Output(response.infer_response(), "probabilities").size(), 10u);
    }
  }
  writer.join();
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(answers.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(answers[absl::StrCat("s-", i)], 1) << i;
  EXPECT_EQ(errors, kRequests / 10);
}

TEST_F(KServeServiceTest, RequestMetricsCarryTheProtocol) {
  const v1::ClassifyRequest sample = Sample(7);
  NativeProbabilities(sample);
  inference::ModelInferResponse response;
  ASSERT_TRUE(Infer(ToInfer(sample, Encoding::kRaw), &response).ok());
  ASSERT_TRUE(Infer(ToInfer(sample, Encoding::kTyped), &response).ok());
  inference::ModelInferRequest bad = ToInfer(sample, Encoding::kRaw);
  bad.mutable_inputs(0)->set_datatype("BOOL");
  EXPECT_FALSE(Infer(bad, &response).ok());
  const std::string metrics = Scrape();
  EXPECT_THAT(
      metrics,
      HasSubstr("mmfuse_requests_total{code=\"OK\",model=\"small\",protocol=\"mmfuse\"} 1"));
  EXPECT_THAT(
      metrics,
      HasSubstr("mmfuse_requests_total{code=\"OK\",model=\"small\",protocol=\"kserve\"} 2"));
  EXPECT_THAT(metrics, HasSubstr("mmfuse_requests_total{code=\"INVALID_ARGUMENT\",model=\"small\","
                                 "protocol=\"kserve\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("mmfuse_request_duration_seconds_count{model=\"small\","
                                 "protocol=\"kserve\"} 3"));
  EXPECT_THAT(metrics, HasSubstr("mmfuse_rejected_total{model=\"small\",reason=\"invalid\"} 1"));
}

// mmfuse-bench's --protocol kserve: its conversion of a native request is
// answered like the native request, and its reading of the answer matches.
TEST_F(KServeServiceTest, BenchCodecRoundTripsThroughModelInfer) {
  v1::ClassifyRequest sample = Sample(8);
  sample.set_top_k(2);
  sample.mutable_budget()->set_level(v1::BUDGET_LEVEL_FAST);
  inference::ModelInferRequest request;
  ASSERT_TRUE(request.ParseFromString(bench::SerializeAsModelInfer(sample)));
  EXPECT_EQ(request.id(), "req-8");
  EXPECT_EQ(request.parameters().at("budget").string_param(), "fast");
  EXPECT_EQ(request.parameters().at("top_k").int64_param(), 2);
  // The runner appends the id this way (last field wins).
  ASSERT_TRUE(request.MergeFromString(bench::SerializeModelInferId("bench-1-7")));
  EXPECT_EQ(request.id(), "bench-1-7");
  inference::ModelInferResponse response;
  grpc::Status status = Infer(request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  const v1::ClassifyResponse read = bench::FromModelInfer(response);

  v1::ClassifyResponse native;
  grpc::ClientContext context;
  ASSERT_TRUE(native_->Classify(&context, sample, &native).ok());
  EXPECT_EQ(read.request_id(), "bench-1-7");
  ASSERT_EQ(read.top_k_size(), 1);
  EXPECT_EQ(read.top_k(0).label(), native.top_k(0).label());
  EXPECT_EQ(read.branch(), native.branch());
  EXPECT_EQ(read.batch_size(), 1u);

  inference::ModelStreamInferResponse failed;
  failed.set_error_message("RESOURCE_EXHAUSTED: queue full");
  failed.mutable_infer_response()->set_id("x");
  const v1::ClassifyResponse error = bench::FromModelStreamInfer(failed);
  EXPECT_EQ(error.request_id(), "x");
  EXPECT_EQ(error.error().code(), static_cast<int>(absl::StatusCode::kResourceExhausted));
}

TEST(KServeMetricsTest, ProtocolLabelDefaultsToMmfuse) {
  CollectingRegistry registry;
  ServerMetrics metrics(&registry, "test");
  metrics.RecordRequest("m", absl::StatusCode::kOk, absl::Milliseconds(1));
  metrics.RecordRequest("m", absl::StatusCode::kNotFound, absl::Milliseconds(1), kProtocolKserve);
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, registry.Collect());
  EXPECT_THAT(text.str(),
              HasSubstr("mmfuse_requests_total{code=\"OK\",model=\"m\",protocol=\"mmfuse\"} 1"));
  EXPECT_THAT(text.str(), HasSubstr("mmfuse_requests_total{code=\"NOT_FOUND\",model=\"m\","
                                    "protocol=\"kserve\"} 1"));
}

// The drain step of Server::Shutdown (ClassifierService::StartDraining, right
// after grpc.health.v1 turns NOT_SERVING), taken alone so the test can look
// while the server still answers.
TEST(KServeDrainTest, ReadinessTurnsFalseAndInferenceUnavailableWhileDraining) {
  ClassifierService classifier(/*metrics=*/nullptr);
  ServingOptions serving;
  serving.workers = 1;
  absl::StatusOr<std::unique_ptr<ServedModel>> model =
      ServedModel::Create(testing::SmallPackage(), serving);
  ASSERT_TRUE(model.ok()) << model.status();
  classifier.AddModel(*std::move(model));
  KServeService kserve(&classifier, "test");
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&kserve);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  auto model_ready = [&] {
    grpc::ClientContext context;
    inference::ModelReadyRequest request;
    request.set_name("small");
    inference::ModelReadyResponse response;
    EXPECT_TRUE(stub->ModelReady(&context, request, &response).ok());
    return response.ready();
  };
  auto server_ready = [&] {
    grpc::ClientContext context;
    inference::ServerReadyResponse response;
    EXPECT_TRUE(stub->ServerReady(&context, {}, &response).ok());
    return response.ready();
  };
  data::Generator generator(testing::SmallGeneratorOptions(), 4);
  const inference::ModelInferRequest request =
      ToInfer(client::RequestFromExample(generator.Next()), Encoding::kRaw);
  auto infer = [&] {
    grpc::ClientContext context;
    inference::ModelInferResponse response;
    return stub->ModelInfer(&context, request, &response);
  };

  EXPECT_TRUE(model_ready());
  EXPECT_TRUE(server_ready());
  EXPECT_TRUE(infer().ok());
  classifier.StartDraining();
  EXPECT_FALSE(model_ready());
  EXPECT_FALSE(server_ready());
  grpc::Status status = infer();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
  classifier.ShutdownModels();
  EXPECT_FALSE(model_ready());
  server->Shutdown();
}

}  // namespace
}  // namespace mmfuse::server
