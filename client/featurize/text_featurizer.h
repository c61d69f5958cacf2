// Text -> token vectors (docs/FEATURES.md, "Text"): each whitespace token,
// wrapped as "<" token ">", is cut into character n-grams (n in [ngram_min,
// ngram_max] code points); each n-gram's UTF-8 bytes are hashed with FNV-1a
// 64 into num_buckets buckets; a bucket's vector is dim uniform values in
// [-1, 1) from splitmix64 seeded with seed XOR bucket; a token's vector is the
// sum over its n-grams, scaled to unit L2 norm.
//
// Thread-safety: thread-safe (const after construction).
#ifndef MMFUSE_CLIENT_FEATURIZE_TEXT_FEATURIZER_H_
#define MMFUSE_CLIENT_FEATURIZE_TEXT_FEATURIZER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::featurize {

// FNV-1a 64 of `bytes`.
uint64_t Fnv1a64(absl::string_view bytes);
// splitmix64: advances `state` by 0x9E3779B97F4A7C15 and returns the mix.
uint64_t SplitMix64(uint64_t* state);

class TextFeaturizer {
 public:
  // `params` resolved and valid; at most `max_frames` tokens are kept.
  TextFeaturizer(const v1::TextFeaturizer& params, int max_frames);

  // [tokens, dim]; errors for invalid UTF-8 or text without tokens.
  absl::StatusOr<v1::FeatureSequence> Featurize(absl::string_view text) const;

  // The n-grams of one normalised token, in order (n ascending, then start).
  std::vector<std::string> NGrams(const std::vector<uint32_t>& token) const;
  // The bucket vector of `bucket` (dim values).
  std::vector<double> BucketVector(uint64_t bucket) const;

 private:
  v1::TextFeaturizer params_;
  int max_frames_;
};

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_TEXT_FEATURIZER_H_
