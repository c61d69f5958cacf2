#include "client/featurize/text_normalize.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client/featurize/unicode_tables.h"

namespace mmfuse::featurize {
namespace {

absl::Status BadUtf8(size_t offset, const char* what) {
  return absl::InvalidArgumentError(
      absl::StrCat("text is not valid UTF-8: ", what, " at byte ", offset));
}

// The composition of `base` + `mark`, or 0.
uint32_t Compose(uint32_t base, uint32_t mark) {
  const Composition* end = kCompositions + kCompositionsSize;
  const Composition* it = std::lower_bound(
      kCompositions, end, std::make_pair(base, mark), [](const Composition& c, const auto& key) {
        return std::make_pair(c.base, c.mark) < key;
      });
  return it != end && it->base == base && it->mark == mark ? it->composed : 0;
}

}  // namespace

absl::StatusOr<std::vector<uint32_t>> DecodeUtf8(absl::string_view text) {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const uint8_t lead = static_cast<uint8_t>(text[i]);
    int length;
    uint32_t cp;
    uint32_t min;
    if (lead < 0x80) {
      out.push_back(lead);
      ++i;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, cp = lead & 0x1F, min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, cp = lead & 0x0F, min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, cp = lead & 0x07, min = 0x10000;
    } else {
      return BadUtf8(i, (lead & 0xC0) == 0x80 ? "stray continuation byte" : "invalid lead byte");
    }
    if (i + length > text.size()) return BadUtf8(i, "truncated sequence");
    for (int k = 1; k < length; ++k) {
      const uint8_t next = static_cast<uint8_t>(text[i + k]);
      if ((next & 0xC0) != 0x80) return BadUtf8(i + k, "missing continuation byte");
      cp = (cp << 6) | (next & 0x3F);
    }
    if (cp < min) return BadUtf8(i, "overlong encoding");
    if (cp >= 0xD800 && cp <= 0xDFFF) return BadUtf8(i, "encoded surrogate");
    if (cp > 0x10FFFF) return BadUtf8(i, "code point above U+10FFFF");
    out.push_back(cp);
    i += length;
  }
  return out;
}

std::string EncodeUtf8(const std::vector<uint32_t>& code_points) {
  std::string out;
  for (uint32_t cp : code_points) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return out;
}

bool IsWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

uint32_t ToLower(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + ('a' - 'A');
  const CodePointPair* end = kLowercase + kLowercaseSize;
  const CodePointPair* it = std::lower_bound(
      kLowercase, end, cp, [](const CodePointPair& p, uint32_t key) { return p.from < key; });
  return it != end && it->from == cp ? it->to : cp;
}

absl::StatusOr<std::vector<std::vector<uint32_t>>> NormalizeAndSplit(absl::string_view text) {
  absl::StatusOr<std::vector<uint32_t>> decoded = DecodeUtf8(text);
  if (!decoded.ok()) return decoded.status();
  // Compose before lower-casing: the tables hold both cases of each letter.
  std::vector<uint32_t> composed;
  composed.reserve(decoded->size());
  for (uint32_t cp : *decoded) {
    if (!composed.empty()) {
      const uint32_t merged = Compose(composed.back(), cp);
      if (merged != 0) {
        composed.back() = merged;
        continue;
      }
    }
    composed.push_back(cp);
  }
  std::vector<std::vector<uint32_t>> tokens;
  std::vector<uint32_t> token;
  for (uint32_t cp : composed) {
    if (IsWhitespace(cp)) {
      if (!token.empty()) tokens.push_back(std::move(token));
      token.clear();
    } else {
      token.push_back(ToLower(cp));
    }
  }
  if (!token.empty()) tokens.push_back(std::move(token));
  return tokens;
}

}  // namespace mmfuse::featurize
