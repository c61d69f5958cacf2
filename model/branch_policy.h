// Which branch runs a request: the gate's preference, restricted to the
// branches the request can use, shaped by its compute budget and by the
// server's load. Torch-free: the server decides on the request thread.
#ifndef MMFUSE_MODEL_BRANCH_POLICY_H_
#define MMFUSE_MODEL_BRANCH_POLICY_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "mmfuse/v1/classifier.pb.h"
#include "mmfuse/v1/model_config.pb.h"
#include "model/model_config.h"

namespace mmfuse::model {

struct BranchChoice {
  int branch = 0;
  bool gate_ran = false;  // The gate's cost was spent on this request.
};

// Branch costs for one request, precomputed once per model.
class BranchPolicy {
 public:
  explicit BranchPolicy(const v1::ModelConfig& config);

  const std::vector<Branch>& branches() const { return branches_; }
  int full_branch() const { return full_; }

  // Whether `branch` can answer a request with `frames`: it has every
  // modality the branch needs, or the branch is the full one (which answers
  // from whatever a request has).
  bool Usable(int branch, const std::vector<int64_t>& frames) const;

  // Whether the gate must run for `budget` (not for ACCURATE, nor for a
  // model with one branch).
  bool NeedsGate(const v1::ComputeBudget& budget) const;

  // Chooses for a request with `frames[m]` frames of modality m (0 =
  // absent). A branch needing a modality the request lacks is out, except
  // the full branch, which answers from whatever a request has.
  //   ACCURATE: the full branch (the costliest one within max_gflops).
  //   BALANCED: the gate's best, less load_bias * cost / full cost.
  //   FAST:     as BALANCED with gate.fast_bias added to the load bias.
  // max_gflops > 0 keeps only branches within it (gate cost included);
  // INVALID_ARGUMENT naming the cheapest branch if none fits.
  // `gate_logits` (one per branch) is read unless ACCURATE.
  absl::StatusOr<BranchChoice> Choose(const std::vector<int64_t>& frames,
                                      const v1::ComputeBudget& budget,
                                      absl::Span<const float> gate_logits, double load_bias) const;

  // Choose's refusal for a request whatever its gate logits (the budget's
  // max_gflops below every usable branch), or OK: lets a server refuse a
  // request before it waits for the gate.
  absl::Status CheckBudget(const std::vector<int64_t>& frames,
                           const v1::ComputeBudget& budget) const;

  // Estimated GFLOPs of `branch` (plus the gate when it ran) for `frames`.
  double Gflops(int branch, bool gate_ran, const std::vector<int64_t>& frames) const;

 private:
  v1::ModelConfig config_;
  std::vector<Branch> branches_;
  std::vector<v1::ModelConfig> experts_;  // ExpertConfig of each branch.
  int full_ = 0;
  double fast_bias_ = 2.0;
};

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_BRANCH_POLICY_H_
