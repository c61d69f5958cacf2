#include "tests/fuzz/seeds.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "data/dataset_io.h"
#include "data/generator.h"
#include "model/default_config.h"
#include "model/model_config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace mmfuse::fuzz {
namespace {

// Float -> IEEE half, truncating; the generator's values are well inside
// half's normal range (smaller ones become zero, larger ones the largest).
uint16_t FloatToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const int exponent = static_cast<int>((bits >> 23) & 0xFFu) - 127 + 15;
  if (exponent <= 0) return sign;
  if (exponent >= 31) return sign | 0x7BFFu;
  return sign | static_cast<uint16_t>(exponent << 10) | static_cast<uint16_t>((bits >> 13) & 0x3FFu);
}

std::string HalfBytes(const float* values, int count) {
  std::string bytes;
  for (int i = 0; i < count; ++i) {
    const uint16_t half = FloatToHalf(values[i]);
    bytes.push_back(static_cast<char>(half & 0xFF));
    bytes.push_back(static_cast<char>(half >> 8));
  }
  return bytes;
}

void ToFp16(v1::FeatureSequence* seq) {
  seq->set_data_fp16(HalfBytes(seq->data().data(), seq->data_size()));
  seq->clear_data();
}

v1::ComputeBudget BudgetFor(int i) {
  v1::ComputeBudget budget;
  budget.set_level(static_cast<v1::BudgetLevel>(i % 4));
  if (i % 5 == 4) budget.set_max_gflops(1.0);
  return budget;
}

}  // namespace

std::vector<std::string> RequestSeeds(int count) {
  data::Generator generator(FuzzGeneratorOptions(/*seed=*/1), /*stream=*/0);
  std::vector<std::string> seeds;
  for (int i = 0; i < count; ++i) {
    v1::Example example = generator.Next();
    v1::ClassifyRequest request;
    request.set_request_id(example.id());
    request.set_model(FuzzModelConfig().name());
    *request.mutable_features() = example.features();
    if (i % 3 == 1) {
      for (auto& [name, seq] : *request.mutable_features()) ToFp16(&seq);
    }
    request.set_top_k(1 + i % 5);
    *request.mutable_budget() = BudgetFor(i);
    request.set_priority(i % 4);
    seeds.push_back(request.SerializeAsString());
  }
  return seeds;
}

std::vector<std::string> StreamSeeds(int count) {
  data::Generator generator(FuzzGeneratorOptions(/*seed=*/2), /*stream=*/0);
  std::vector<std::string> seeds;
  for (int i = 0; i < count; ++i) {
    const v1::Example example = generator.Next();
    v1::StreamHeader header;
    header.set_request_id(example.id());
    header.set_top_k(1 + i % 3);
    *header.mutable_budget() = BudgetFor(i);
    header.set_partial_every_frames(i % 3 == 0 ? 4 : 0);
    std::vector<v1::FeatureChunk> chunks;
    if (i % 2 == 0) *chunks.emplace_back().mutable_header() = header;
    // Each modality in chunks of up to 3 frames; fp16 for every other seed.
    for (const v1::ModalityConfig& modality : FuzzModelConfig().modalities()) {
      auto it = example.features().find(modality.name());
      if (it == example.features().end()) continue;
      const v1::FeatureSequence& seq = it->second;
      const int dim = static_cast<int>(seq.dim());
      for (uint32_t offset = 0; offset < seq.frames(); offset += 3) {
        const uint32_t frames = std::min<uint32_t>(3, seq.frames() - offset);
        v1::FeatureChunk& chunk = chunks.emplace_back();
        if (chunks.size() == 1) *chunk.mutable_header() = header;
        chunk.set_modality(modality.name());
        if (i % 4 == 3) {
          chunk.set_append(true);
        } else {
          chunk.set_offset(offset);
        }
        chunk.set_frames(frames);
        chunk.set_dim(seq.dim());
        const float* values = seq.data().data() + static_cast<int64_t>(offset) * dim;
        if (i % 2 == 1) {
          chunk.set_data_fp16(HalfBytes(values, static_cast<int>(frames) * dim));
        } else {
          chunk.mutable_data()->Add(values, values + frames * dim);
        }
      }
    }
    seeds.push_back(EncodeChunkStream(/*options=*/0, chunks));
  }
  return seeds;
}

std::vector<std::string> DatasetSeeds(int count) {
  data::Generator generator(FuzzGeneratorOptions(/*seed=*/3), /*stream=*/0);
  const std::string path =
      (std::filesystem::temp_directory_path() / absl::StrCat("mmfuse_fuzz_seed_", getpid()))
          .string();
  std::vector<std::string> seeds;
  for (int i = 0; i < count; ++i) {
    std::vector<v1::Example> examples;
    for (int e = 0; e <= i % 4; ++e) examples.push_back(generator.Next());
    const absl::Status written = data::WriteDataset(path, examples);
    MMFUSE_CHECK(written.ok(), written.ToString());
    std::ifstream file(path, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  }
  std::remove(path.c_str());
  return seeds;
}

std::vector<std::string> ConfigSeeds() {
  std::vector<std::string> seeds;
  seeds.push_back(model::FormatModelConfig(model::DefaultModelConfig()));
  seeds.push_back(model::FormatModelConfig(FuzzModelConfig()));
  for (v1::FusionMode mode : {v1::FUSION_MODE_LATE, v1::FUSION_MODE_MBT, v1::FUSION_MODE_SFT,
                              v1::FUSION_MODE_LOCOMT, v1::FUSION_MODE_PMF}) {
    v1::ModelConfig config = model::DefaultModelConfig();
    config.set_fusion_mode(mode);
    model::AddDefaultBranches(&config);
    if (mode == v1::FUSION_MODE_SFT) (*config.mutable_sft()->mutable_kernel())["audio"] = 8;
    if (mode == v1::FUSION_MODE_MBT) config.mutable_mbt()->set_num_bottlenecks(2);
    if (mode == v1::FUSION_MODE_PMF) config.mutable_pmf()->set_num_prompts(3);
    seeds.push_back(model::FormatModelConfig(config));
  }
  return seeds;
}

}  // namespace mmfuse::fuzz
