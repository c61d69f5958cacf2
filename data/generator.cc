#include "data/generator.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace mmfuse::data {
namespace {
constexpr float kEasySignalGain = 2.5f;
}  // namespace

std::vector<GeneratedModality> GeneratorOptions::DefaultModalities() {
  return {{"audio", 40, 16, 64}, {"video", 64, 8, 32}, {"text", 32, 4, 24}};
}

const std::vector<std::string>& GeneratedLabels() {
  static const std::vector<std::string>* const labels = new std::vector<std::string>{
      "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  return *labels;
}

int Generator::Symbol(const std::string& modality, int label, bool easy) {
  if (modality == "audio") return label % 5;
  if (modality == "video") return label % 2;
  return easy ? 5 + label : label / 2;  // text
}

int Generator::AlphabetSize(const std::string& modality) {
  if (modality == "video") return 2;
  return modality == "text" ? 5 + kGeneratedClasses : 5;
}

Generator::Generator(const GeneratorOptions& options, uint64_t stream)
    : options_(options), stream_(stream) {
  for (const GeneratedModality& m : options_.modalities) {
    MMFUSE_CHECK(m.name == "audio" || m.name == "video" || m.name == "text",
                 absl::StrCat("generator modality must be audio, video or text, got ", m.name));
  }
  // Prototypes come from the seed alone, so every stream shares them.
  std::mt19937_64 proto_rng(options_.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const GeneratedModality& m : options_.modalities) {
    std::vector<std::vector<float>> symbols(AlphabetSize(m.name));
    for (auto& proto : symbols) {
      proto.resize(m.feature_dim);
      double norm = 0;
      for (float& v : proto) {
        v = normal(proto_rng);
        norm += v * v;
      }
      // Scale to |proto| = signal * sqrt(dim): a fixed per-frame SNR whatever
      // the width.
      const double scale = options_.signal * std::sqrt(m.feature_dim) / std::sqrt(norm);
      for (float& v : proto) v = static_cast<float>(v * scale);
    }
    // Whole-class text symbols (easy samples) are louder: text alone must
    // solve an easy sample.
    for (size_t s = 5; s < symbols.size(); ++s) {
      for (float& v : symbols[s]) v *= kEasySignalGain;
    }
    prototypes_.push_back(std::move(symbols));
  }
  rng_.seed(options_.seed * 0x9E3779B97F4A7C15ull + stream + 1);
}

v1::Example Generator::Next() {
  std::uniform_int_distribution<int> label(0, kGeneratedClasses - 1);
  return NextOfClass(label(rng_));
}

v1::Example Generator::NextOfClass(int label) {
  v1::Example example;
  example.set_id(absl::StrCat(stream_, "-", index_++));
  example.set_label(label);
  example.set_label_name(GeneratedLabels()[label]);

  const int num_modalities = static_cast<int>(options_.modalities.size());
  std::vector<bool> present(num_modalities, true);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int kept = num_modalities;
  for (int m = 0; m < num_modalities; ++m) {
    if (unit(rng_) < options_.missing_rate && kept > 1) {
      present[m] = false;
      --kept;
    }
  }

  // Drawn only when asked for, so data without easy samples stays the same.
  const bool easy = options_.easy_fraction > 0 && unit(rng_) < options_.easy_fraction;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int m = 0; m < num_modalities; ++m) {
    if (!present[m]) continue;
    const GeneratedModality& spec = options_.modalities[m];
    const int symbol = Symbol(spec.name, label, easy);
    // Distractors come from the partial symbols only.
    const int alphabet = spec.name == "text" ? 5 : AlphabetSize(spec.name);
    const int frames =
        std::uniform_int_distribution<int>(spec.min_frames, spec.max_frames)(rng_);
    v1::FeatureSequence& seq = (*example.mutable_features())[spec.name];
    seq.set_frames(frames);
    seq.set_dim(spec.feature_dim);
    seq.mutable_data()->Reserve(frames * spec.feature_dim);
    // At least one event, so every present modality carries its evidence.
    const int forced_event = std::uniform_int_distribution<int>(0, frames - 1)(rng_);
    for (int f = 0; f < frames; ++f) {
      const float* proto = nullptr;
      const double draw = unit(rng_);
      if (f == forced_event || draw < options_.event_rate) {
        proto = prototypes_[m][symbol].data();
      } else if (draw < options_.event_rate + options_.distractor_rate) {
        const int base = symbol % alphabet;
        const int other = (base + 1 +
                           std::uniform_int_distribution<int>(0, alphabet - 2)(rng_)) %
                          alphabet;
        proto = prototypes_[m][other].data();
      }
      for (int d = 0; d < spec.feature_dim; ++d) {
        seq.add_data(normal(rng_) + (proto != nullptr ? proto[d] : 0.0f));
      }
    }
  }
  return example;
}

}  // namespace mmfuse::data
