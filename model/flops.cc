#include "model/flops.h"

#include "model/locomt_views.h"
#include "model/model_config.h"

namespace mmfuse::model {
namespace {

// Attention sub-layer alone (projections, scores, weighted values), as in
// SFT's pooling block.
int64_t AttentionMacs(int64_t tokens, int64_t d) {
  return 4 * tokens * d * d + 2 * tokens * tokens * d;
}

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t SftKernel(const v1::ModelConfig& config, int m) {
  auto it = config.sft().kernel().find(config.modalities(m).name());
  if (it != config.sft().kernel().end()) return it->second;
  return config.sft().default_kernel() > 0 ? config.sft().default_kernel() : 4;
}

}  // namespace

int64_t TransformerLayerMacs(int64_t tokens, int64_t d_model, int64_t ff_dim) {
  return AttentionMacs(tokens, d_model) + 2 * tokens * d_model * ff_dim;
}

int64_t ClassTokenLayersMacs(int64_t layers, int64_t tokens, int64_t d_model, int64_t ff_dim) {
  if (layers <= 0) return 0;
  const int64_t d = d_model;
  const int64_t last = tokens * 2 * d * d + 2 * d * d + 2 * tokens * d + 2 * d * ff_dim;
  return (layers - 1) * TransformerLayerMacs(tokens, d, ff_dim) + last;
}

int64_t ForwardMacs(const v1::ModelConfig& config, const std::vector<int64_t>& frames) {
  const v1::TransformerConfig& t = config.transformer();
  const int64_t d = t.d_model();
  const int64_t ff = t.ff_dim();
  const int64_t classes = config.num_classes();
  const int64_t fusion_layers = t.fusion_layers();
  const int modalities = config.modalities_size();

  // Tokens per present modality: its CLS and its frames (0 = absent).
  std::vector<int64_t> n(modalities, 0);
  int64_t macs = 0;
  int present = 0;
  int64_t all_tokens = 0;
  for (int m = 0; m < modalities && m < static_cast<int>(frames.size()); ++m) {
    if (frames[m] <= 0) continue;
    n[m] = 1 + frames[m];
    ++present;
    all_tokens += n[m];
    macs += frames[m] * config.modalities(m).feature_dim() * d;  // Projection.
    macs += t.unimodal_layers() * TransformerLayerMacs(n[m], d, ff);
  }

  switch (config.fusion_mode()) {
    case v1::FUSION_MODE_LATE:
      for (int m = 0; m < modalities; ++m) {
        if (n[m] > 0) macs += ClassTokenLayersMacs(fusion_layers, n[m], d, ff) + d * classes;
      }
      return macs;
    case v1::FUSION_MODE_MBT: {
      const int64_t z = config.mbt().num_bottlenecks() > 0 ? config.mbt().num_bottlenecks() : 4;
      for (int m = 0; m < modalities; ++m) {
        // Its layers on [tokens || z], then the shared head on its class token.
        if (n[m] > 0) macs += fusion_layers * TransformerLayerMacs(n[m] + z, d, ff) + d * classes;
      }
      return macs;
    }
    case v1::FUSION_MODE_SFT: {
      int64_t fused = 1;  // The fused CLS.
      for (int m = 0; m < modalities; ++m) {
        if (n[m] == 0) continue;
        macs += AttentionMacs(n[m], d);  // Pooling block.
        fused += CeilDiv(frames[m], SftKernel(config, m));
      }
      return macs + ClassTokenLayersMacs(fusion_layers, fused, d, ff) + d * classes;
    }
    case v1::FUSION_MODE_LOCOMT: {
      const auto views = LocomtViews(config);
      if (!views.ok()) return -1;
      const int64_t head_dim = d / t.num_heads();
      for (const std::vector<HeadView>& layer : *views) {
        macs += 4 * all_tokens * d * d + 2 * all_tokens * d * ff;
        for (const HeadView& v : layer) {
          // A head computes only its view: self(m) n_m^2, cross(i, j) both
          // directions, 2 n_i n_j; scores and weighted values each.
          macs += v.a == v.b ? 2 * n[v.a] * n[v.a] * head_dim
                             : 4 * n[v.a] * n[v.b] * head_dim;
        }
      }
      return macs + d * classes;
    }
    case v1::FUSION_MODE_PMF: {
      const int64_t p = config.pmf().num_prompts() > 0 ? config.pmf().num_prompts() : 4;
      for (int m = 0; m < modalities; ++m) {
        if (n[m] == 0) continue;
        const int64_t query_stage = TransformerLayerMacs(n[m] + 2 * p, d, ff) + p * d * d;  // + adapter
        const int64_t fusion_stage = TransformerLayerMacs(n[m] + p + p * (present - 1), d, ff);
        macs += fusion_layers * (query_stage + fusion_stage) + d * classes;
      }
      return macs;
    }
    default:  // Concat: a fusion CLS and every token.
      return macs + ClassTokenLayersMacs(fusion_layers, 1 + all_tokens, d, ff) + d * classes;
  }
}

int64_t BranchMacs(const v1::ModelConfig& config, int branch, const std::vector<int64_t>& frames) {
  const Branch b = ResolveBranches(config)[branch];
  std::vector<int64_t> expert_frames;
  for (int m : b.modalities) expert_frames.push_back(m < static_cast<int>(frames.size()) ? frames[m] : 0);
  return ForwardMacs(ExpertConfig(config, b), expert_frames);
}

int64_t GateMacs(const v1::ModelConfig& config, const std::vector<int64_t>& frames) {
  const int branches = static_cast<int>(ResolveBranches(config).size());
  if (branches < 2) return 0;
  const int64_t summary = config.gate().summary_dim() > 0 ? config.gate().summary_dim() : 16;
  const int64_t hidden = config.gate().hidden_dim() > 0 ? config.gate().hidden_dim() : 32;
  int64_t macs = 0;
  for (int m = 0; m < config.modalities_size() && m < static_cast<int>(frames.size()); ++m) {
    macs += frames[m] * config.modalities(m).feature_dim() * summary;
  }
  const int64_t pooled = config.gate().pooling() == v1::GATE_POOLING_MEAN_MAX ? 2 : 1;
  return macs + config.modalities_size() * (summary * pooled + 1) * hidden + hidden * branches;
}

std::vector<int64_t> ReferenceFrames(const v1::ModelConfig& config) {
  std::vector<int64_t> frames;
  for (const v1::ModalityConfig& m : config.modalities()) {
    frames.push_back(m.reference_frames() > 0 ? m.reference_frames() : m.max_frames());
  }
  return frames;
}

}  // namespace mmfuse::model
