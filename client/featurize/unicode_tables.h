// Unicode tables of the text featurizer's normalisation (docs/FEATURES.md,
// "Text"): case folding and canonical composition of common Latin, Greek and
// Cyrillic letters. unicode_tables.cc is generated from the Unicode Character
// Database; the tables are part of the featurizer's definition.
#ifndef MMFUSE_CLIENT_FEATURIZE_UNICODE_TABLES_H_
#define MMFUSE_CLIENT_FEATURIZE_UNICODE_TABLES_H_

#include <cstdint>

namespace mmfuse::featurize {

struct CodePointPair {
  uint32_t from;
  uint32_t to;
};

struct Composition {
  uint32_t base;
  uint32_t mark;
  uint32_t composed;
};

extern const CodePointPair kLowercase[];
extern const int kLowercaseSize;
extern const Composition kCompositions[];
extern const int kCompositionsSize;

}  // namespace mmfuse::featurize

#endif  // MMFUSE_CLIENT_FEATURIZE_UNICODE_TABLES_H_
