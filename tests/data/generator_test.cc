#include "data/generator.h"

#include <set>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace mmfuse::data {
namespace {

using google::protobuf::util::MessageDifferencer;

TEST(GeneratorTest, SameSeedAndStreamGiveTheSameData) {
  Generator a(GeneratorOptions{}, 0);
  Generator b(GeneratorOptions{}, 0);
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(a.Next(), b.Next())) << "sample " << i;
  }
}

TEST(GeneratorTest, StreamsDoNotShareSamples) {
  Generator train(GeneratorOptions{}, 0);
  Generator test(GeneratorOptions{}, 1);
  for (int i = 0; i < 20; ++i) {
    v1::Example a = train.Next();
    v1::Example b = test.Next();
    a.clear_id();
    b.clear_id();
    EXPECT_FALSE(MessageDifferencer::Equals(a, b)) << "sample " << i;
  }
}

TEST(GeneratorTest, SamplesMatchTheirModalitySpecs) {
  GeneratorOptions options;
  options.missing_rate = 0.5;
  Generator generator(options, 3);
  std::set<uint32_t> labels;
  for (int i = 0; i < 200; ++i) {
    const v1::Example e = generator.Next();
    labels.insert(e.label());
    ASSERT_LT(e.label(), static_cast<uint32_t>(kGeneratedClasses));
    EXPECT_EQ(e.label_name(), GeneratedLabels()[e.label()]);
    ASSERT_GE(e.features_size(), 1) << "every sample keeps at least one modality";
    for (const GeneratedModality& m : options.modalities) {
      auto it = e.features().find(m.name);
      if (it == e.features().end()) continue;
      EXPECT_EQ(it->second.dim(), static_cast<uint32_t>(m.feature_dim));
      EXPECT_GE(it->second.frames(), static_cast<uint32_t>(m.min_frames));
      EXPECT_LE(it->second.frames(), static_cast<uint32_t>(m.max_frames));
      EXPECT_EQ(it->second.data_size(), it->second.frames() * it->second.dim());
    }
  }
  EXPECT_EQ(labels.size(), static_cast<size_t>(kGeneratedClasses));
}

TEST(GeneratorTest, NextOfClassHonoursTheClass) {
  Generator generator(GeneratorOptions{}, 0);
  for (int label = 0; label < kGeneratedClasses; ++label) {
    EXPECT_EQ(generator.NextOfClass(label).label(), static_cast<uint32_t>(label));
  }
}

}  // namespace
}  // namespace mmfuse::data
