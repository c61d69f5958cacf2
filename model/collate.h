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
// been validated (dims and lengths match the config). float32 on CPU; in
// page-locked memory with `pin_memory` (needs a CUDA LibTorch), so that
// ToDevice's copies run asynchronously.
std::vector<ModalityInput> Collate(const v1::ModelConfig& config,
                                   absl::Span<const FeatureMap* const> samples,
                                   const std::vector<int>& run_modalities,
                                   bool pin_memory = false);

// The same batch on `device`, features in `dtype`: a no-op on the CPU in
// float32; elsewhere copies that do not block the host when the batch is
// pinned (ordered on the current stream, so the forward that follows waits
// for them on the device), cast there.
std::vector<ModalityInput> ToDevice(std::vector<ModalityInput> inputs, const torch::Device& device,
                                    torch::Dtype dtype = torch::kFloat);

// Host floats of a result, row-major, wherever it was computed (the copy
// from a device waits for the current stream).
std::vector<float> HostFloats(const torch::Tensor& tensor);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_COLLATE_H_
