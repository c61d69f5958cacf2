#include "model/model_config.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/setting_range.h"
#include "common/status_macros.h"
#include "google/protobuf/io/tokenizer.h"
#include "model/featurizer_config.h"
#include "model/locomt_views.h"
#include "google/protobuf/text_format.h"

namespace mmfuse::model {
namespace {

// Collects the text-format parser's messages so they reach the caller.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (!errors_.empty()) errors_ += "; ";
    absl::StrAppend(&errors_, "line ", line + 1, " column ", column + 1, ": ", message);
  }
  const std::string& errors() const { return errors_; }

 private:
  std::string errors_;
};

// Upper bounds of the architecture's sizes, so that everything derived from
// them (the views of every head, the multiply-adds of model/flops.cc at
// max_frames) stays small enough to allocate and to count in int64.
absl::Status ValidateArchitectureSizes(const v1::ModelConfig& config) {
  auto too_large = [](const char* field, uint64_t value, uint64_t limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: ", field, "=", value, " exceeds the limit of ", limit));
  };
  if (config.modalities_size() > kMaxModalities) {
    return too_large("modalities (count)", config.modalities_size(), kMaxModalities);
  }
  for (int i = 0; i < config.modalities_size(); ++i) {
    if (config.modalities(i).feature_dim() > kMaxFeatureDim) {
      return too_large(absl::StrCat("modalities[", i, "].feature_dim").c_str(),
                       config.modalities(i).feature_dim(), kMaxFeatureDim);
    }
  }
  const v1::TransformerConfig& t = config.transformer();
  if (t.d_model() > kMaxModelDim) return too_large("transformer.d_model", t.d_model(), kMaxModelDim);
  if (t.ff_dim() > kMaxFfDim) return too_large("transformer.ff_dim", t.ff_dim(), kMaxFfDim);
  if (t.unimodal_layers() > kMaxLayers) {
    return too_large("transformer.unimodal_layers", t.unimodal_layers(), kMaxLayers);
  }
  if (t.fusion_layers() > kMaxLayers) {
    return too_large("transformer.fusion_layers", t.fusion_layers(), kMaxLayers);
  }
  if (config.mbt().num_bottlenecks() > kMaxExtraTokens) {
    return too_large("mbt.num_bottlenecks", config.mbt().num_bottlenecks(), kMaxExtraTokens);
  }
  if (config.pmf().num_prompts() > kMaxExtraTokens) {
    return too_large("pmf.num_prompts", config.pmf().num_prompts(), kMaxExtraTokens);
  }
  if (config.gate().summary_dim() > kMaxGateDim) {
    return too_large("gate.summary_dim", config.gate().summary_dim(), kMaxGateDim);
  }
  if (config.gate().hidden_dim() > kMaxGateDim) {
    return too_large("gate.hidden_dim", config.gate().hidden_dim(), kMaxGateDim);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ModelConfig> ParseModelConfig(const std::string& text) {
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  v1::ModelConfig config;
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(absl::StrCat("config.pbtxt: ", errors.errors()));
  }
  return config;
}

absl::StatusOr<v1::ModelConfig> ReadModelConfig(const std::string& path) {
  std::ifstream file(path);
  if (!file.is_open()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << file.rdbuf();
  absl::StatusOr<v1::ModelConfig> config = ParseModelConfig(text.str());
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

std::string FormatModelConfig(const v1::ModelConfig& config) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  return text;
}

namespace {

// proto3: 0 is "not given" (the server's default), every other value must
// be in the range the server's flag of the same name takes.
absl::Status CheckGiven(absl::string_view field, int64_t value, SettingRange range) {
  return value == 0 ? absl::OkStatus() : CheckSetting(absl::StrCat("batching.", field), value, range);
}

}  // namespace

absl::Status ValidateBatchingConfig(const v1::BatchingConfig& b) {
  MMFUSE_RETURN_IF_ERROR(CheckGiven("max_batch_size", b.max_batch_size(), ranges::kMaxBatchSize));
  MMFUSE_RETURN_IF_ERROR(
      CheckGiven("max_queue_delay_us", b.max_queue_delay_us(), ranges::kMaxQueueDelayUs));
  MMFUSE_RETURN_IF_ERROR(CheckGiven("max_queue_size", b.max_queue_size(), ranges::kMaxQueueSize));
  MMFUSE_RETURN_IF_ERROR(
      CheckGiven("max_batch_tokens", b.max_batch_tokens(), ranges::kMaxBatchTokens));
  MMFUSE_RETURN_IF_ERROR(
      CheckGiven("priority_levels", b.priority_levels(), ranges::kPriorityLevels));
  const int64_t levels = b.priority_levels() > 0 ? b.priority_levels() : 1;
  MMFUSE_RETURN_IF_ERROR(CheckGiven("default_priority", b.default_priority(), {1, levels}));
  MMFUSE_RETURN_IF_ERROR(
      CheckGiven("default_timeout_ms", b.default_timeout_ms(), ranges::kDefaultTimeoutMs));
  MMFUSE_RETURN_IF_ERROR(
      CheckGiven("max_queue_time_ms", b.max_queue_time_ms(), ranges::kMaxQueueTimeMs));
  if (b.length_bucket_ratio() != 0 &&
      !(b.length_bucket_ratio() >= 1.05f && b.length_bucket_ratio() <= 16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batching.length_bucket_ratio=", b.length_bucket_ratio(), " is outside [1.05, 16] (0 = none)"));
  }
  uint64_t previous = 0;
  for (uint64_t edge : b.length_bucket_edges()) {
    if (edge <= previous) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batching.length_bucket_edges must increase from >= 1; ", edge, " follows ", previous));
    }
    previous = edge;
  }
  return absl::OkStatus();
}

absl::Status ValidateModelConfig(const v1::ModelConfig& config) {
  auto invalid = [](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", parts...));
  };
  if (config.modalities().empty()) return invalid("modalities is empty; at least one is needed");
  std::set<std::string> names;
  for (int i = 0; i < config.modalities_size(); ++i) {
    const v1::ModalityConfig& m = config.modalities(i);
    if (m.name().empty()) return invalid("modalities[", i, "].name is empty");
    if (!names.insert(m.name()).second) {
      return invalid("modalities[", i, "].name=\"", m.name(), "\" is a duplicate");
    }
    if (m.feature_dim() < 1) return invalid("modalities[", i, "].feature_dim must be >= 1");
    if (m.max_frames() < 1 || m.max_frames() > kMaxFramesLimit) {
      return invalid("modalities[", i, "].max_frames=", m.max_frames(), " is outside [1, ",
                     kMaxFramesLimit, "]");
    }
    if (m.reference_frames() > m.max_frames()) {
      return invalid("modalities[", i, "].reference_frames=", m.reference_frames(),
                     " exceeds max_frames=", m.max_frames());
    }
    absl::Status featurizer = ValidateModalityFeaturizer(m, i);
    if (!featurizer.ok()) return featurizer;
  }
  if (config.num_classes() < 2) {
    return invalid("num_classes=", config.num_classes(), " must be >= 2");
  }
  if (config.fusion_mode() == v1::FUSION_MODE_UNSPECIFIED ||
      !v1::FusionMode_IsValid(config.fusion_mode())) {
    return invalid("fusion_mode=", config.fusion_mode(),
                   " is not set; choose one of concat, late, mbt, sft, locomt, pmf");
  }
  const v1::TransformerConfig& t = config.transformer();
  if (t.d_model() < 8) return invalid("transformer.d_model=", t.d_model(), " must be >= 8");
  if (t.num_heads() < 1) return invalid("transformer.num_heads must be >= 1");
  if (t.d_model() % t.num_heads() != 0) {
    return invalid("transformer.d_model=", t.d_model(),
                   " is not divisible by transformer.num_heads=", t.num_heads());
  }
  if (t.ff_dim() < 1) return invalid("transformer.ff_dim must be >= 1");
  if (t.fusion_layers() < 1) return invalid("transformer.fusion_layers must be >= 1");
  if (!(t.dropout() >= 0 && t.dropout() < 1)) {
    return invalid("transformer.dropout=", t.dropout(), " is outside [0, 1)");
  }
  absl::Status sizes = ValidateArchitectureSizes(config);
  if (!sizes.ok()) return sizes;
  if (config.fusion_mode() == v1::FUSION_MODE_SFT) {
    for (const auto& [name, kernel] : config.sft().kernel()) {
      if (names.count(name) == 0) return invalid("sft.kernel names unknown modality \"", name, "\"");
      if (kernel < 1) return invalid("sft.kernel[\"", name, "\"]=0 must be >= 1");
    }
  }
  if (config.fusion_mode() == v1::FUSION_MODE_PMF && t.d_model() < 2) {
    return invalid("transformer.d_model must be >= 2 for pmf adapters");
  }
  if (config.fusion_mode() == v1::FUSION_MODE_LOCOMT) {
    absl::Status views = LocomtViews(config).status();
    if (!views.ok()) return views;
  }
  std::set<std::string> branch_names;
  for (int b = 0; b < config.branches_size(); ++b) {
    const v1::BranchConfig& branch = config.branches(b);
    if (branch.name().empty()) return invalid("branches[", b, "].name is empty");
    if (!branch_names.insert(branch.name()).second) {
      return invalid("branches[", b, "].name=\"", branch.name(), "\" is a duplicate");
    }
    for (const std::string& m : branch.modalities()) {
      if (names.count(m) == 0) {
        return invalid("branches[", b, "].modalities names unknown modality \"", m, "\"");
      }
    }
    if (branch.unimodal_layers() > kMaxBranchLayers || branch.fusion_layers() > kMaxBranchLayers) {
      return invalid("branches[", b, "] (\"", branch.name(), "\"): unimodal_layers=",
                     branch.unimodal_layers(), " and fusion_layers=", branch.fusion_layers(),
                     " must be <= ", kMaxBranchLayers);
    }
  }
  if (config.gate().pooling() != v1::GATE_POOLING_UNSPECIFIED &&
      !v1::GatePooling_IsValid(config.gate().pooling())) {
    return invalid("gate.pooling=", config.gate().pooling(), " is not one of mean, mean_max");
  }
  const v1::BatchingConfig& batching = config.batching();
  MMFUSE_RETURN_IF_ERROR(ValidateBatchingConfig(batching));
  for (uint32_t size : batching.preferred_batch_sizes()) {
    if (size < 1 || (batching.max_batch_size() > 0 && size > batching.max_batch_size())) {
      return invalid("batching.preferred_batch_sizes has ", size, ", outside [1, max_batch_size=",
                     batching.max_batch_size(), "]");
    }
  }
  return absl::OkStatus();
}

int ModalityIndex(const v1::ModelConfig& config, const std::string& name) {
  for (int i = 0; i < config.modalities_size(); ++i) {
    if (config.modalities(i).name() == name) return i;
  }
  return -1;
}

std::vector<int64_t> FramesOf(const v1::ModelConfig& config,
                              const google::protobuf::Map<std::string, v1::FeatureSequence>& features) {
  std::vector<int64_t> frames(config.modalities_size(), 0);
  for (int m = 0; m < config.modalities_size(); ++m) {
    auto it = features.find(config.modalities(m).name());
    if (it != features.end()) frames[m] = it->second.frames();
  }
  return frames;
}

BatchingKey BatchingKeyOf(const Branch& branch, const std::vector<int64_t>& frames,
                          double bucket_ratio) {
  BatchingKey key;
  const double log_ratio = bucket_ratio > 1 ? std::log(bucket_ratio) : 0;
  for (int m : branch.modalities) {
    // 0 = absent, 1 + k = present in bucket [r^k, r^(k+1)). A bucket index
    // stays below the radix (frames <= 65536, r >= 1.05), so keys never
    // collide up to 6 modalities; beyond, two groups may share a key, which
    // costs padding, never a wrong answer.
    uint64_t bucket = 0;
    if (frames[m] > 0) {
      bucket = 1;
      if (log_ratio > 0) {
        bucket += static_cast<uint64_t>(std::log(static_cast<double>(frames[m])) / log_ratio);
      }
      key.tokens += 1 + frames[m];
    }
    key.input_group = key.input_group * 1024 + bucket;
  }
  return key;
}

std::vector<Branch> ResolveBranches(const v1::ModelConfig& config) {
  std::vector<Branch> branches;
  for (const v1::BranchConfig& b : config.branches()) {
    Branch branch{b.name(), {}};
    for (int i = 0; i < config.modalities_size(); ++i) {
      const std::string& name = config.modalities(i).name();
      bool listed = b.modalities().empty();
      for (const std::string& m : b.modalities()) listed |= (m == name);
      if (listed) branch.modalities.push_back(i);
    }
    branches.push_back(std::move(branch));
  }
  if (branches.empty()) {
    Branch full{"full", {}};
    for (int i = 0; i < config.modalities_size(); ++i) full.modalities.push_back(i);
    branches.push_back(std::move(full));
  }
  return branches;
}

v1::ModelConfig ExpertConfig(const v1::ModelConfig& config, const Branch& branch) {
  v1::ModelConfig expert = config;
  expert.clear_modalities();
  expert.clear_branches();
  for (int m : branch.modalities) *expert.add_modalities() = config.modalities(m);
  for (const v1::BranchConfig& b : config.branches()) {
    if (b.name() != branch.name) continue;
    if (b.fusion_mode() != v1::FUSION_MODE_UNSPECIFIED) expert.set_fusion_mode(b.fusion_mode());
    if (b.unimodal_layers() > 0) expert.mutable_transformer()->set_unimodal_layers(b.unimodal_layers());
    if (b.fusion_layers() > 0) expert.mutable_transformer()->set_fusion_layers(b.fusion_layers());
  }
  // A view table names modalities the expert may lack; the default table
  // adapts to any subset.
  if (expert.modalities_size() != config.modalities_size()) expert.clear_locomt();
  return expert;
}

int FullBranch(const std::vector<Branch>& branches) {
  int best = 0;
  for (int b = 1; b < static_cast<int>(branches.size()); ++b) {
    if (branches[b].modalities.size() > branches[best].modalities.size()) best = b;
  }
  return best;
}

void AddDefaultBranches(v1::ModelConfig* config) {
  config->clear_branches();
  for (const char* name : {"text", "audio", "video"}) {
    if (ModalityIndex(*config, name) < 0) continue;
    v1::BranchConfig* b = config->add_branches();
    b->set_name(name);
    b->add_modalities(name);
  }
  config->add_branches()->set_name("full");
}

void AddFusionLevelBranches(v1::ModelConfig* config) {
  const v1::TransformerConfig& t = config->transformer();
  const uint32_t depth = t.unimodal_layers() + t.fusion_layers();
  // "full" first: among branches over every modality the first is the one
  // budget ACCURATE runs (FullBranch).
  if (config->branches().empty()) config->add_branches()->set_name("full");
  if (depth >= 2 && t.fusion_layers() > 1) {
    v1::BranchConfig* fuse_last = config->add_branches();
    fuse_last->set_name("fuse_last");
    fuse_last->set_unimodal_layers(depth - 1);
    fuse_last->set_fusion_layers(1);
  }
  v1::BranchConfig* late = config->add_branches();
  late->set_name("late");
  late->set_fusion_mode(v1::FUSION_MODE_LATE);
}

std::string FusionModeName(v1::FusionMode mode) {
  std::string name = v1::FusionMode_Name(mode);
  const std::string prefix = "FUSION_MODE_";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

}  // namespace mmfuse::model

namespace mmfuse::model {

absl::StatusOr<v1::FusionMode> ParseFusionMode(const std::string& name) {
  v1::FusionMode mode;
  if (v1::FusionMode_Parse("FUSION_MODE_" + absl::AsciiStrToUpper(name), &mode) &&
      mode != v1::FUSION_MODE_UNSPECIFIED) {
    return mode;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "fusion mode \"", name, "\" is not one of concat, late, mbt, sft, locomt, pmf"));
}

}  // namespace mmfuse::model
