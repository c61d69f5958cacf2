#include "server/feature_assembler.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/small_model.h"

namespace mmfuse::server {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A whole sample for SmallModelConfig (audio dim 6 max 24, video 5/16,
// text 4/12) with seeded values; `fp16` carries them as halves.
v1::ClassifyRequest Sample(uint32_t seed, bool fp16 = false) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(-64, 64);
  v1::ClassifyRequest request;
  request.set_request_id(absl::StrCat("sample-", seed));
  request.set_top_k(3);
  request.mutable_budget()->set_level(v1::BUDGET_LEVEL_FAST);
  request.set_priority(1);
  struct Spec {
    const char* name;
    int dim;
    int frames;
  };
  for (const Spec& s : {Spec{"audio", 6, 20}, Spec{"video", 5, 11}, Spec{"text", 4, 7}}) {
    v1::FeatureSequence& seq = (*request.mutable_features())[s.name];
    seq.set_frames(s.frames);
    seq.set_dim(s.dim);
    for (int i = 0; i < s.frames * s.dim; ++i) {
      const int q = value(rng);  // q/8 is exact in float and half.
      if (fp16) {
        // Half of q/8: exponent/mantissa of |q| scaled by 2^-3.
        uint16_t h = 0;
        if (q != 0) {
          const int a = q < 0 ? -q : q;
          int e = 0;
          while ((a >> e) > 1) ++e;
          const int mantissa = ((a << 10) >> e) & 0x3FF;
          h = static_cast<uint16_t>((q < 0 ? 0x8000 : 0) | ((e - 3 + 15) << 10) | mantissa);
        }
        seq.mutable_data_fp16()->push_back(static_cast<char>(h & 0xFF));
        seq.mutable_data_fp16()->push_back(static_cast<char>(h >> 8));
      } else {
        seq.add_data(q / 8.0f);
      }
    }
  }
  return request;
}

v1::StreamHeader HeaderOf(const v1::ClassifyRequest& request) {
  v1::StreamHeader header;
  header.set_request_id(request.request_id());
  header.set_model(request.model());
  header.set_top_k(request.top_k());
  *header.mutable_budget() = request.budget();
  header.set_priority(request.priority());
  return header;
}

// Frames [first, first + n) of `seq` as a chunk of `modality`.
v1::FeatureChunk Slice(const std::string& modality, const v1::FeatureSequence& seq, int first,
                       int n) {
  v1::FeatureChunk chunk;
  chunk.set_modality(modality);
  chunk.set_offset(first);
  chunk.set_frames(n);
  chunk.set_dim(seq.dim());
  const int dim = static_cast<int>(seq.dim());
  if (!seq.data_fp16().empty()) {
    chunk.set_data_fp16(seq.data_fp16().substr(2 * first * dim, 2 * n * dim));
  } else {
    for (int i = first * dim; i < (first + n) * dim; ++i) chunk.add_data(seq.data(i));
  }
  return chunk;
}

// `request` cut into chunks of random sizes, modalities interleaved at
// random (each modality's frames in order), the header on the first chunk.
std::vector<v1::FeatureChunk> RandomChunks(const v1::ClassifyRequest& request, uint32_t seed,
                                           bool append) {
  std::mt19937 rng(seed);
  std::map<std::string, int> sent;
  std::vector<v1::FeatureChunk> chunks;
  while (true) {
    std::vector<std::string> open;
    for (const auto& [name, seq] : request.features()) {
      if (sent[name] < static_cast<int>(seq.frames())) open.push_back(name);
    }
    if (open.empty()) break;
    const std::string name = open[rng() % open.size()];
    const v1::FeatureSequence& seq = request.features().at(name);
    const int left = static_cast<int>(seq.frames()) - sent[name];
    const int n = 1 + static_cast<int>(rng() % std::min(left, 6));
    v1::FeatureChunk chunk = Slice(name, seq, sent[name], n);
    if (append) {
      chunk.clear_offset();
      chunk.set_append(true);
    }
    chunks.push_back(chunk);
    sent[name] += n;
  }
  *chunks.front().mutable_header() = HeaderOf(request);
  return chunks;
}

class FeatureAssemblerTest : public ::testing::Test {
 protected:
  std::unique_ptr<FeatureAssembler> Make(FeatureAssembler::Options options = {}) {
    absl::StatusOr<std::unique_ptr<FeatureAssembler>> assembler =
        FeatureAssembler::Create(&config_, options);
    EXPECT_TRUE(assembler.ok()) << assembler.status();
    return assembler.ok() ? *std::move(assembler) : nullptr;
  }

  // Adds `chunks` in order; returns the first error (or OK).
  static absl::Status AddAll(FeatureAssembler& assembler,
                             const std::vector<v1::FeatureChunk>& chunks) {
    for (const v1::FeatureChunk& chunk : chunks) {
      absl::Status status = assembler.Add(chunk);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  v1::ModelConfig config_ = testing::SmallModelConfig();
};

TEST_F(FeatureAssemblerTest, ChunksInAnyOrderAssembleTheWholeSample) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const v1::ClassifyRequest whole = Sample(seed);
    for (bool append : {false, true}) {
      std::unique_ptr<FeatureAssembler> assembler = Make();
      const std::vector<v1::FeatureChunk> chunks = RandomChunks(whole, seed * 7 + append, append);
      ASSERT_TRUE(AddAll(*assembler, chunks).ok());
      EXPECT_EQ(assembler->chunks(), static_cast<int64_t>(chunks.size()));
      EXPECT_EQ(assembler->frames(), 20 + 11 + 7);
      EXPECT_EQ(assembler->bytes(), 4 * (20 * 6 + 11 * 5 + 7 * 4));
      absl::StatusOr<v1::ClassifyRequest> assembled = assembler->Finish();
      ASSERT_TRUE(assembled.ok()) << assembled.status();
      EXPECT_TRUE(MessageDifferencer::Equals(*assembled, whole))
          << assembled->ShortDebugString().substr(0, 300);
    }
  }
}

TEST_F(FeatureAssemblerTest, HalfPrecisionChunksAssembleTheWholeSample) {
  const v1::ClassifyRequest whole = Sample(5, /*fp16=*/true);
  std::unique_ptr<FeatureAssembler> assembler = Make();
  ASSERT_TRUE(AddAll(*assembler, RandomChunks(whole, 3, false)).ok());
  EXPECT_EQ(assembler->bytes(), 2 * (20 * 6 + 11 * 5 + 7 * 4));
  absl::StatusOr<v1::ClassifyRequest> assembled = assembler->Finish();
  ASSERT_TRUE(assembled.ok()) << assembled.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*assembled, whole));
}

TEST_F(FeatureAssemblerTest, HeaderOnlyFirstChunkAndNoHeaderAreAccepted) {
  const v1::ClassifyRequest whole = Sample(2);
  std::vector<v1::FeatureChunk> chunks = RandomChunks(whole, 9, false);
  v1::FeatureChunk header_only;
  *header_only.mutable_header() = chunks.front().header();
  chunks.front().clear_header();
  chunks.insert(chunks.begin(), header_only);
  std::unique_ptr<FeatureAssembler> assembler = Make();
  ASSERT_TRUE(AddAll(*assembler, chunks).ok());
  absl::StatusOr<v1::ClassifyRequest> assembled = assembler->Finish();
  ASSERT_TRUE(assembled.ok());
  EXPECT_TRUE(MessageDifferencer::Equals(*assembled, whole));

  // No header at all: the defaults.
  chunks.erase(chunks.begin());
  assembler = Make();
  ASSERT_TRUE(AddAll(*assembler, chunks).ok());
  assembled = assembler->Finish();
  ASSERT_TRUE(assembled.ok());
  EXPECT_EQ(assembled->request_id(), "");
  EXPECT_EQ(assembled->top_k(), 0u);
  EXPECT_FALSE(assembled->has_budget());
  EXPECT_EQ(assembled->features_size(), 3);
}

TEST_F(FeatureAssemblerTest, RequestSoFarGrowsWithEachChunk) {
  const v1::ClassifyRequest whole = Sample(4);
  const v1::FeatureSequence& audio = whole.features().at("audio");
  std::unique_ptr<FeatureAssembler> assembler = Make();
  ASSERT_TRUE(assembler->Add(Slice("audio", audio, 0, 5)).ok());
  EXPECT_EQ(assembler->request().features().at("audio").frames(), 5u);
  EXPECT_EQ(assembler->request().features().at("audio").data_size(), 30);
  ASSERT_TRUE(assembler->Add(Slice("audio", audio, 5, 3)).ok());
  EXPECT_EQ(assembler->request().features().at("audio").frames(), 8u);
  EXPECT_EQ(assembler->frames(), 8);
}

// One malformed chunk after a good one: the error names chunk 1.
struct BadChunkCase {
  const char* name;
  std::function<void(v1::FeatureChunk&)> mutate;
  absl::StatusCode code;
  std::vector<std::string> message;
};

TEST_F(FeatureAssemblerTest, MalformedChunksAreRefusedNamingTheChunkAndField) {
  const v1::ClassifyRequest whole = Sample(3);
  const v1::FeatureSequence& audio = whole.features().at("audio");
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  const std::vector<BadChunkCase> cases = {
      {"gap", [](v1::FeatureChunk& c) { c.set_offset(8); }, kInvalid,
       {"chunk 1: features[\"audio\"] offset=8 leaves a gap after frame 4",
        "next offset must be 4"}},
      {"overlap", [](v1::FeatureChunk& c) { c.set_offset(2); }, kInvalid,
       {"chunk 1: features[\"audio\"] offset=2 overlaps frames [2, 4)"}},
      {"dim", [](v1::FeatureChunk& c) { c.set_dim(7); }, kInvalid,
       {"chunk 1: features[\"audio\"].dim=7", "feature_dim=6"}},
      {"unknown modality", [](v1::FeatureChunk& c) { c.set_modality("smell"); }, kInvalid,
       {"chunk 1: features[\"smell\"]: unknown modality", "audio, video, text"}},
      {"no modality", [](v1::FeatureChunk& c) { c.clear_modality(); }, kInvalid,
       {"chunk 1: modality is empty"}},
      {"no frames", [](v1::FeatureChunk& c) { c.set_frames(0); }, kInvalid,
       {"chunk 1: frames=0"}},
      {"later header", [](v1::FeatureChunk& c) { c.mutable_header()->set_top_k(2); }, kInvalid,
       {"chunk 1: header is set; only the stream's first chunk"}},
      {"short data", [](v1::FeatureChunk& c) { c.mutable_data()->RemoveLast(); }, kInvalid,
       {"chunk 1: features[\"audio\"].data has 23 values; frames*dim = 4*6 = 24"}},
      {"both encodings", [](v1::FeatureChunk& c) { c.set_data_fp16(std::string(48, '\0')); },
       kInvalid, {"chunk 1: features[\"audio\"] sets both data and data_fp16"}},
      {"encoding change",
       [](v1::FeatureChunk& c) {
         c.clear_data();
         c.set_data_fp16(std::string(48, '\0'));
       },
       kInvalid, {"chunk 1: features[\"audio\"] sends data_fp16 but its earlier chunks sent data"}},
      {"not finite",
       [](v1::FeatureChunk& c) { c.set_data(13, std::numeric_limits<float>::quiet_NaN()); },
       kInvalid, {"chunk 1: features[\"audio\"].data[13] (frame 6 of the modality) is not finite"}},
      {"too many frames", [&](v1::FeatureChunk& c) { c = Slice("audio", audio, 4, 16);
                                                      c.set_frames(21);
                                                      for (int i = 0; i < 30; ++i) c.add_data(0); },
       kInvalid, {"chunk 1: features[\"audio\"] frames=21 brings the modality to 25 frames",
                  "max_frames=24"}},
  };
  for (const BadChunkCase& bad : cases) {
    SCOPED_TRACE(bad.name);
    std::unique_ptr<FeatureAssembler> assembler = Make();
    ASSERT_TRUE(assembler->Add(Slice("audio", audio, 0, 4)).ok());
    v1::FeatureChunk chunk = Slice("audio", audio, 4, 4);
    bad.mutate(chunk);
    absl::Status status = assembler->Add(chunk);
    EXPECT_EQ(status.code(), bad.code) << status;
    for (const std::string& part : bad.message) EXPECT_THAT(status.message(), HasSubstr(part));
    // Spent: nothing more is taken.
    EXPECT_EQ(assembler->Add(Slice("audio", audio, 4, 4)).code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(assembler->Finish().status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

TEST_F(FeatureAssemblerTest, MaxFramesIsCheckedAsChunksArrive) {
  const v1::ClassifyRequest whole = Sample(6);
  const v1::FeatureSequence& video = whole.features().at("video");  // 11 frames, max 16
  std::unique_ptr<FeatureAssembler> assembler = Make();
  ASSERT_TRUE(assembler->Add(Slice("video", video, 0, 11)).ok());
  v1::FeatureChunk more = Slice("video", video, 0, 6);
  more.set_offset(11);
  absl::Status status = assembler->Add(more);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("chunk 1: features[\"video\"] frames=6 brings the modality to 17"),
                    HasSubstr("max_frames=16")));
}

TEST_F(FeatureAssemblerTest, StreamBytesLimitIsResourceExhaustedAtTheCrossingChunk) {
  const v1::ClassifyRequest whole = Sample(7);
  const v1::FeatureSequence& audio = whole.features().at("audio");
  FeatureAssembler::Options options;
  options.max_stream_bytes = 4 * 6 * 10;  // ten audio frames
  std::unique_ptr<FeatureAssembler> assembler = Make(options);
  ASSERT_TRUE(assembler->Add(Slice("audio", audio, 0, 6)).ok());
  ASSERT_TRUE(assembler->Add(Slice("audio", audio, 6, 4)).ok());
  absl::Status status = assembler->Add(Slice("audio", audio, 10, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("chunk 2: the stream's data would reach 264 bytes"),
                    HasSubstr("max_stream_bytes=240")));
}

TEST_F(FeatureAssemblerTest, ChunkCountLimitIsResourceExhausted) {
  const v1::ClassifyRequest whole = Sample(8);
  const v1::FeatureSequence& text = whole.features().at("text");
  FeatureAssembler::Options options;
  options.max_chunks = 3;
  std::unique_ptr<FeatureAssembler> assembler = Make(options);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(assembler->Add(Slice("text", text, i, 1)).ok());
  absl::Status status = assembler->Add(Slice("text", text, 3, 1));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("chunk 3: the stream exceeds max_stream_chunks=3"));
}

TEST_F(FeatureAssemblerTest, BadHeaderFieldsAreRefusedAtChunkZero) {
  v1::FeatureChunk chunk;
  chunk.mutable_header()->set_top_k(11);
  std::unique_ptr<FeatureAssembler> assembler = Make();
  absl::Status status = assembler->Add(chunk);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("chunk 0: header.top_k=11 exceeds the model's 10"));

  chunk.mutable_header()->set_top_k(1);
  chunk.mutable_header()->set_request_id(std::string(129, 'x'));
  assembler = Make();
  EXPECT_THAT(assembler->Add(chunk).message(), HasSubstr("chunk 0: header.request_id has 129"));
}

TEST_F(FeatureAssemblerTest, StreamWithoutFramesFailsAtFinish) {
  v1::FeatureChunk header_only;
  header_only.mutable_header()->set_request_id("empty");
  std::unique_ptr<FeatureAssembler> assembler = Make();
  ASSERT_TRUE(assembler->Add(header_only).ok());
  absl::StatusOr<v1::ClassifyRequest> request = assembler->Finish();
  EXPECT_EQ(request.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(request.status().message(), HasSubstr("without frames"));
}

TEST(FeatureAssemblerOptionsTest, RejectsBadLimitsNamingTheField) {
  FeatureAssembler::Options options;
  options.max_stream_bytes = 0;
  EXPECT_THAT(FeatureAssembler::ValidateOptions(options).message(),
              HasSubstr("max_stream_bytes=0 must be >= 1"));
  options = {};
  options.max_chunks = -1;
  EXPECT_THAT(FeatureAssembler::ValidateOptions(options).message(),
              HasSubstr("max_chunks=-1 must be >= 1"));
  const v1::ModelConfig config = testing::SmallModelConfig();
  EXPECT_FALSE(FeatureAssembler::Create(&config, options).ok());
}

}  // namespace
}  // namespace mmfuse::server
