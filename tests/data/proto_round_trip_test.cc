// The public API's messages survive the wire and the text format unchanged.
#include <string>

#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::v1 {
namespace {

using google::protobuf::util::MessageDifferencer;

ClassifyRequest FullRequest() {
  ClassifyRequest request;
  request.set_request_id("req-42");
  request.set_model("default");
  FeatureSequence& audio = (*request.mutable_features())["audio"];
  audio.set_frames(2);
  audio.set_dim(3);
  for (float v : {0.5f, -1.25f, 3.0f, 1e-7f, -0.0f, 42.0f}) audio.add_data(v);
  FeatureSequence& text = (*request.mutable_features())["text"];
  text.set_frames(1);
  text.set_dim(2);
  text.set_data_fp16(std::string("\x00\x3c\x00\xc0", 4));  // 1.0, -2.0
  request.set_top_k(5);
  request.mutable_budget()->set_level(BUDGET_LEVEL_FAST);
  request.mutable_budget()->set_max_gflops(0.25);
  request.set_priority(2);
  return request;
}

TEST(ProtoRoundTripTest, ClassifyRequestSurvivesTheWire) {
  const ClassifyRequest request = FullRequest();
  std::string bytes;
  ASSERT_TRUE(request.SerializeToString(&bytes));
  ClassifyRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, request));
  EXPECT_EQ(parsed.features().at("audio").data(1), -1.25f);
}

TEST(ProtoRoundTripTest, ClassifyResponseSurvivesTheWire) {
  ClassifyResponse response;
  response.set_request_id("r");
  response.set_model("default");
  ClassScore* score = response.add_top_k();
  score->set_label("seven");
  score->set_index(7);
  score->set_probability(0.875f);
  response.set_branch("full");
  response.add_modalities_used("audio");
  response.set_gflops(0.0125);
  response.mutable_timings()->set_queue_us(10);
  response.mutable_timings()->set_compute_us(20);
  response.mutable_timings()->set_total_us(35);
  response.set_batch_size(4);
  response.mutable_error()->set_code(3);
  std::string bytes;
  ASSERT_TRUE(response.SerializeToString(&bytes));
  ClassifyResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, response));
}

TEST(ProtoRoundTripTest, ModelConfigSurvivesTextFormat) {
  ModelConfig config;
  config.set_name("m");
  ModalityConfig* m = config.add_modalities();
  m->set_name("audio");
  m->set_feature_dim(40);
  m->set_max_frames(512);
  config.set_num_classes(10);
  config.set_fusion_mode(FUSION_MODE_CONCAT);
  config.mutable_transformer()->set_d_model(64);
  config.mutable_batching()->add_preferred_batch_sizes(8);
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(config, &text));
  ModelConfig parsed;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &parsed));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, config));
}

}  // namespace
}  // namespace mmfuse::v1
