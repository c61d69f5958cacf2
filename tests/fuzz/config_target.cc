// The model package's config.pbtxt: text -> ModelConfig -> validation, then
// what loading a valid one derives from it (server/served_model.cc builds a
// BranchPolicy and quotes every branch's GFLOPs at the reference frames).
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/check.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "model/branch_policy.h"
#include "model/flops.h"
#include "model/model_config.h"
#include "tests/fuzz/fuzz_targets.h"

namespace mmfuse::fuzz {
namespace {

// Configs longer than this are not parsed: the text parser is protobuf's,
// and long inputs only slow the fuzzer down.
constexpr size_t kMaxConfigBytes = 16 << 10;

std::string Deterministic(const v1::ModelConfig& config) {
  std::string bytes;
  google::protobuf::io::StringOutputStream stream(&bytes);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  config.SerializeToCodedStream(&coded);
  coded.Trim();
  return bytes;
}

}  // namespace

void RunConfigTarget(const uint8_t* data, size_t size) {
  if (size > kMaxConfigBytes) return;
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<v1::ModelConfig> config = model::ParseModelConfig(text);
  if (!config.ok()) {
    MMFUSE_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument,
                 config.status().ToString());
    return;
  }
  const absl::Status valid = model::ValidateModelConfig(*config);
  if (!valid.ok()) {
    MMFUSE_CHECK(valid.code() == absl::StatusCode::kInvalidArgument, valid.ToString());
    return;
  }

  // A valid config is written back as text (model packages are) and read
  // again unchanged.
  absl::StatusOr<v1::ModelConfig> again = model::ParseModelConfig(model::FormatModelConfig(*config));
  MMFUSE_CHECK(again.ok(), again.status().ToString());
  MMFUSE_CHECK(Deterministic(*again) == Deterministic(*config), "text round trip changed the config");

  const std::vector<model::Branch> branches = model::ResolveBranches(*config);
  MMFUSE_CHECK(!branches.empty(), "a model has at least one branch");
  const int full = model::FullBranch(branches);
  MMFUSE_CHECK(full >= 0 && full < static_cast<int>(branches.size()), "full branch index");
  for (const model::Branch& branch : branches) {
    for (int m : branch.modalities) {
      MMFUSE_CHECK(m >= 0 && m < config->modalities_size(), "branch modality index");
    }
  }

  const model::BranchPolicy policy(*config);
  const std::vector<int64_t> reference = model::ReferenceFrames(*config);
  for (int b = 0; b < static_cast<int>(policy.branches().size()); ++b) {
    if (policy.branches()[b].modalities.empty()) continue;
    const double gflops = policy.Gflops(b, /*gate_ran=*/true, reference);
    MMFUSE_CHECK(std::isfinite(gflops) && gflops >= 0, "a branch's quoted cost must be finite");
  }
  v1::ComputeBudget budget;
  budget.set_level(v1::BUDGET_LEVEL_ACCURATE);
  const absl::StatusOr<model::BranchChoice> choice =
      policy.Choose(reference, budget, std::vector<float>(policy.branches().size()), 0);
  MMFUSE_CHECK(choice.ok(), "ACCURATE without a cap always has a branch: " +
                                choice.status().ToString());
}

}  // namespace mmfuse::fuzz
