#include "model/flops.h"

namespace mmfuse::model {

int64_t TransformerLayerMacs(int64_t tokens, int64_t d_model, int64_t ff_dim) {
  return 4 * tokens * d_model * d_model + 2 * tokens * tokens * d_model +
         2 * tokens * d_model * ff_dim;
}

int64_t ForwardMacs(const v1::ModelConfig& config, const std::vector<int64_t>& frames) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  const int64_t ff = t.ff_dim();
  int64_t macs = 0;
  int64_t fused_tokens = 1;  // The fusion CLS token.
  for (int m = 0; m < config.modalities_size() && m < static_cast<int>(frames.size()); ++m) {
    const int64_t length = frames[m];
    if (length <= 0) continue;
    macs += length * config.modalities(m).feature_dim() * d;  // Input projection.
    macs += t.unimodal_layers() * TransformerLayerMacs(length, d, ff);
    fused_tokens += length;
  }
  macs += t.fusion_layers() * TransformerLayerMacs(fused_tokens, d, ff);
  macs += d * config.num_classes();  // Head.
  return macs;
}

std::vector<int64_t> ReferenceFrames(const v1::ModelConfig& config) {
  std::vector<int64_t> frames;
  for (const v1::ModalityConfig& m : config.modalities()) {
    frames.push_back(m.reference_frames() > 0 ? m.reference_frames() : m.max_frames());
  }
  return frames;
}

}  // namespace mmfuse::model
