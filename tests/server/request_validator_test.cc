#include "server/request_validator.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/small_model.h"

namespace mmfuse::server {
namespace {

using ::testing::HasSubstr;

// A valid request for SmallModelConfig: audio 3x6, text 2x4.
v1::ClassifyRequest ValidRequest() {
  v1::ClassifyRequest request;
  request.set_request_id("r1");
  v1::FeatureSequence& audio = (*request.mutable_features())["audio"];
  audio.set_frames(3);
  audio.set_dim(6);
  for (int i = 0; i < 18; ++i) audio.add_data(0.1f * i);
  v1::FeatureSequence& text = (*request.mutable_features())["text"];
  text.set_frames(2);
  text.set_dim(4);
  for (int i = 0; i < 8; ++i) text.add_data(-0.2f * i);
  request.set_top_k(3);
  return request;
}

absl::Status Validate(const v1::ClassifyRequest& request) {
  return ValidateRequest(testing::SmallModelConfig(), /*priority_levels=*/2, request);
}

TEST(RequestValidatorTest, AcceptsAValidRequest) {
  absl::Status status = Validate(ValidRequest());
  EXPECT_TRUE(status.ok()) << status;
}

TEST(RequestValidatorTest, AcceptsHalfPrecisionData) {
  v1::ClassifyRequest request = ValidRequest();
  v1::FeatureSequence& text = (*request.mutable_features())["text"];
  text.clear_data();
  text.set_data_fp16(std::string(16, '\0'));  // Eight half zeros.
  absl::Status status = Validate(request);
  EXPECT_TRUE(status.ok()) << status;
}

struct BadRequestCase {
  const char* name;
  void (*mutate)(v1::ClassifyRequest*);
  const char* message;
};

class BadRequestTest : public ::testing::TestWithParam<BadRequestCase> {};

TEST_P(BadRequestTest, IsInvalidArgumentNamingFieldAndLimit) {
  v1::ClassifyRequest request = ValidRequest();
  GetParam().mutate(&request);
  absl::Status status = Validate(request);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(GetParam().message));
}

v1::FeatureSequence& Audio(v1::ClassifyRequest* r) { return (*r->mutable_features())["audio"]; }

INSTANTIATE_TEST_SUITE_P(
    Cases, BadRequestTest,
    ::testing::Values(
        BadRequestCase{"UnknownModality",
                       [](v1::ClassifyRequest* r) { (*r->mutable_features())["smell"] = Audio(r); },
                       "features[\"smell\"]: unknown modality; the model takes audio, video, text"},
        BadRequestCase{"DimMismatch", [](v1::ClassifyRequest* r) { Audio(r).set_dim(5); },
                       "features[\"audio\"].dim=5 does not match the model's feature_dim=6"},
        BadRequestCase{"ZeroFrames",
                       [](v1::ClassifyRequest* r) {
                         Audio(r).set_frames(0);
                         Audio(r).clear_data();
                       },
                       "features[\"audio\"].frames=0 is outside [1, max_frames=24]"},
        BadRequestCase{"TooManyFrames", [](v1::ClassifyRequest* r) { Audio(r).set_frames(25); },
                       "features[\"audio\"].frames=25 is outside [1, max_frames=24]"},
        BadRequestCase{"ShortData", [](v1::ClassifyRequest* r) { Audio(r).mutable_data()->RemoveLast(); },
                       "features[\"audio\"].data has 17 values; frames*dim = 3*6 = 18"},
        BadRequestCase{"LongData", [](v1::ClassifyRequest* r) { Audio(r).add_data(1); },
                       "features[\"audio\"].data has 19 values; frames*dim = 3*6 = 18"},
        BadRequestCase{"BothEncodings",
                       [](v1::ClassifyRequest* r) { Audio(r).set_data_fp16(std::string(36, '\0')); },
                       "sets both data and data_fp16"},
        BadRequestCase{"ShortFp16",
                       [](v1::ClassifyRequest* r) {
                         Audio(r).clear_data();
                         Audio(r).set_data_fp16(std::string(35, '\0'));
                       },
                       "features[\"audio\"].data_fp16 has 35 bytes; frames*dim*2 = 3*6*2 = 36"},
        BadRequestCase{"NaN",
                       [](v1::ClassifyRequest* r) {
                         Audio(r).set_data(13, std::numeric_limits<float>::quiet_NaN());
                       },
                       "features[\"audio\"].data[13] (frame 2) is not finite"},
        BadRequestCase{"Inf",
                       [](v1::ClassifyRequest* r) {
                         Audio(r).set_data(0, -std::numeric_limits<float>::infinity());
                       },
                       "features[\"audio\"].data[0] (frame 0) is not finite"},
        BadRequestCase{"Fp16Inf",
                       [](v1::ClassifyRequest* r) {
                         Audio(r).clear_data();
                         std::string bytes(36, '\0');
                         bytes[2 * 7 + 1] = '\x7c';  // 0x7c00 = +Inf.
                         Audio(r).set_data_fp16(bytes);
                       },
                       "features[\"audio\"].data_fp16[7] (frame 1) is not finite"},
        BadRequestCase{"NoModality", [](v1::ClassifyRequest* r) { r->clear_features(); },
                       "features is empty: send at least one modality"},
        BadRequestCase{"TopKTooLarge", [](v1::ClassifyRequest* r) { r->set_top_k(11); },
                       "top_k=11 exceeds the model's 10 classes"},
        BadRequestCase{"NegativeGflops",
                       [](v1::ClassifyRequest* r) { r->mutable_budget()->set_max_gflops(-1); },
                       "budget.max_gflops=-1 must be finite and >= 0"},
        BadRequestCase{"PriorityTooHigh", [](v1::ClassifyRequest* r) { r->set_priority(3); },
                       "priority=3 exceeds the model's priority levels (2)"},
        BadRequestCase{"LongRequestId",
                       [](v1::ClassifyRequest* r) { r->set_request_id(std::string(129, 'x')); },
                       "request_id has 129 bytes, more than the limit of 128"}),
    [](const ::testing::TestParamInfo<BadRequestCase>& info) { return info.param.name; });

}  // namespace
}  // namespace mmfuse::server
