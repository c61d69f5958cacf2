// Replays every checked-in fuzz input through its target: the crashes the
// fuzzers found (tests/fuzz/regressions/<target>/, one file per finding,
// named after it) and the hand-written config seeds (tests/fuzz/seeds/).
// A target aborts on a broken invariant, so a regression fails the test
// binary; in the ASan build it is also checked for memory errors.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "data/dataset_io.h"
#include "google/protobuf/io/coded_stream.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/model_config.h"
#include "server/feature_assembler.h"
#include "server/request_validator.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/fuzz/seeds.h"

namespace mmfuse::fuzz {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> InputsIn(const fs::path& dir) {
  std::vector<fs::path> inputs;
  if (!fs::is_directory(dir)) return inputs;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().filename() != "README.md") {
      inputs.push_back(entry.path());
    }
  }
  return inputs;
}

std::string ReadAll(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

// Runs every input of `dirs` and every one of `generated` through
// `target`; returns how many ran.
int Replay(void (*target)(const uint8_t*, size_t), const std::vector<std::string>& dirs,
           const std::vector<std::string>& generated = {}) {
  int replayed = 0;
  for (const std::string& dir : dirs) {
    for (const fs::path& input : InputsIn(fs::path(MMFUSE_FUZZ_DIR) / dir)) {
      SCOPED_TRACE(input.string());
      const std::string bytes = ReadAll(input);
      target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
      ++replayed;
    }
  }
  for (const std::string& bytes : generated) {
    target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++replayed;
  }
  return replayed;
}

// Findings and seeds alike go through the targets with their invariant
// checks (a broken one aborts the binary).
TEST(FuzzRegressionTest, RequestInputs) {
  EXPECT_GE(Replay(RunRequestTarget, {"regressions/request"}, RequestSeeds(24)), 24);
}

TEST(FuzzRegressionTest, StreamInputs) {
  EXPECT_GE(Replay(RunStreamTarget, {"regressions/stream"}, StreamSeeds(24)), 25);
}

TEST(FuzzRegressionTest, ConfigInputsAndSeeds) {
  EXPECT_GE(Replay(RunConfigTarget, {"regressions/config", "seeds/config"}, ConfigSeeds()), 5)
      << "the config seeds in " << MMFUSE_FUZZ_DIR << "/seeds/config are missing";
}

TEST(FuzzRegressionTest, DatasetInputs) {
  EXPECT_GE(Replay(RunDatasetTarget, {"regressions/dataset"}, DatasetSeeds(8)), 8);
}

// The config findings are not only survived but refused, naming the limit.
TEST(FuzzRegressionTest, OversizedArchitecturesAreRejected) {
  for (const char* name :
       {"flops-overflow-huge-dims.pbtxt", "locomt-views-huge-layer-count.pbtxt"}) {
    SCOPED_TRACE(name);
    absl::StatusOr<v1::ModelConfig> config =
        model::ParseModelConfig(ReadAll(fs::path(MMFUSE_FUZZ_DIR) / "regressions/config" / name));
    ASSERT_TRUE(config.ok()) << config.status();
    const absl::Status valid = model::ValidateModelConfig(*config);
    EXPECT_EQ(valid.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(valid.message()), ::testing::HasSubstr("exceeds the limit of"));
  }
}

// The stream finding: a first chunk refused for its data must not leave its
// header behind (the assembler's "nothing of the chunk is kept").
TEST(FuzzRegressionTest, RefusedFirstChunkKeepsNoHeader) {
  auto assembler = server::FeatureAssembler::Create(&FuzzModelConfig(), {});
  ASSERT_TRUE(assembler.ok());
  v1::FeatureChunk chunk;
  chunk.mutable_header()->set_request_id("r1");
  chunk.set_modality("text");
  chunk.set_frames(1);
  chunk.set_dim(2);
  chunk.add_data(1.0f);
  chunk.add_data(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ((*assembler)->Add(chunk).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*assembler)->header().request_id(), "");
  EXPECT_EQ((*assembler)->request().request_id(), "");
}

// The generated seeds must be accepted: a seed corpus of rejected inputs
// would leave the fuzzers exploring error paths only.
TEST(FuzzSeedsTest, RequestSeedsAreValidRequests) {
  const v1::ModelConfig& config = FuzzModelConfig();
  const std::vector<std::string> seeds = RequestSeeds(24);
  ASSERT_EQ(seeds.size(), 24u);
  bool saw_fp16 = false;
  for (const std::string& seed : seeds) {
    v1::ClassifyRequest request;
    ASSERT_TRUE(request.ParseFromString(seed));
    EXPECT_TRUE(server::ValidateRequest(config, 3, request).ok())
        << server::ValidateRequest(config, 3, request);
    for (const auto& [name, seq] : request.features()) saw_fp16 |= !seq.data_fp16().empty();
    RunRequestTarget(reinterpret_cast<const uint8_t*>(seed.data()), seed.size());
  }
  EXPECT_TRUE(saw_fp16);
}

TEST(FuzzSeedsTest, StreamSeedsAssembleValidRequests) {
  const v1::ModelConfig& config = FuzzModelConfig();
  for (const std::string& seed : StreamSeeds(24)) {
    ASSERT_GT(seed.size(), 1u);
    google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(seed.data()) + 1,
                                              static_cast<int>(seed.size() - 1));
    auto assembler = server::FeatureAssembler::Create(&config, {});
    ASSERT_TRUE(assembler.ok());
    uint32_t length = 0;
    while (in.ReadVarint32(&length)) {
      std::string bytes;
      ASSERT_TRUE(in.ReadString(&bytes, static_cast<int>(length)));
      v1::FeatureChunk chunk;
      ASSERT_TRUE(chunk.ParseFromString(bytes));
      ASSERT_TRUE((*assembler)->Add(chunk).ok()) << (*assembler)->Add(chunk);
    }
    absl::StatusOr<v1::ClassifyRequest> request = (*assembler)->Finish();
    ASSERT_TRUE(request.ok()) << request.status();
    EXPECT_TRUE(server::ValidateRequest(config, 0, *request).ok());
  }
}

TEST(FuzzSeedsTest, DatasetSeedsReadBack) {
  const std::string path = ::testing::TempDir() + "/fuzz_dataset_seed";
  for (const std::string& seed : DatasetSeeds(8)) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << seed;
    absl::StatusOr<std::vector<v1::Example>> examples = data::ReadDataset(path);
    ASSERT_TRUE(examples.ok()) << examples.status();
    EXPECT_GE(examples->size(), 1u);
  }
}

TEST(FuzzSeedsTest, ConfigSeedsAreValid) {
  std::vector<std::string> seeds = ConfigSeeds();
  for (const fs::path& path : InputsIn(fs::path(MMFUSE_FUZZ_DIR) / "seeds/config")) {
    seeds.push_back(ReadAll(path));
  }
  for (const std::string& seed : seeds) {
    absl::StatusOr<v1::ModelConfig> config = model::ParseModelConfig(seed);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(model::ValidateModelConfig(*config).ok()) << model::ValidateModelConfig(*config);
  }
}

}  // namespace
}  // namespace mmfuse::fuzz
