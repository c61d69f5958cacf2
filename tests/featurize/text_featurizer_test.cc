// The text featurizer: UTF-8 validation, normalisation, determinism and the
// test vectors of docs/FEATURES.md.
#include "client/featurize/text_featurizer.h"

#include <cmath>

#include "client/featurize/text_normalize.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/featurizer_config.h"

namespace mmfuse::featurize {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::TextFeaturizer Params(int dim = 8, uint64_t seed = 42) {
  v1::Featurizer f;
  f.mutable_text()->set_seed(seed);
  return model::ResolveFeaturizer(f, dim).text();
}

std::vector<float> Values(const v1::FeatureSequence& s) {
  return std::vector<float>(s.data().begin(), s.data().end());
}

TEST(TextFeaturizerTest, HashAndPrngMatchTheirReferenceValues) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("<se"), 0x6fd4e1182fe3dfe7ull);
  uint64_t state = 0;
  EXPECT_EQ(SplitMix64(&state), 0xe220a8397b1dcdafull);
  EXPECT_EQ(SplitMix64(&state), 0x6e789e6aa1b965f4ull);
}

TEST(TextFeaturizerTest, NGramsOfAMarkedToken) {
  TextFeaturizer text(Params(), 16);
  EXPECT_THAT(text.NGrams({'s', 'e', 'p', 't'}),
              ElementsAre("<se", "sep", "ept", "pt>", "<sep", "sept", "ept>", "<sept", "sept>"));
  // Shorter than ngram_min (3): the whole marked token.
  EXPECT_THAT(text.NGrams({'a'}), ElementsAre("<a>"));
  v1::TextFeaturizer five = Params();
  five.set_ngram_min(5);
  five.set_ngram_max(5);
  EXPECT_THAT(TextFeaturizer(five, 16).NGrams({'a', 'b'}), ElementsAre("<ab>"));
  // N-grams count code points, not bytes.
  EXPECT_THAT(text.NGrams({0xE9}), ElementsAre("<\xC3\xA9>"));
}

TEST(TextFeaturizerTest, DefaultsFollowTheSetFields) {
  v1::Featurizer f;
  f.mutable_text()->set_ngram_max(2);
  v1::TextFeaturizer t = model::ResolveFeaturizer(f, 6).text();
  EXPECT_EQ(t.ngram_min(), 2u);
  EXPECT_EQ(t.ngram_max(), 2u);
  EXPECT_EQ(t.dim(), 6u);
  EXPECT_EQ(t.num_buckets(), 1u << 20);
  f.mutable_text()->set_ngram_max(0);
  f.mutable_text()->set_ngram_min(7);
  t = model::ResolveFeaturizer(f, 6).text();
  EXPECT_EQ(t.ngram_min(), 7u);
  EXPECT_EQ(t.ngram_max(), 7u);
}

// docs/FEATURES.md, "Text", test vectors (dim 8, seed 42, other fields 0).
TEST(TextFeaturizerTest, DocsTestVectors) {
  TextFeaturizer text(Params(), 16);
  const std::vector<double> bucket = text.BucketVector(Fnv1a64("<se") % (1u << 20));
  EXPECT_EQ(Fnv1a64("<se") % (1u << 20), 253927u);
  EXPECT_DOUBLE_EQ(bucket[0], 0.53609342591285492);
  EXPECT_DOUBLE_EQ(bucket[1], 0.91352486653589948);
  absl::StatusOr<v1::FeatureSequence> sept = text.Featurize("sept");
  ASSERT_TRUE(sept.ok()) << sept.status();
  EXPECT_EQ(sept->frames(), 1u);
  const std::vector<float> want = {-0.305478156f, 0.340031385f, -0.36899516f, -0.677797914f,
                                   0.187502295f,  -0.292643309f, 0.101788603f, -0.253645808f};
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(sept->data(i), want[i], 1e-6) << i;
  absl::StatusOr<v1::FeatureSequence> creme = text.Featurize("Crème  BRÛLÉE");
  ASSERT_TRUE(creme.ok());
  ASSERT_EQ(creme->frames(), 2u);
  EXPECT_NEAR(creme->data(0), 0.0578967333f, 1e-6);
  EXPECT_NEAR(creme->data(8), -0.244903728f, 1e-6);
}

TEST(TextFeaturizerTest, RowsAreUnitLengthAndDeterministic) {
  TextFeaturizer text(Params(32, 7), 16);
  absl::StatusOr<v1::FeatureSequence> a = text.Featurize("un deux trois");
  absl::StatusOr<v1::FeatureSequence> b = TextFeaturizer(Params(32, 7), 16).Featurize("un deux trois");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->frames(), 3u);
  EXPECT_EQ(Values(*a), Values(*b));
  for (int t = 0; t < 3; ++t) {
    double norm = 0;
    for (int j = 0; j < 32; ++j) norm += a->data(t * 32 + j) * a->data(t * 32 + j);
    EXPECT_NEAR(norm, 1.0, 1e-5);
  }
  // Another seed, another projection.
  absl::StatusOr<v1::FeatureSequence> c = TextFeaturizer(Params(32, 8), 16).Featurize("un deux trois");
  EXPECT_NE(Values(*a), Values(*c));
}

TEST(TextFeaturizerTest, CaseCompositionAndWhitespaceAreNormalised) {
  TextFeaturizer text(Params(), 16);
  auto featurize = [&](const std::string& s) {
    absl::StatusOr<v1::FeatureSequence> f = text.Featurize(s);
    EXPECT_TRUE(f.ok()) << f.status();
    return f.ok() ? Values(*f) : std::vector<float>();
  };
  const std::vector<float> nfc = featurize("crème brûlée");
  EXPECT_EQ(featurize("CRÈME BRÛLÉE"), nfc);
  // Decomposed (NFD) input: e + U+0300, u + U+0302, e + U+0301.
  EXPECT_EQ(featurize("cre\xCC\x80me bru\xCC\x82le\xCC\x81" "e"), nfc);
  // Runs of Unicode whitespace (tab, NBSP, ideographic space) split once.
  EXPECT_EQ(featurize("  crème\t\xC2\xA0\xE3\x80\x80 brûlée \n"), nfc);
  // Greek and Cyrillic capitals fold too.
  EXPECT_EQ(featurize("ΣΟΦΙΑ Москва"), featurize("σοφια москва"));
  // Other scripts pass through as code points.
  EXPECT_EQ(featurize("日本語").size(), 8u);
}

TEST(TextFeaturizerTest, MaxFramesKeepsTheFirstTokens) {
  TextFeaturizer two(Params(), 2);
  absl::StatusOr<v1::FeatureSequence> s = two.Featurize("a b c d");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->frames(), 2u);
  absl::StatusOr<v1::FeatureSequence> ab = TextFeaturizer(Params(), 16).Featurize("a b");
  EXPECT_EQ(Values(*s), Values(*ab));
}

TEST(TextFeaturizerTest, InvalidUtf8AndEmptyTextAreClearErrors) {
  TextFeaturizer text(Params(), 16);
  struct Case {
    std::string text;
    std::string message;
  };
  for (const Case& c : {Case{"ab\xFF", "invalid lead byte at byte 2"},
                        Case{"\x80", "stray continuation byte at byte 0"},
                        Case{"x\xC3", "truncated sequence at byte 1"},
                        Case{"\xC3(", "missing continuation byte at byte 1"},
                        Case{"\xC0\xAF", "overlong encoding at byte 0"},
                        Case{"\xED\xA0\x80", "encoded surrogate at byte 0"},
                        Case{"\xF4\x90\x80\x80", "above U+10FFFF at byte 0"},
                        Case{"", "no tokens"}, Case{" \t\n", "no tokens"}}) {
    absl::StatusOr<v1::FeatureSequence> s = text.Featurize(c.text);
    ASSERT_FALSE(s.ok()) << c.message;
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace mmfuse::featurize
