// The model package's config.pbtxt: parsing, validation and the derived facts
// every layer needs (modality order, branches). No LibTorch here, so the
// server's request path and the CLI can use it cheaply.
#ifndef MMFUSE_MODEL_MODEL_CONFIG_H_
#define MMFUSE_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/map.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Longest sequence a modality may declare (learned positions are allocated
// for every frame up to max_frames).
inline constexpr int kMaxFramesLimit = 65536;
// Upper bounds of the architecture (ValidateModelConfig): with them every
// multiply-add count of model/flops.h fits in int64 at max_frames.
inline constexpr int kMaxModalities = 16;
inline constexpr uint32_t kMaxFeatureDim = 65536;
inline constexpr uint32_t kMaxModelDim = 8192;
inline constexpr uint32_t kMaxFfDim = 32768;
inline constexpr uint32_t kMaxLayers = 64;
inline constexpr uint32_t kMaxExtraTokens = 256;  // MBT bottlenecks, PMF prompts.
inline constexpr uint32_t kMaxGateDim = 4096;
// Most layers a branch may override its expert's depth to.
inline constexpr uint32_t kMaxBranchLayers = 64;

// Parses protobuf text format; errors name the line.
absl::StatusOr<v1::ModelConfig> ParseModelConfig(const std::string& text);
absl::StatusOr<v1::ModelConfig> ReadModelConfig(const std::string& path);
std::string FormatModelConfig(const v1::ModelConfig& config);

// Checks every field against its limits; the error names the field, its value
// and the limit (e.g. "transformer.d_model=100 is not divisible by
// transformer.num_heads=3").
absl::Status ValidateModelConfig(const v1::ModelConfig& config);

// The batching part of ValidateModelConfig: each field 0 (not given) or in
// the range of the server flag of the same name (common/setting_range.h).
// The server checks it at start with its flags (server/settings.h).
absl::Status ValidateBatchingConfig(const v1::BatchingConfig& batching);

// Index of `name` in config.modalities, or -1.
int ModalityIndex(const v1::ModelConfig& config, const std::string& name);

// Frames per modality (model order; 0 = absent) of a request's or an
// example's features. Names the model does not know are ignored.
std::vector<int64_t> FramesOf(const v1::ModelConfig& config,
                              const google::protobuf::Map<std::string, v1::FeatureSequence>& features);

// A branch resolved to modality indices (model order).
struct Branch {
  std::string name;
  std::vector<int> modalities;
};

// How the batcher groups a request for `branch` (server/served_model.cc):
// its input group, a key equal for requests that carry the same modalities
// of the branch with frame counts in the same geometric buckets of ratio
// `bucket_ratio` (batching.length_bucket_ratio; <= 1 = presence only), and
// the tokens the branch computes for it (a class token and the frames of
// each present modality). `frames` is FramesOf's (0 = absent).
struct BatchingKey {
  uint64_t input_group = 0;
  int64_t tokens = 0;
};
BatchingKey BatchingKeyOf(const Branch& branch, const std::vector<int64_t>& frames,
                          double bucket_ratio);

// The config's branches, or the single branch "full" with every modality.
std::vector<Branch> ResolveBranches(const v1::ModelConfig& config);

// The config a branch's expert is built from: `config` restricted to the
// branch's modalities (model order), with the branch's fusion mode and
// layer counts where it sets them.
v1::ModelConfig ExpertConfig(const v1::ModelConfig& config, const Branch& branch);

// Index of the full branch (the one with every modality), else of the
// branch with the most modalities.
int FullBranch(const std::vector<Branch>& branches);

// The gated default: {text}, {audio}, {video} and the full branch.
void AddDefaultBranches(v1::ModelConfig* config);

// Fusion-level gating: appends branches over every modality that fuse later
// than the full branch: "fuse_last" (only the last layer fuses; when the
// transformer has more than one fusion layer) and "late" (late fusion).
// Adds "full" first when the config has no branches.
void AddFusionLevelBranches(v1::ModelConfig* config);

// Lowercase name of a fusion mode ("concat"), and back (error names the
// choices).
std::string FusionModeName(v1::FusionMode mode);
absl::StatusOr<v1::FusionMode> ParseFusionMode(const std::string& name);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_MODEL_CONFIG_H_
