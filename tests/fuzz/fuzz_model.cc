// The fixed model of the request-shaped targets and the stream input format.
#include <string>
#include <vector>

#include "common/check.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "model/default_config.h"
#include "model/model_config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace mmfuse::fuzz {
namespace {

struct ModalityShape {
  const char* name;
  int feature_dim;
  int max_frames;
};

// The generator's modalities, shrunk: a valid request is a few hundred bytes.
constexpr ModalityShape kShapes[] = {{"audio", 4, 16}, {"video", 3, 8}, {"text", 2, 8}};

v1::ModelConfig MakeFuzzModelConfig() {
  v1::ModelConfig config = model::DefaultModelConfig();
  config.set_name("fuzz");
  config.clear_modalities();
  for (const ModalityShape& shape : kShapes) {
    v1::ModalityConfig* m = config.add_modalities();
    m->set_name(shape.name);
    m->set_feature_dim(shape.feature_dim);
    m->set_max_frames(shape.max_frames);
    m->set_reference_frames(shape.max_frames / 2);
  }
  model::AddDefaultBranches(&config);
  config.mutable_batching()->set_priority_levels(3);
  return config;
}

}  // namespace

const v1::ModelConfig& FuzzModelConfig() {
  static const v1::ModelConfig* const config = [] {
    auto* c = new v1::ModelConfig(MakeFuzzModelConfig());
    absl::Status valid = model::ValidateModelConfig(*c);
    MMFUSE_CHECK(valid.ok(), valid.ToString());
    return c;
  }();
  return *config;
}

data::GeneratorOptions FuzzGeneratorOptions(uint64_t seed) {
  data::GeneratorOptions options;
  options.seed = seed;
  options.missing_rate = 0.3;
  options.modalities.clear();
  for (const ModalityShape& shape : kShapes) {
    options.modalities.push_back({shape.name, shape.feature_dim, 1, shape.max_frames});
  }
  return options;
}

std::string EncodeChunkStream(uint8_t options, const std::vector<v1::FeatureChunk>& chunks) {
  std::string out(1, static_cast<char>(options));
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    for (const v1::FeatureChunk& chunk : chunks) {
      const std::string bytes = chunk.SerializeAsString();
      coded.WriteVarint32(static_cast<uint32_t>(bytes.size()));
      coded.WriteString(bytes);
    }
  }
  return out;
}

}  // namespace mmfuse::fuzz
