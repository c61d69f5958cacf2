#include "client/featurize/text_featurizer.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "client/featurize/text_normalize.h"

namespace mmfuse::featurize {

uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : bytes) {
    hash ^= static_cast<uint8_t>(c);
    hash *= 0x100000001b3ull;
  }
  return hash;
}

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

TextFeaturizer::TextFeaturizer(const v1::TextFeaturizer& params, int max_frames)
    : params_(params), max_frames_(max_frames) {}

std::vector<std::string> TextFeaturizer::NGrams(const std::vector<uint32_t>& token) const {
  std::vector<uint32_t> marked;
  marked.reserve(token.size() + 2);
  marked.push_back('<');
  marked.insert(marked.end(), token.begin(), token.end());
  marked.push_back('>');
  const size_t length = marked.size();
  std::vector<std::string> grams;
  if (length < params_.ngram_min()) {
    grams.push_back(EncodeUtf8(marked));
    return grams;
  }
  for (size_t n = params_.ngram_min(); n <= params_.ngram_max() && n <= length; ++n) {
    for (size_t start = 0; start + n <= length; ++start) {
      grams.push_back(EncodeUtf8(
          std::vector<uint32_t>(marked.begin() + start, marked.begin() + start + n)));
    }
  }
  return grams;
}

std::vector<double> TextFeaturizer::BucketVector(uint64_t bucket) const {
  std::vector<double> v(params_.dim());
  uint64_t state = params_.seed() ^ bucket;
  for (double& x : v) {
    const uint64_t bits = SplitMix64(&state) >> 11;  // 53 random bits.
    x = 2.0 * (static_cast<double>(bits) * 0x1.0p-53) - 1.0;
  }
  return v;
}

absl::StatusOr<v1::FeatureSequence> TextFeaturizer::Featurize(absl::string_view text) const {
  absl::StatusOr<std::vector<std::vector<uint32_t>>> tokens = NormalizeAndSplit(text);
  if (!tokens.ok()) return tokens.status();
  if (tokens->empty()) {
    return absl::InvalidArgumentError("text has no tokens (empty or only whitespace)");
  }
  const int kept = std::min<int>(static_cast<int>(tokens->size()), max_frames_);
  const int dim = static_cast<int>(params_.dim());
  v1::FeatureSequence sequence;
  sequence.set_frames(kept);
  sequence.set_dim(dim);
  sequence.mutable_data()->Reserve(kept * dim);
  std::vector<double> sum(dim);
  for (int t = 0; t < kept; ++t) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (const std::string& gram : NGrams((*tokens)[t])) {
      const std::vector<double> v = BucketVector(Fnv1a64(gram) % params_.num_buckets());
      for (int j = 0; j < dim; ++j) sum[j] += v[j];
    }
    double norm = 0;
    for (double x : sum) norm += x * x;
    norm = std::sqrt(norm);
    for (double x : sum) sequence.add_data(static_cast<float>(norm > 0 ? x / norm : 0.0));
  }
  return sequence;
}

}  // namespace mmfuse::featurize
