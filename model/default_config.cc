#include "model/default_config.h"

namespace mmfuse::model {
namespace {

void AddModality(v1::ModelConfig* config, const char* name, int dim, int max_frames,
                 int reference_frames) {
  v1::ModalityConfig* m = config->add_modalities();
  m->set_name(name);
  m->set_feature_dim(dim);
  m->set_max_frames(max_frames);
  m->set_reference_frames(reference_frames);
}

}  // namespace

v1::ModelConfig DefaultModelConfig() {
  v1::ModelConfig config;
  config.set_name("default");
  config.set_version("1");
  // Reference lengths are the benchmark's (audio 100, video 64, text 48).
  AddModality(&config, "audio", 40, 512, 100);
  AddModality(&config, "video", 64, 256, 64);
  AddModality(&config, "text", 32, 256, 48);
  config.set_num_classes(10);
  config.set_fusion_mode(v1::FUSION_MODE_CONCAT);
  v1::TransformerConfig* t = config.mutable_transformer();
  t->set_d_model(64);
  t->set_num_heads(4);
  t->set_ff_dim(128);
  t->set_unimodal_layers(1);
  t->set_fusion_layers(2);
  t->set_dropout(0.0f);
  v1::BatchingConfig* b = config.mutable_batching();
  // The untuned starting point: scripts/make_default_model.sh replaces it
  // with what `mmfuse tune` measures best on the machine that makes the
  // package (docs/BENCHMARKS.md, section 4c); packages made with
  // MMFUSE_TUNE=0 (the image's) keep it. No delay, so a request never waits
  // for company (batches form from what queued while the workers were
  // busy), and batches of requests that carry the same modalities with
  // lengths within a factor 2 of each other (bench/served_batching_ab.sh,
  // section 4b: 1.05-1.11x batch 1 served before the class-token shortcut
  // made batch 1 faster; the old max batch 16 with a 1000 us delay and one
  // mixed queue measured 0.42-0.87x).
  b->set_max_batch_size(16);
  b->set_max_queue_delay_us(0);
  b->set_max_queue_size(1024);
  b->set_length_bucket_ratio(2);
  return config;
}

}  // namespace mmfuse::model
