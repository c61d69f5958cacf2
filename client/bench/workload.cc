#include "client/bench/workload.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "client/classifier_client.h"
#include "data/dataset_io.h"
#include "data/generator.h"

namespace mmfuse::bench {
namespace {

constexpr int kDefaultGeneratedSamples = 512;

absl::StatusOr<std::vector<v1::Example>> GenerateExamples(const WorkloadOptions& options,
                                                          const v1::ModelInfo& info) {
  data::GeneratorOptions generator_options;
  generator_options.seed = options.seed;
  const std::vector<data::GeneratedModality> defaults = data::GeneratorOptions::DefaultModalities();
  generator_options.modalities.clear();
  for (const v1::ModalityInfo& m : info.modalities()) {
    auto it = std::find_if(defaults.begin(), defaults.end(),
                           [&](const data::GeneratedModality& d) { return d.name == m.name(); });
    if (it == defaults.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model \"", info.name(), "\" has modality \"", m.name(),
          "\" but generated samples know only audio, video and text; replay a dataset with "
          "--data"));
    }
    if (m.feature_dim() < 1 || m.max_frames() < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("model \"", info.name(), "\" modality \"", m.name(), "\" has feature_dim=",
                       m.feature_dim(), " max_frames=", m.max_frames(), "; both must be >= 1"));
    }
    data::GeneratedModality g = *it;
    g.feature_dim = static_cast<int>(m.feature_dim());
    g.max_frames = std::min<int>(g.max_frames, static_cast<int>(m.max_frames()));
    g.min_frames = std::min(g.min_frames, g.max_frames);
    generator_options.modalities.push_back(g);
  }
  if (generator_options.modalities.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model \"", info.name(), "\" reports no modalities"));
  }
  data::Generator generator(generator_options, options.stream);
  const int n = options.samples > 0 ? options.samples : kDefaultGeneratedSamples;
  std::vector<v1::Example> examples;
  examples.reserve(n);
  for (int i = 0; i < n; ++i) examples.push_back(generator.Next());
  return examples;
}

absl::StatusOr<std::vector<v1::Example>> ReadExamples(const WorkloadOptions& options) {
  absl::StatusOr<std::vector<v1::Example>> examples = data::ReadDataset(options.data_path);
  if (!examples.ok()) return examples.status();
  if (examples->empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_path=", options.data_path, " holds no examples"));
  }
  if (options.samples > 0 && static_cast<size_t>(options.samples) < examples->size()) {
    examples->resize(options.samples);
  }
  return examples;
}

// Index of the mix entry of each of `n` requests: exact counts, seeded order.
std::vector<int> AssignEntries(const std::vector<double>& weights, int n, std::mt19937_64* rng) {
  const std::vector<int> counts = ApportionCounts(weights, n);
  std::vector<int> assignment;
  assignment.reserve(n);
  for (size_t e = 0; e < counts.size(); ++e) assignment.insert(assignment.end(), counts[e], e);
  std::shuffle(assignment.begin(), assignment.end(), *rng);
  return assignment;
}

// Drops the modalities not in `keep` (empty = keep all), unless that leaves
// none.
void ApplyModalities(const std::vector<std::string>& keep, v1::ClassifyRequest* request) {
  if (keep.empty()) return;
  const std::set<std::string> kept(keep.begin(), keep.end());
  bool any = false;
  for (const auto& [name, features] : request->features()) any |= kept.count(name) > 0;
  if (!any) return;
  auto* features = request->mutable_features();
  for (auto it = features->begin(); it != features->end();) {
    it = kept.count(it->first) > 0 ? std::next(it) : features->erase(it);
  }
}

}  // namespace

std::vector<int> ApportionCounts(const std::vector<double>& weights, int n) {
  std::vector<int> counts(weights.size(), 0);
  if (weights.empty()) return counts;
  const double total = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> remainders(weights.size());
  int assigned = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = total > 0 ? weights[i] / total * n : 0.0;
    counts[i] = static_cast<int>(std::floor(exact));
    remainders[i] = exact - counts[i];
    assigned += counts[i];
  }
  std::vector<size_t> order(weights.size());
  std::iota(order.begin(), order.end(), 0);
  // Largest remainder first; ties to the earlier entry, so results are stable.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainders[a] > remainders[b]; });
  for (size_t i = 0; assigned < n; i = (i + 1) % order.size(), ++assigned) ++counts[order[i]];
  return counts;
}

absl::StatusOr<Workload> BuildWorkload(const WorkloadOptions& options,
                                       const v1::ModelInfo& model_info) {
  if (options.samples < 0) {
    return absl::InvalidArgumentError(absl::StrCat("samples=", options.samples, " must be >= 0"));
  }
  if (options.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k=", options.top_k, " must be >= 0"));
  }
  if (options.priority < 0) {
    return absl::InvalidArgumentError(absl::StrCat("priority=", options.priority, " must be >= 0"));
  }
  absl::StatusOr<std::vector<v1::Example>> examples =
      options.data_path.empty() ? GenerateExamples(options, model_info) : ReadExamples(options);
  if (!examples.ok()) return examples.status();
  const int n = static_cast<int>(examples->size());

  // Mix draws get their own generator so they do not depend on sample shapes.
  std::mt19937_64 rng(options.seed ^ 0x6d6d667573656265ull);
  std::vector<double> modality_weights;
  for (const ModalityMixEntry& e : options.modality_mix) modality_weights.push_back(e.weight);
  std::vector<double> budget_weights;
  for (const BudgetMixEntry& e : options.budget_mix) budget_weights.push_back(e.weight);
  const std::vector<int> modality_of = AssignEntries(modality_weights, n, &rng);
  const std::vector<int> budget_of = AssignEntries(budget_weights, n, &rng);

  Workload workload;
  workload.requests.reserve(n);
  for (int i = 0; i < n; ++i) {
    v1::ClassifyRequest request = client::RequestFromExample((*examples)[i]);
    request.clear_request_id();
    request.set_model(options.model);
    request.set_top_k(static_cast<uint32_t>(options.top_k));
    request.set_priority(static_cast<uint32_t>(options.priority));
    if (!modality_of.empty()) {
      ApplyModalities(options.modality_mix[modality_of[i]].modalities, &request);
    }
    if (!budget_of.empty()) {
      request.mutable_budget()->set_level(options.budget_mix[budget_of[i]].level);
    }
    workload.requests.push_back(std::move(request));
  }
  return workload;
}

}  // namespace mmfuse::bench
