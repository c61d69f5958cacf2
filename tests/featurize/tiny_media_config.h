// The model config of the featurizer CLI tests (extract, classify from media
// files): every modality with a featurizer, at toy sizes: audio 8 mels, 4x4
// gray images in 2x2 patches (4 per frame), text dim 4.
#ifndef MMFUSE_TESTS_FEATURIZE_TINY_MEDIA_CONFIG_H_
#define MMFUSE_TESTS_FEATURIZE_TINY_MEDIA_CONFIG_H_

namespace mmfuse::featurize::testing {

inline constexpr char kTinyMediaConfig[] = R"pb(
  name: "media" version: "1"
  modalities {
    name: "audio" feature_dim: 8 max_frames: 64
    featurizer { audio { sample_rate: 8000 n_fft: 256 hop_length: 128 n_mels: 8 } }
  }
  modalities {
    name: "video" feature_dim: 4 max_frames: 16
    featurizer { image { width: 4 height: 4 patch_size: 2 frame_rate: 4 } }
  }
  modalities {
    name: "text" feature_dim: 4 max_frames: 8
    featurizer { text { seed: 3 } }
  }
  num_classes: 3
  fusion_mode: FUSION_MODE_CONCAT
  transformer { d_model: 8 num_heads: 2 ff_dim: 16 unimodal_layers: 1 fusion_layers: 1 }
)pb";

}  // namespace mmfuse::featurize::testing

#endif  // MMFUSE_TESTS_FEATURIZE_TINY_MEDIA_CONFIG_H_
