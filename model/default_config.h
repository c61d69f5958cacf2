// The architecture of the default model package (models/default), matched to
// the data generator's modalities. No LibTorch.
#ifndef MMFUSE_MODEL_DEFAULT_CONFIG_H_
#define MMFUSE_MODEL_DEFAULT_CONFIG_H_

#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// audio (40-dim log-mel-like frames, up to 512), video (64-dim, up to 256),
// text (32-dim, up to 256); 10 classes; d_model 64, 4 heads, one unimodal
// and two fusion layers; concat fusion.
v1::ModelConfig DefaultModelConfig();

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_DEFAULT_CONFIG_H_
