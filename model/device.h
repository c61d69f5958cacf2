// Where a package's model runs. The header carries no LibTorch, so the
// server's flags and the CLI can name a device without it.
//
// A device spec is "cpu", "cuda" (= "cuda:0"), "cuda:N" or "auto" (the first
// CUDA device when LibTorch sees one, else the CPU). Resolving checks the
// spec against what this process's LibTorch can reach: a CPU-only LibTorch
// (Debian's) refuses "cuda" with an error saying so, rather than failing at
// the first batch.
#ifndef MMFUSE_MODEL_DEVICE_H_
#define MMFUSE_MODEL_DEVICE_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mmfuse::model {

// What this process's LibTorch can run on.
struct DeviceSupport {
  int cuda_devices = 0;  // 0: no CUDA (CPU-only build, or no GPU/driver).
};

// The support of the linked LibTorch (torch::cuda::device_count()).
DeviceSupport LinkedDeviceSupport();

// `spec` resolved against `support`, in canonical form ("cpu", "cuda:N").
// INVALID_ARGUMENT for a malformed spec; FAILED_PRECONDITION for a CUDA
// device that does not exist here, naming how many there are.
absl::StatusOr<std::string> ResolveDevice(absl::string_view spec, const DeviceSupport& support);

// The same against the linked LibTorch.
inline absl::StatusOr<std::string> ResolveDevice(absl::string_view spec) {
  return ResolveDevice(spec, LinkedDeviceSupport());
}

// The number format a model computes in on `device` (resolved): "fp32"
// (everywhere), "bf16" (everywhere; on CPUs without bf16 units it is
// emulated, so slower) or "fp16" (GPUs only: LibTorch's CPU kernels lack
// half-precision matrix products). Inputs are cast on the device and
// probabilities come back as fp32. INVALID_ARGUMENT for another spec,
// FAILED_PRECONDITION for fp16 on the CPU.
absl::Status CheckPrecision(absl::string_view precision, absl::string_view device);

}  // namespace mmfuse::model

#endif  // MMFUSE_MODEL_DEVICE_H_
