// Collate: samples' feature maps (the API's and the dataset's
// map<string, FeatureSequence>) -> one padded batch of ModalityInputs.
#ifndef MMFUSE_MODEL_COLLATE_H_
#define MMFUSE_MODEL_COLLATE_H_

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "google/protobuf/map.h"
#include "model/fusion_transformer.h"
#include "mmfuse/v1/features.pb.h"
#include "mmfuse/v1/model_config.pb.h"

namespace mmfuse::model {

using FeatureMap = google::protobuf::Map<std::string, v1::FeatureSequence>;

// Every modality index of `config`, in model order.
std::vector<int> AllModalities(const v1::ModelConfig& config);

// Pads each modality in `run_modalities` (indices in model order) to the
// batch's longest sequence of it; modalities outside it, or absent from every
// sample, are left undefined (their encoders never run). Features must have
// been validated (dims and lengths match the config). float32 on CPU.
std::vector<ModalityInput> Collate(const v1::ModelConfig& config,
                                   absl::Span<const FeatureMap* const> samples,
                                   const std::vector<int>& run_modalities);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_COLLATE_H_
