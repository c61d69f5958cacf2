// UTF-8 validation and the text featurizer's normalisation
// (docs/FEATURES.md, "Text"): strict UTF-8 decoding, canonical composition of
// common Latin letters with a following combining mark, lower case (ASCII,
// Latin-1, Latin Extended-A/B, Greek, Cyrillic), whitespace split.
#ifndef MMFUSE_CLIENT_FEATURIZE_TEXT_NORMALIZE_H_
#define MMFUSE_CLIENT_FEATURIZE_TEXT_NORMALIZE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mmfuse::featurize {

// Code points of `text`; INVALID_ARGUMENT naming the byte offset for
// anything that is not well-formed UTF-8 (overlong forms, surrogates, values
// above U+10FFFF, truncated sequences, stray continuation bytes).
absl::StatusOr<std::vector<uint32_t>> DecodeUtf8(absl::string_view text);

// UTF-8 encoding of `code_points` (all valid scalar values).
std::string EncodeUtf8(const std::vector<uint32_t>& code_points);

// True for the whitespace code points the featurizer splits on.
bool IsWhitespace(uint32_t cp);

// Lower case of `cp` per the tables (unchanged if none).
uint32_t ToLower(uint32_t cp);

// Decoded, composed, lower-cased `text` split at runs of whitespace; empty
// tokens are dropped.
absl::StatusOr<std::vector<std::vector<uint32_t>>> NormalizeAndSplit(absl::string_view text);

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_TEXT_NORMALIZE_H_
