#include "client/bench/spec_parser.h"

#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace mmfuse::bench {
namespace {

absl::Status Invalid(absl::string_view flag, absl::string_view spec, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, "=\"", spec, "\": ", what));
}

// Comma-separated, trimmed tokens; an error for an empty spec or token.
absl::StatusOr<std::vector<std::string>> SplitList(absl::string_view flag, absl::string_view spec) {
  if (absl::StripAsciiWhitespace(spec).empty()) return Invalid(flag, spec, "is empty");
  std::vector<std::string> tokens;
  for (absl::string_view token : absl::StrSplit(spec, ',')) {
    token = absl::StripAsciiWhitespace(token);
    if (token.empty()) return Invalid(flag, spec, "has an empty entry");
    tokens.emplace_back(token);
  }
  return tokens;
}

}  // namespace

absl::StatusOr<std::vector<WeightedKey>> ParseWeightedSpec(absl::string_view flag,
                                                           absl::string_view spec) {
  absl::StatusOr<std::vector<std::string>> tokens = SplitList(flag, spec);
  if (!tokens.ok()) return tokens.status();
  std::vector<WeightedKey> entries;
  std::set<std::string> seen;
  double total = 0;
  for (const std::string& token : *tokens) {
    const std::vector<absl::string_view> parts = absl::StrSplit(token, absl::MaxSplits('=', 1));
    if (parts.size() != 2) {
      return Invalid(flag, spec, absl::StrCat("entry \"", token, "\" is not key=weight"));
    }
    const std::string key(absl::StripAsciiWhitespace(parts[0]));
    const absl::string_view weight_text = absl::StripAsciiWhitespace(parts[1]);
    if (key.empty()) {
      return Invalid(flag, spec, absl::StrCat("entry \"", token, "\" has an empty key"));
    }
    double weight = 0;
    if (!absl::SimpleAtod(weight_text, &weight) || !std::isfinite(weight)) {
      return Invalid(flag, spec,
                     absl::StrCat("weight \"", weight_text, "\" of \"", key, "\" is not a number"));
    }
    if (weight <= 0) {
      return Invalid(flag, spec, absl::StrCat("weight ", weight, " of \"", key, "\" must be > 0"));
    }
    if (!seen.insert(key).second) {
      return Invalid(flag, spec, absl::StrCat("key \"", key, "\" appears more than once"));
    }
    total += weight;
    entries.push_back({key, weight});
  }
  for (WeightedKey& entry : entries) entry.weight /= total;
  return entries;
}

absl::StatusOr<std::vector<ModalityMixEntry>> ParseModalityMix(
    absl::string_view spec, const std::vector<std::string>& known) {
  constexpr absl::string_view kFlag = "--mix";
  absl::StatusOr<std::vector<WeightedKey>> weighted = ParseWeightedSpec(kFlag, spec);
  if (!weighted.ok()) return weighted.status();
  const std::set<std::string> known_set(known.begin(), known.end());
  std::vector<ModalityMixEntry> entries;
  for (const WeightedKey& w : *weighted) {
    ModalityMixEntry entry;
    entry.key = w.key;
    entry.weight = w.weight;
    if (w.key != "all") {
      std::set<std::string> in_key;
      for (absl::string_view name : absl::StrSplit(w.key, '+')) {
        name = absl::StripAsciiWhitespace(name);
        if (name.empty()) {
          return Invalid(kFlag, spec,
                         absl::StrCat("key \"", w.key, "\" has an empty modality name"));
        }
        if (known_set.count(std::string(name)) == 0) {
          return Invalid(kFlag, spec,
                         absl::StrCat("modality \"", name, "\" in key \"", w.key,
                                      "\" is not one of the model's modalities (",
                                      absl::StrJoin(known, ", "), ") or \"all\""));
        }
        if (!in_key.insert(std::string(name)).second) {
          return Invalid(kFlag, spec,
                         absl::StrCat("modality \"", name, "\" repeats in key \"", w.key, "\""));
        }
        entry.modalities.emplace_back(name);
      }
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<BudgetMixEntry>> ParseBudgetMix(absl::string_view spec) {
  constexpr absl::string_view kFlag = "--budget_mix";
  absl::StatusOr<std::vector<WeightedKey>> weighted = ParseWeightedSpec(kFlag, spec);
  if (!weighted.ok()) return weighted.status();
  std::vector<BudgetMixEntry> entries;
  std::set<v1::BudgetLevel> seen;
  for (const WeightedKey& w : *weighted) {
    const std::string name = absl::AsciiStrToLower(w.key);
    BudgetMixEntry entry;
    entry.weight = w.weight;
    if (name == "accurate") {
      entry.level = v1::BUDGET_LEVEL_ACCURATE;
    } else if (name == "balanced") {
      entry.level = v1::BUDGET_LEVEL_BALANCED;
    } else if (name == "fast") {
      entry.level = v1::BUDGET_LEVEL_FAST;
    } else {
      return Invalid(kFlag, spec,
                     absl::StrCat("budget \"", w.key, "\" is not one of accurate, balanced, fast"));
    }
    if (!seen.insert(entry.level).second) {
      return Invalid(kFlag, spec, absl::StrCat("budget \"", name, "\" appears more than once"));
    }
    entries.push_back(entry);
  }
  return entries;
}

absl::StatusOr<std::vector<int>> ParseIntList(absl::string_view flag, absl::string_view spec,
                                              int min_value) {
  absl::StatusOr<std::vector<std::string>> tokens = SplitList(flag, spec);
  if (!tokens.ok()) return tokens.status();
  std::vector<int> values;
  for (const std::string& token : *tokens) {
    int value = 0;
    if (!absl::SimpleAtoi(token, &value)) {
      return Invalid(flag, spec, absl::StrCat("\"", token, "\" is not an integer"));
    }
    if (value < min_value) {
      return Invalid(flag, spec, absl::StrCat(value, " is below the minimum ", min_value));
    }
    values.push_back(value);
  }
  return values;
}

absl::StatusOr<std::vector<double>> ParsePositiveList(absl::string_view flag,
                                                      absl::string_view spec) {
  absl::StatusOr<std::vector<std::string>> tokens = SplitList(flag, spec);
  if (!tokens.ok()) return tokens.status();
  std::vector<double> values;
  for (const std::string& token : *tokens) {
    double value = 0;
    if (!absl::SimpleAtod(token, &value) || !std::isfinite(value)) {
      return Invalid(flag, spec, absl::StrCat("\"", token, "\" is not a number"));
    }
    if (value <= 0) return Invalid(flag, spec, absl::StrCat(value, " must be > 0"));
    values.push_back(value);
  }
  return values;
}

absl::StatusOr<std::vector<std::string>> ParseServerList(absl::string_view spec) {
  constexpr absl::string_view kFlag = "--server";
  absl::StatusOr<std::vector<std::string>> tokens = SplitList(kFlag, spec);
  if (!tokens.ok()) return tokens.status();
  for (const std::string& token : *tokens) {
    const size_t colon = token.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(absl::string_view(token).substr(colon + 1), &port) || port < 1 ||
        port > 65535) {
      return Invalid(kFlag, spec,
                     absl::StrCat("\"", token, "\" is not host:port with port in [1, 65535]"));
    }
  }
  return tokens;
}

absl::StatusOr<Arrival> ParseArrival(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "constant") return Arrival::kConstant;
  if (lower == "poisson") return Arrival::kPoisson;
  return absl::InvalidArgumentError(
      absl::StrCat("--arrival=\"", name, "\" is not one of constant, poisson"));
}

absl::StatusOr<RpcKind> ParseRpcKind(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "unary") return RpcKind::kUnary;
  if (lower == "stream") return RpcKind::kStream;
  return absl::InvalidArgumentError(
      absl::StrCat("--rpc=\"", name, "\" is not one of unary, stream"));
}

}  // namespace mmfuse::bench
