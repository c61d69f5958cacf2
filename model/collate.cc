#include "model/collate.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include "common/fp16.h"

namespace mmfuse::model {

std::vector<int> AllModalities(const v1::ModelConfig& config) {
  std::vector<int> all(config.modalities_size());
  std::iota(all.begin(), all.end(), 0);
  return all;
}

std::vector<ModalityInput> Collate(const v1::ModelConfig& config,
                                   absl::Span<const FeatureMap* const> samples,
                                   const std::vector<int>& run_modalities,
                                   bool pin_memory) {
  const at::TensorOptions host = at::TensorOptions().pinned_memory(pin_memory);
  std::vector<ModalityInput> inputs(config.modalities_size());
  const int64_t batch = static_cast<int64_t>(samples.size());
  for (int m : run_modalities) {
    const v1::ModalityConfig& modality = config.modalities(m);
    int64_t longest = 0;
    for (const FeatureMap* sample : samples) {
      auto it = sample->find(modality.name());
      if (it != sample->end()) longest = std::max<int64_t>(longest, it->second.frames());
    }
    if (longest == 0) continue;
    // Unpadded when every sample has the modality at the longest length:
    // then nothing needs zeroing, and the encoder needs no masks.
    bool padded = false;
    for (const FeatureMap* sample : samples) {
      auto it = sample->find(modality.name());
      padded |= it == sample->end() || it->second.frames() < longest;
    }
    const int64_t dim = modality.feature_dim();
    torch::Tensor features =
        padded ? at::zeros({batch, longest, dim}, host) : at::empty({batch, longest, dim}, host);
    torch::Tensor lengths = at::empty({batch}, host.dtype(at::kLong));
    float* out = features.data_ptr<float>();
    int64_t* length_out = lengths.data_ptr<int64_t>();
    for (int64_t b = 0; b < batch; ++b) {
      auto it = samples[b]->find(modality.name());
      const int64_t frames = it == samples[b]->end() ? 0 : it->second.frames();
      length_out[b] = frames;
      if (frames == 0) continue;
      const v1::FeatureSequence& seq = it->second;
      float* row = out + b * longest * dim;
      const int64_t values = frames * dim;
      if (seq.data_size() > 0) {
        std::memcpy(row, seq.data().data(), values * sizeof(float));
      } else {
        for (int64_t i = 0; i < values; ++i) row[i] = HalfAt(seq.data_fp16().data(), i);
      }
    }
    inputs[m] = ModalityInput{features, lengths, padded};
  }
  return inputs;
}

std::vector<ModalityInput> ToDevice(std::vector<ModalityInput> inputs,
                                    const torch::Device& device, torch::Dtype dtype) {
  if (device.is_cpu() && dtype == torch::kFloat) return inputs;
  for (ModalityInput& input : inputs) {
    if (!input.features.defined()) continue;
    // Copy first, cast on the device: the copy moves fp32, the cast is cheap
    // there.
    input.features = input.features.to(device, /*non_blocking=*/true).to(dtype);
    input.lengths = input.lengths.to(device, /*non_blocking=*/true);
  }
  return inputs;
}

std::vector<float> HostFloats(const torch::Tensor& tensor) {
  const torch::Tensor host = tensor.to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<float> out(host.numel());
  std::memcpy(out.data(), host.data_ptr<float>(), out.size() * sizeof(float));
  return out;
}

}  // namespace mmfuse::model
