// Train-time augmentation of collated feature batches, redrawn on every call
// (so every epoch sees new masks, shifts and drops) and never applied outside
// training. What a modality gets depends on the featurizer its config
// records (docs/FEATURES.md says how each lays out its values):
//
// - audio (log-mel, `stack_frames` frames of `n_mels` bands per token):
//   SpecAugment-style time masks (spans of raw frames) and frequency masks
//   (spans of mel bands, in every stacked frame), filled with the sample's
//   mean value;
// - image (raster patches of one frame): a random shift of the whole image
//   and random erasing of a rectangle, both filled with the value a black
//   pixel featurizes to;
// - text (one token per word): token dropout, the kept tokens closing up so
//   the sequence stays contiguous; one token always stays.
//
// Modalities without a featurizer (generated data) are left as they are.
// Thread-compatible: the caller owns the generator.
#ifndef MMFUSE_MODEL_AUGMENT_H_
#define MMFUSE_MODEL_AUGMENT_H_

#include <random>
#include <vector>

#include "model/augment_options.h"
#include "model/fusion_transformer.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

// Augments `inputs` (one per modality of `config`, as Collate made them) in
// place. Tensors must be CPU float32, contiguous.
void Augment(const v1::ModelConfig& config, const AugmentOptions& options, std::mt19937_64* rng,
             std::vector<ModalityInput>* inputs);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_AUGMENT_H_
