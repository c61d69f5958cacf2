// A deliberately small architecture and matching generated data, so model,
// training and server tests run in seconds.
#ifndef MMFUSE_TESTS_TESTING_SMALL_MODEL_H_
#define MMFUSE_TESTS_TESTING_SMALL_MODEL_H_

#include <cstdint>
#include <vector>

#include "data/generator.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::testing {

inline v1::ModelConfig SmallModelConfig() {
  v1::ModelConfig config;
  config.set_name("small");
  config.set_version("test");
  struct Spec {
    const char* name;
    int dim;
    int max_frames;
  };
  for (const Spec& s : {Spec{"audio", 6, 24}, Spec{"video", 5, 16}, Spec{"text", 4, 12}}) {
    v1::ModalityConfig* m = config.add_modalities();
    m->set_name(s.name);
    m->set_feature_dim(s.dim);
    m->set_max_frames(s.max_frames);
  }
  config.set_num_classes(10);
  config.set_fusion_mode(v1::FUSION_MODE_CONCAT);
  v1::TransformerConfig* t = config.mutable_transformer();
  t->set_d_model(16);
  t->set_num_heads(2);
  t->set_ff_dim(32);
  t->set_unimodal_layers(1);
  t->set_fusion_layers(1);
  return config;
}

// Generated data shaped for SmallModelConfig (lengths within its limits).
inline data::GeneratorOptions SmallGeneratorOptions() {
  data::GeneratorOptions options;
  options.modalities = {{"audio", 6, 4, 20}, {"video", 5, 2, 12}, {"text", 4, 2, 10}};
  options.signal = 0.8;  // Small dims need a stronger per-frame signal.
  return options;
}

// `n` examples of generated stream `stream` for SmallModelConfig.
inline std::vector<v1::Example> SmallExamples(int n, uint64_t stream) {
  data::Generator generator(SmallGeneratorOptions(), stream);
  std::vector<v1::Example> examples;
  for (int i = 0; i < n; ++i) examples.push_back(generator.Next());
  return examples;
}

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_TESTING_SMALL_MODEL_H_
