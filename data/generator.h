// Seeded generator of multimodal classification data where fusion matters.
//
// Ten classes ("zero" ... "nine"). Each modality sees only a partial view of
// the class, as a symbol repeated in some of its frames:
//   audio: class mod 5     video: class mod 2     text: class / 2
// No single modality determines the class (audio and text leave 2 candidates,
// video 5), any two of them do. A frame is Gaussian noise, plus in "event"
// frames the symbol's prototype vector, plus rarer distractor events of other
// symbols, so a model must integrate evidence over time and across modalities.
//
// Thread-safety: thread-compatible.
#ifndef MMFUSE_DATA_GENERATOR_H_
#define MMFUSE_DATA_GENERATOR_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "mmfuse/v1/dataset.pb.h"

namespace mmfuse::data {

struct GeneratedModality {
  std::string name;
  int feature_dim = 0;
  int min_frames = 1;
  int max_frames = 1;
};

struct GeneratorOptions {
  // Seeds everything: the prototypes and the samples. Same seed, same data.
  uint64_t seed = 1;
  // Norm of each symbol prototype relative to sqrt(feature_dim) noise: higher
  // is easier. > 0. Default 0.35.
  double signal = 0.35;
  // Fraction of frames carrying the sample's symbol. In (0, 1]. Default 0.3.
  double event_rate = 0.3;
  // Fraction of frames carrying another symbol. In [0, 1). Default 0.1.
  double distractor_rate = 0.1;
  // Probability that a modality is absent from a sample (at least one always
  // stays). In [0, 1). Default 0.
  double missing_rate = 0.0;
  // Fraction of "easy" samples whose text frames carry the whole class (a
  // symbol of its own per class) instead of the partial view: text alone
  // solves them, the rest need fusion. In [0, 1]. Default 0.
  double easy_fraction = 0.0;
  // Modalities, in model order. Names must be audio, video, text.
  std::vector<GeneratedModality> modalities = DefaultModalities();

  static std::vector<GeneratedModality> DefaultModalities();
};

inline constexpr int kGeneratedClasses = 10;

// Class names, by index.
const std::vector<std::string>& GeneratedLabels();

class Generator {
 public:
  // `options.seed` fixes the prototypes. Sample streams are separated by
  // `stream` (e.g. 0 = train, 1 = test), so train and test never share samples.
  Generator(const GeneratorOptions& options, uint64_t stream);

  // The next sample; its id is "<stream>-<index>".
  v1::Example Next();
  // A sample of a given class.
  v1::Example NextOfClass(int label);

 private:
  // Symbol of `label` as seen by `modality`, and alphabet size. Text's
  // alphabet holds 5 partial symbols, then one whole-class symbol per class
  // for easy samples.
  static int Symbol(const std::string& modality, int label, bool easy);
  static int AlphabetSize(const std::string& modality);

  GeneratorOptions options_;
  uint64_t stream_;
  int64_t index_ = 0;
  std::mt19937_64 rng_;
  // prototypes_[m][symbol] = feature_dim values.
  std::vector<std::vector<std::vector<float>>> prototypes_;
};

}  // namespace mmfuse::data

#endif  // MMFUSE_DATA_GENERATOR_H_
