// Parsers of mmfuse-bench's textual specs: weighted mixes
// ("text=0.3,all=0.7"), sweep lists ("1,2,4"), server lists and enum names.
// Every error is INVALID_ARGUMENT naming the flag, the offending entry and
// what was expected.
//
// Thread-safety: pure functions.
#ifndef MMFUSE_CLIENT_BENCH_SPEC_PARSER_H_
#define MMFUSE_CLIENT_BENCH_SPEC_PARSER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/bench/step_result.h"
#include "mmfuse/v1/classifier.pb.h"

namespace mmfuse::bench {

// One entry of a weighted mix; weights of a parsed mix sum to 1.
struct WeightedKey {
  std::string key;
  double weight = 0;
};

// Parses "key=weight,key=weight,...": keys non-empty and distinct, weights
// finite and > 0 (normalized to sum 1), spaces around tokens ignored.
// `flag` (e.g. "--mix") only names the spec in errors.
absl::StatusOr<std::vector<WeightedKey>> ParseWeightedSpec(absl::string_view flag,
                                                           absl::string_view spec);

// One entry of --mix: the modalities a request keeps.
struct ModalityMixEntry {
  std::string key;                      // As written, e.g. "audio+text".
  std::vector<std::string> modalities;  // Empty = all (the key "all").
  double weight = 0;
};

// Parses --mix: keys are "all" or modality names joined with '+', each one of
// `known` (the model's modalities), none repeated within a key.
absl::StatusOr<std::vector<ModalityMixEntry>> ParseModalityMix(
    absl::string_view spec, const std::vector<std::string>& known);

struct BudgetMixEntry {
  v1::BudgetLevel level = v1::BUDGET_LEVEL_UNSPECIFIED;
  double weight = 0;
};

// Parses --budget_mix: keys accurate, balanced, fast (case-insensitive).
absl::StatusOr<std::vector<BudgetMixEntry>> ParseBudgetMix(absl::string_view spec);

// Parses a comma-separated list of integers, each >= `min_value`, e.g.
// --concurrency "1,2,4".
absl::StatusOr<std::vector<int>> ParseIntList(absl::string_view flag, absl::string_view spec,
                                              int min_value);

// Parses a comma-separated list of finite numbers > 0, e.g. --rate "100,200".
absl::StatusOr<std::vector<double>> ParsePositiveList(absl::string_view flag,
                                                      absl::string_view spec);

// Parses --server "host:port,host:port": each entry non-empty and ending in
// ":<port>" with port in [1, 65535] (a bracketed IPv6 host is fine).
absl::StatusOr<std::vector<std::string>> ParseServerList(absl::string_view spec);

absl::StatusOr<Arrival> ParseArrival(absl::string_view name);  // constant|poisson
absl::StatusOr<RpcKind> ParseRpcKind(absl::string_view name);  // unary|stream

}  // namespace mmfuse::bench

#endif  // MMFUSE_CLIENT_BENCH_SPEC_PARSER_H_
