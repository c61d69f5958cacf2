// Request decoding and validation: what a Classify call's bytes go through
// before they may cost compute (server/served_model.cc: ValidateRequest,
// FramesOf, then the branch choice; the gate's logits, which need LibTorch,
// are stood in for by values taken from the input).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/check.h"
#include "model/branch_policy.h"
#include "model/model_config.h"
#include "server/request_validator.h"
#include "tests/fuzz/fuzz_targets.h"

namespace mmfuse::fuzz {

void RunRequestTarget(const uint8_t* data, size_t size) {
  v1::ClassifyRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return;
  const v1::ModelConfig& config = FuzzModelConfig();
  const int priority_levels = static_cast<int>(config.batching().priority_levels());
  const absl::Status valid = server::ValidateRequest(config, priority_levels, request);
  if (!valid.ok()) {
    MMFUSE_CHECK(valid.code() == absl::StatusCode::kInvalidArgument, valid.ToString());
    MMFUSE_CHECK(!valid.message().empty(), "a rejection must say why");
    return;
  }
  // Validation's promises, which the batcher and the model rely on.
  const std::vector<int64_t> frames = model::FramesOf(config, request.features());
  int64_t present = 0;
  for (int m = 0; m < config.modalities_size(); ++m) {
    MMFUSE_CHECK(frames[m] >= 0 && frames[m] <= config.modalities(m).max_frames(),
                 "validated frames outside [0, max_frames]");
    present += frames[m] > 0;
  }
  MMFUSE_CHECK(present == static_cast<int64_t>(request.features().size()),
               "a validated request names only the model's modalities, each with frames");
  MMFUSE_CHECK(request.priority() <= static_cast<uint32_t>(priority_levels), "priority");

  static const model::BranchPolicy* const policy = new model::BranchPolicy(config);
  std::vector<float> logits(policy->branches().size());
  for (size_t b = 0; b < logits.size(); ++b) {
    logits[b] = b < request.request_id().size() ? static_cast<float>(request.request_id()[b]) : 0;
  }
  const absl::StatusOr<model::BranchChoice> choice =
      policy->Choose(frames, request.budget(), logits, /*load_bias=*/request.top_k() % 4);
  if (!choice.ok()) {
    MMFUSE_CHECK(request.budget().max_gflops() > 0, "only a GFLOP cap may refuse a valid request");
    return;
  }
  MMFUSE_CHECK(choice->branch >= 0 && choice->branch < static_cast<int>(policy->branches().size()),
               "branch index out of range");
  MMFUSE_CHECK(policy->Usable(choice->branch, frames), "chose a branch the request cannot use");
  const double gflops = policy->Gflops(choice->branch, choice->gate_ran, frames);
  MMFUSE_CHECK(std::isfinite(gflops) && gflops > 0, "a branch's cost must be finite and positive");
}

}  // namespace mmfuse::fuzz
