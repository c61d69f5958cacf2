#include "model/branch_policy.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "model/flops.h"

namespace mmfuse::model {

BranchPolicy::BranchPolicy(const v1::ModelConfig& config)
    : config_(config), branches_(ResolveBranches(config)), full_(FullBranch(branches_)) {
  if (config.gate().fast_bias() > 0) fast_bias_ = config.gate().fast_bias();
  for (const Branch& branch : branches_) experts_.push_back(ExpertConfig(config, branch));
}

bool BranchPolicy::NeedsGate(const v1::ComputeBudget& budget) const {
  return branches_.size() > 1 && budget.level() != v1::BUDGET_LEVEL_ACCURATE;
}

bool BranchPolicy::Usable(int branch, const std::vector<int64_t>& frames) const {
  if (branch == full_) return true;
  for (int m : branches_[branch].modalities) {
    if (m >= static_cast<int>(frames.size()) || frames[m] == 0) return false;
  }
  return true;
}

double BranchPolicy::Gflops(int branch, bool gate_ran, const std::vector<int64_t>& frames) const {
  std::vector<int64_t> expert_frames;
  for (int m : branches_[branch].modalities) expert_frames.push_back(frames[m]);
  int64_t macs = ForwardMacs(experts_[branch], expert_frames);
  if (gate_ran) macs += GateMacs(config_, frames);
  return MacsToGflops(macs);
}

absl::Status BranchPolicy::CheckBudget(const std::vector<int64_t>& frames,
                                       const v1::ComputeBudget& budget) const {
  // Logits only rank the branches within the budget; whether any is within
  // it does not depend on them.
  const std::vector<float> any_logits(branches_.size(), 0.0f);
  return Choose(frames, budget, any_logits, /*load_bias=*/0).status();
}

absl::StatusOr<BranchChoice> BranchPolicy::Choose(const std::vector<int64_t>& frames,
                                                  const v1::ComputeBudget& budget,
                                                  absl::Span<const float> gate_logits,
                                                  double load_bias) const {
  BranchChoice choice;
  if (branches_.size() == 1) return choice;
  choice.gate_ran = NeedsGate(budget);
  const double full_cost = std::max(1e-12, Gflops(full_, false, frames));
  const double cap = budget.max_gflops();
  int best = -1;
  double best_score = -std::numeric_limits<double>::infinity();
  int cheapest = -1;
  double cheapest_gflops = std::numeric_limits<double>::infinity();
  for (int b = 0; b < static_cast<int>(branches_.size()); ++b) {
    if (!Usable(b, frames)) continue;
    const double gflops = Gflops(b, choice.gate_ran, frames);
    if (gflops < cheapest_gflops) {
      cheapest_gflops = gflops;
      cheapest = b;
    }
    if (cap > 0 && gflops > cap) continue;
    double score;
    if (!choice.gate_ran) {
      // ACCURATE: the full branch, else the costliest one allowed.
      score = b == full_ ? std::numeric_limits<double>::max() : gflops;
    } else {
      double bias = load_bias;
      if (budget.level() == v1::BUDGET_LEVEL_FAST) bias += fast_bias_;
      score = gate_logits[b] - bias * Gflops(b, false, frames) / full_cost;
    }
    if (score > best_score) {
      best_score = score;
      best = b;
    }
  }
  if (best < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "budget.max_gflops=", cap, " is below the cheapest branch this request can use (",
        cheapest >= 0 ? branches_[cheapest].name : "none", ": ", cheapest_gflops, " GFLOPs)"));
  }
  choice.branch = best;
  return choice;
}

}  // namespace mmfuse::model
